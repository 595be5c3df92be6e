"""How the local chain turns stake and weights into permits and incentive.

Pure functions, so the formulas can be checked against hand-computed values. They simplify
subtensor's Yuma consensus on purpose; docs/chain.md says where they differ.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def validator_permits(stakes: Mapping[int, float], max_validators: int) -> set[int]:
    """The uids holding a validator permit: the ``max_validators`` largest positive stakes.

    Ties go to the lower uid. Subtensor also ranks by stake weight, but only at each epoch; here
    the permit follows stake immediately.
    """
    ranked = sorted((uid for uid, s in stakes.items() if s > 0), key=lambda u: (-stakes[u], u))
    return set(ranked[:max_validators])


def incentive(
    stakes: Mapping[int, float], weights: Mapping[int, Mapping[int, float]]
) -> dict[int, float]:
    """Stake-weighted incentive: a simplification of Yuma consensus.

    ``I_m = sum_v s_v * w_vm / sum_m' w_vm'`` over the validator rows given, then ``I`` is scaled
    to sum 1 (all zeros when no validator has stake). Yuma additionally clips each weight to the
    stake-weighted median (consensus) and pays through bonds; here a validator's row counts in
    proportion to its stake, as it would if all validators agreed.
    """
    raw: dict[int, float] = {}
    for validator, row in weights.items():
        row_total = math.fsum(row.values())
        if row_total <= 0:
            continue
        for miner, w in row.items():
            raw[miner] = raw.get(miner, 0.0) + stakes.get(validator, 0.0) * w / row_total
    total = math.fsum(raw.values())
    return {m: (v / total if total > 0 else 0.0) for m, v in raw.items()}

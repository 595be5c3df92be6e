"""Which expert group each miner trains this cycle.

Every node computes the same answer from the same metagraph and seed:

1. `select_miners` keeps the neurons that count as miners (`MinerRule`): all except validators,
   i.e. neurons with a validator permit *and* at least `validator_min_stake_alpha` stake. In a
   small subnet every neuron holds a permit, so the permit alone does not make a validator.
2. `assign_groups` ranks the miners by `sha256(tag || seed || hotkey)` and deals them
   round-robin over the groups, taken in an order that is itself shuffled by the seed.

Counts per group differ by at most one, every group has a miner once there are as many miners as
groups, the input order does not matter, and since the seed comes from a block hash that does not
exist when a hotkey registers, nobody can pick a group: a party with many hotkeys is spread over
all groups like everyone else.
"""

import hashlib
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

RAO_PER_ALPHA = 10**9
_MINER_TAG = b"blockzero/assign/miner/v1\x00"
_GROUP_TAG = b"blockzero/assign/group/v1\x00"


class NeuronInfo(BaseModel):
    """The metagraph columns assignment needs. Stake in rao so every machine compares exactly."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    uid: int = Field(ge=0)
    hotkey: str = Field(min_length=1)
    validator_permit: bool
    stake_rao: int = Field(ge=0)


class MinerRule(BaseModel):
    """A neuron is a validator, not a miner, if it has a permit and at least this much stake."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    validator_min_stake_alpha: int = Field(default=1000, ge=0)

    def is_miner(self, neuron: NeuronInfo) -> bool:
        is_validator = (
            neuron.validator_permit
            and neuron.stake_rao >= self.validator_min_stake_alpha * RAO_PER_ALPHA
        )
        return not is_validator


def select_miners(neurons: Iterable[NeuronInfo], rule: MinerRule) -> list[str]:
    """Hotkeys of the neurons that `rule` counts as miners, sorted."""
    return sorted(n.hotkey for n in neurons if rule.is_miner(n))


def assign_groups(miners: Iterable[str], group_ids: Sequence[int], seed: int) -> dict[str, int]:
    """Map each miner hotkey to a group id; balanced, seeded, independent of input order."""
    hotkeys = list(miners)
    if len(set(hotkeys)) != len(hotkeys):
        raise ValueError("miner hotkeys must be unique")
    if not group_ids or len(set(group_ids)) != len(group_ids):
        raise ValueError(f"group ids must be a non-empty list of unique ids, got {list(group_ids)}")
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be a 64-bit unsigned integer, got {seed}")
    seed_bytes = seed.to_bytes(8, "big")
    groups = sorted(group_ids, key=lambda g: (_rank(_GROUP_TAG, seed_bytes, str(g)), g))
    ranked = sorted(hotkeys, key=lambda hk: (_rank(_MINER_TAG, seed_bytes, hk), hk))
    return {hk: groups[i % len(groups)] for i, hk in enumerate(ranked)}


def _rank(tag: bytes, seed_bytes: bytes, name: str) -> bytes:
    return hashlib.sha256(tag + seed_bytes + name.encode()).digest()

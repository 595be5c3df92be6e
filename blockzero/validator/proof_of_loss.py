"""Proof-of-Loss as pure functions: which held-out sequences, and whether a delta helped.

The evaluation seed comes from the hash of the first reveal block, which does not exist until
every hash commitment is on chain, so no miner can know or grind the samples. Samples come only
from the held-out side of the content-hash split (`blockzero/data/split.py`): callers pass
held-out tensors, never a training split. Per group: `eval_sequences` of its own domain, and as
many "general" sequences drawn from the other domains, which catch a delta that buys its gain by
forgetting everything else.

A submission passes when the paired one-sided t-test of per-sequence domain losses (base minus
after) exceeds the critical value at `significance`, the mean domain gain is at least `min_gain`
nats, and the mean general loss rises by at most `general_tolerance` nats. Any non-finite loss
fails it outright: dropping the NaN sequences and dividing by all of them is the exploit that
once paid 96% of a subnet's emission. Score = mean domain improvement in nats.

Significance alone is not enough: an equal-norm random delta is one fixed perturbation of every
sequence, and one that happens to point slightly downhill gains a little on all of them, which
the t-test calls significant (localnet: 0.0041 nats at t = 3.58, honest peers 0.01-0.14). So
after every submission of a group is judged, `below_peers` refuses the passing ones whose gain
is under `min_relative_gain` x the median gain of the group's passing originals.
"""

import hashlib
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from blockzero.data.batches import sample_indices
from blockzero.protocol.expert_groups import ExpertGroup
from blockzero.validator.evidence import Judgement, Reason, SubmissionRecord
from blockzero.validator.stats import paired_t_test, t_critical


def sub_seed(seed: int, *parts: object) -> int:
    """Independent 64-bit seeds for each use of the one evaluation seed."""
    text = ":".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


@dataclass(frozen=True)
class EvalSet:
    """A group's held-out evaluation batches and the sample ids that name them in evidence."""

    group: int
    domain: str
    domain_ids: list[int]
    general_ids: list[str]
    domain_seqs: torch.Tensor
    general_seqs: torch.Tensor


def build_eval_set(
    group: ExpertGroup, held_out: Mapping[str, torch.Tensor], *, seed: int, num_sequences: int
) -> EvalSet | None:
    """None when the group's domain has no held-out data (its submissions cannot be scored)."""
    own = held_out.get(group.domain)
    others = [d for d in sorted(held_out) if d != group.domain]
    if own is None or not others:
        return None
    k = min(num_sequences, len(own))
    domain_ids = sample_indices(len(own), k, seed=sub_seed(seed, group.id, "domain")).tolist()
    pool = [(d, i) for d in others for i in range(len(held_out[d]))]
    picks = sample_indices(len(pool), min(k, len(pool)), seed=sub_seed(seed, group.id, "general"))
    general = [pool[i] for i in picks.tolist()]
    return EvalSet(
        group=group.id,
        domain=group.domain,
        domain_ids=domain_ids,
        general_ids=[f"{d}:{i}" for d, i in general],
        domain_seqs=own[domain_ids],
        general_seqs=torch.stack([held_out[d][i] for d, i in general]),
    )


def finite_mean(values: Sequence[float]) -> float:
    """Mean over finite values, divided by their count; +inf when none is finite."""
    finite = [v for v in values if math.isfinite(v)]
    return math.fsum(finite) / len(finite) if finite else math.inf


def judge(
    base_domain: Sequence[float],
    after_domain: Sequence[float],
    base_general: Sequence[float],
    after_general: Sequence[float],
    *,
    significance: float,
    general_tolerance: float,
    min_gain: float = 0.0,
) -> Judgement:
    """The verdict on one submission from its per-sequence losses and the base losses.
    `min_gain` 0 (no floor) is how evidence from before the floor existed is re-judged."""
    losses = {"domain_losses": list(after_domain), "general_losses": list(after_general)}
    bad = [v for v in (*after_domain, *after_general) if not math.isfinite(v)]
    if bad:
        return Judgement(
            **losses,
            passed=False,
            score=0.0,
            reason=Reason.NON_FINITE_LOSS,
            detail=f"{len(bad)} non-finite sequence losses",
        )
    test = paired_t_test(base_domain, after_domain)
    critical = t_critical(significance, test.df)
    change = finite_mean(after_general) - finite_mean(base_general)
    stats = {
        "t": test.t,
        "t_critical": critical,
        "domain_gain": test.mean,
        "general_change": change,
    }
    if not test.t > critical:
        detail = f"t = {test.t:.3f} <= {critical:.3f} (one-sided, level {significance})"
        return Judgement(
            **losses, **stats, passed=False, score=0.0, reason=Reason.NOT_SIGNIFICANT, detail=detail
        )
    if test.mean < min_gain:
        detail = f"gain {test.mean:.4f} < min_gain {min_gain}"
        return Judgement(
            **losses, **stats, passed=False, score=0.0, reason=Reason.BELOW_MIN_GAIN, detail=detail
        )
    if change > general_tolerance:
        detail = f"general loss rose {change:.4f} > tolerance {general_tolerance}"
        return Judgement(
            **losses, **stats, passed=False, score=0.0, reason=Reason.FORGETTING, detail=detail
        )
    return Judgement(**losses, **stats, passed=True, score=max(test.mean, 0.0))


def below_peers(
    records: list[SubmissionRecord], *, min_relative_gain: float
) -> tuple[list[SubmissionRecord], dict[int, float]]:
    """Refuse passing submissions whose domain gain is under `min_relative_gain` x the median
    gain of their group's passing submissions; also return that median per group.

    Only records with no reason yet and a passing judgement count, so duplicates and replays
    (already refused) cannot move the median: a miner copying its own strong delta under other
    hotkeys would otherwise raise the bar over honest, weaker peers. A lone passing submission
    is its own median and is kept (the rule needs peers; `min_gain` is the floor then). The
    comparison is strict, so ties at the bar pass; the median of the recorded float gains is
    the same on every validator and in an audit."""
    gains: dict[int, dict[str, float]] = {}
    for r in records:
        if r.reason is None and r.judgement is not None and r.judgement.passed:
            gains.setdefault(r.group, {})[r.hotkey] = r.judgement.domain_gain
    medians = {g: statistics.median(gs.values()) for g, gs in gains.items()}
    out = []
    for r in records:
        gain = gains.get(r.group, {}).get(r.hotkey)
        if gain is not None and gain < min_relative_gain * medians[r.group]:
            detail = (
                f"gain {gain:.4f} < {min_relative_gain} x median {medians[r.group]:.4f} "
                f"of {len(gains[r.group])} passing in group {r.group}"
            )
            r = r.model_copy(update={"reason": Reason.BELOW_PEERS, "detail": detail, "score": 0.0})
        out.append(r)
    return out, medians

"""Merge a cycle's accepted deltas: robust combine, DiLoCo outer step per group, then a gate.

Combine: every accepted delta is clipped to the median norm of its group (so one large delta
cannot dominate) and averaged with weights proportional to its Proof-of-Loss score. The outer step
(`blockzero.delta.outer`: plain averaging by default, Nesterov SGD with momentum > 0) moves only
that group's rows and momentum; a group with nothing accepted is not touched, not even by its
momentum.

Gate: deltas of different groups interact (one group's update measured raising another domain's
loss by 0.14) and Nesterov steps can overshoot, so after all groups stepped the model is checked
on every group's held-out domain set: each stepped group must lower its own domain's loss, and no
domain nor the mean over all of them may rise by more than the tolerance. The worst offender is
rolled back (rows and momentum restored to their values before the step, so a rejected step
leaves no drift in the momentum either) and the gate runs again, until it holds.
"""

import logging
import statistics
from dataclasses import dataclass, replace

import torch

from blockzero.delta.outer import OuterConfig, outer_step
from blockzero.model.group_rows import GroupTensors, read_group_rows, write_group_rows
from blockzero.protocol.expert_groups import ExpertGroup
from blockzero.validator.proof_of_loss import EvalSet, finite_mean
from blockzero.validator.scoring import ResidentScorer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    hotkey: str
    score: float
    norm: float
    delta: GroupTensors


def combine(accepted: list[Accepted]) -> GroupTensors:
    """Score-weighted mean of the deltas, each clipped to the median norm."""
    if not accepted or any(a.score <= 0 for a in accepted):
        raise ValueError("combine needs at least one delta, each with a positive score")
    median = statistics.median(a.norm for a in accepted)
    total = sum(a.score for a in accepted)
    merged: GroupTensors = {}
    for a in accepted:
        factor = (a.score / total) * min(1.0, median / a.norm if a.norm > 0 else 1.0)
        for name, value in a.delta.items():
            scaled = value.to(torch.float32) * factor
            merged[name] = merged[name] + scaled if name in merged else scaled
    return merged


def momentum_key(group_id: int, name: str) -> str:
    """Every group's rows share the full-model tensor names, so momentum keys carry the group."""
    return f"group-{group_id}/{name}"


@dataclass
class Undo:
    """What a group looked like before its outer step, to put it back exactly."""

    group: ExpertGroup
    rows: GroupTensors
    momentum: dict[str, torch.Tensor | None]
    merged: GroupTensors
    plain: bool = False


def step_group(
    scorer: ResidentScorer,
    group: ExpertGroup,
    merged: GroupTensors,
    momentum: dict[str, torch.Tensor],
    cfg: OuterConfig,
) -> Undo:
    """Apply the outer step to the group's rows (on CPU, in float32) and its momentum."""
    rows = {k: v.cpu() for k, v in read_group_rows(scorer.adapter, group).items()}
    keys = {name: momentum_key(group.id, name) for name in rows}
    undo = Undo(
        group=group,
        rows={k: v.clone() for k, v in rows.items()},
        momentum={n: momentum[k].clone() if k in momentum else None for n, k in keys.items()},
        merged={k: v.cpu() for k, v in merged.items()},
        # Plain averaging already is the merged delta: the gate has no smaller step to retry.
        plain=cfg.momentum == 0 and cfg.lr == 1.0,
    )
    local = {n: momentum[k] for n, k in keys.items() if k in momentum}
    outer_step(rows, {k: v.cpu() for k, v in merged.items()}, local, cfg)
    momentum.update({keys[n]: t for n, t in local.items()})
    write_group_rows(scorer.adapter, group, rows)
    return undo


def rollback(scorer: ResidentScorer, undo: Undo, momentum: dict[str, torch.Tensor]) -> None:
    write_group_rows(scorer.adapter, undo.group, undo.rows)
    for name, previous in undo.momentum.items():
        key = momentum_key(undo.group.id, name)
        if previous is None:
            momentum.pop(key, None)
        else:
            momentum[key] = previous


def gate(
    scorer: ResidentScorer,
    stepped: dict[int, Undo],
    eval_sets: dict[int, EvalSet],
    base: dict[int, list[float]],
    momentum: dict[str, torch.Tensor],
    *,
    tolerance: float,
) -> dict[int, str]:
    """Roll back stepped groups until the gate holds; the outcome of every stepped group."""
    before = {g: finite_mean(base[g]) for g in eval_sets}
    before_all = finite_mean([v for g in eval_sets for v in base[g]])
    outcome: dict[int, str] = {}
    kept = dict(stepped)
    while kept:
        losses = {g: scorer.losses(s.domain_seqs) for g, s in eval_sets.items()}
        after = {g: finite_mean(v) for g, v in losses.items()}
        after_all = finite_mean([v for vs in losses.values() for v in vs])
        own = {g: after[g] - before[g] for g in kept if not after[g] < before[g]}
        cross = {g: after[g] - before[g] for g in after if after[g] > before[g] + tolerance}
        if own:
            victim = max(own, key=lambda g: (own[g], g))
            why = f"rolled back: own domain loss {before[victim]:.4f} -> {after[victim]:.4f}"
        elif cross or after_all > before_all + tolerance:
            victim = min(kept, key=lambda g: (before[g] - after[g], g))
            worst = ", ".join(f"domain of group {g} +{d:.4f}" for g, d in sorted(cross.items()))
            why = f"rolled back: {worst or f'mean loss +{after_all - before_all:.4f}'}"
        else:
            for g in kept:
                how = " (plain merged delta)" if kept[g].plain else ""
                outcome[g] = f"kept{how}: own domain loss {before[g]:.4f} -> {after[g]:.4f}"
            return outcome
        logger.info("gate: group %d %s", victim, why)
        undo = kept.pop(victim)
        rollback(scorer, undo, momentum)
        outcome[victim] = why
        if not undo.plain:
            # Second try: the merged delta itself, the step size Proof-of-Loss accepted each
            # delta at, with momentum left as it was: an overshooting Nesterov step should not
            # cost the group its cycle.
            plain = {k: v - undo.merged[k] for k, v in undo.rows.items()}
            write_group_rows(scorer.adapter, undo.group, plain)
            kept[victim] = replace(undo, plain=True)
    return outcome

"""Turn what collection and scoring found into the per-submission records of the evidence."""

from dataclasses import dataclass

from blockzero.global_model import CanonicalModel
from blockzero.settings import ValidatorSettings
from blockzero.validator.collect import Candidate, Refused, Verified, duplicates
from blockzero.validator.evidence import (
    BaseModelRef,
    GroupRecord,
    Judgement,
    Reason,
    ScoringParams,
    SubmissionRecord,
)
from blockzero.validator.proof_of_loss import EvalSet, below_peers


@dataclass(frozen=True)
class Scored:
    """A fetched candidate: refused by verification, or verified and judged."""

    candidate: Candidate
    refused: Refused | None = None
    verified: Verified | None = None
    judgement: Judgement | None = None


def cycle_records(
    found: list[Candidate],
    scored: dict[str, Scored],
    *,
    cosine_threshold: float,
    min_relative_gain: float,
) -> tuple[list[SubmissionRecord], dict[int, float]]:
    """One record per candidate, in hotkey order, and each group's median passing gain. A later
    duplicate, then a passing submission far below its group's peers (`below_peers`), scores
    zero whatever its Proof-of-Loss said."""
    dups = duplicates(
        [(s.candidate, s.verified) for s in scored.values() if s.verified is not None],
        cosine_threshold,
    )
    out = []
    for c in found:
        r = c.reveal
        fields = {
            "hotkey": c.hotkey,
            "uid": c.uid,
            "group": c.group,
            "hash_block": c.hash_block,
            "reveal_block": c.reveal_block,
            "repo_id": r.repo_id if r else None,
            "revision": r.revision if r else None,
        }
        s = scored.get(c.hotkey)
        if s is None:
            out.append(SubmissionRecord(**fields, reason=c.reason, detail=c.detail))
        elif s.refused is not None:
            out.append(
                SubmissionRecord(
                    **fields,
                    file_sha256=s.refused.file_sha256,
                    reason=s.refused.reason,
                    detail=s.refused.detail,
                )
            )
        else:
            assert s.verified is not None and s.judgement is not None
            j = s.judgement
            reason, detail = dups.get(c.hotkey, (j.reason, j.detail))
            out.append(
                SubmissionRecord(
                    **fields,
                    file_sha256=s.verified.file_sha256,
                    content_sha256=s.verified.content_sha256,
                    norm=s.verified.norm,
                    reason=reason,
                    detail=detail,
                    judgement=j,
                    score=0.0 if reason is not None else j.score,
                )
            )
    return below_peers(out, min_relative_gain=min_relative_gain)


def accepted(records: list[SubmissionRecord]) -> list[SubmissionRecord]:
    return [r for r in records if r.reason is None and r.score > 0]


def no_eval_data(candidate: Candidate, verified: Verified) -> Scored:
    return Scored(
        candidate,
        refused=Refused(
            Reason.NO_EVAL_DATA,
            f"group {candidate.group}'s domain has no held-out data here",
            verified.file_sha256,
        ),
    )


def base_ref(canon: CanonicalModel) -> BaseModelRef:
    c = canon.commitment
    return BaseModelRef(
        publisher=canon.publisher,
        repo_id=c.repo_id,
        revision=c.revision,
        manifest_sha256=c.manifest_sha256.hex(),
        cycle=c.cycle,
    )


def params(cfg: ValidatorSettings) -> ScoringParams:
    return ScoringParams(
        eval_sequences=cfg.eval_sequences,
        significance=cfg.significance,
        general_tolerance=cfg.general_tolerance,
        duplicate_cosine=cfg.duplicate_cosine,
        max_delta_ratio=cfg.max_delta_ratio,
        min_gain=cfg.min_gain,
        min_relative_gain=cfg.min_relative_gain,
        replay_cycles=cfg.replay_cycles,
    )


def group_records(
    eval_sets: dict[int, EvalSet],
    base: dict[int, tuple[list[float], list[float]]],
    outcome: dict[int, str],
    medians: dict[int, float],
) -> list[GroupRecord]:
    return [
        GroupRecord(
            group=g,
            domain=s.domain,
            domain_ids=s.domain_ids,
            general_ids=s.general_ids,
            base_domain_losses=base[g][0],
            base_general_losses=base[g][1],
            merged=outcome.get(g, "").startswith("kept"),
            gate=outcome.get(g, ""),
            peer_median_gain=medians.get(g),
        )
        for g, s in sorted(eval_sets.items())
    ]


def verdict(s: Scored) -> str:
    """One log line for a scored submission."""
    if s.refused is not None:
        return f"{s.refused.reason}: {s.refused.detail}"
    j = s.judgement
    assert j is not None
    if j.t is None:
        return str(j.reason)
    return f"{'pass' if j.passed else j.reason} t={j.t:.2f} gain={j.domain_gain:.4f}"

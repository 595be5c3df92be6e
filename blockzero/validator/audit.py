"""Re-score a published cycle from its evidence: `blockzero audit --cycle N`.

The auditor needs nothing from the validator but the evidence file: it re-derives the seed from
the recorded block hash, rebuilds every group's evaluation set from its own copy of the held-out
data (and checks the sample ids match), fetches the base model pinned by repo, revision and
manifest hash, fetches every judged submission pinned by revision and sha256, and recomputes the
losses and verdicts, then the group rule (`below_peers`) on the re-judged gains. On the same
hardware class the numbers agree exactly; any difference is listed. Submissions refused before
scoring (late, bad file, replay) are reported, not re-fetched; duplicates are taken as recorded.
"""

import math
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file

from blockzero.delta.hashing import sha256_file
from blockzero.global_model import CanonicalModel, ModelCache
from blockzero.hub.port import Hub
from blockzero.model.shards import read_model_files
from blockzero.protocol.commitments import ManifestCommitment
from blockzero.protocol.expert_groups import ExpertGroup, ExpertGroupRegistry
from blockzero.protocol.seeds import SeedPurpose, derive_seed
from blockzero.validator.collect import SUBMISSION_FILE
from blockzero.validator.evidence import (
    MAX_EVIDENCE_BYTES,
    CycleEvidence,
    GroupRecord,
    Judgement,
    Reason,
    ScoringParams,
    SubmissionRecord,
    evidence_file,
    read_evidence,
)
from blockzero.validator.proof_of_loss import EvalSet, below_peers, build_eval_set, judge
from blockzero.validator.scoring import ResidentScorer


class EvidenceNotFound(LookupError):
    """No evidence commit for that cycle in the repo."""


def fetch_evidence(hub: Hub, repo_id: str, cycle: int, dest: Path) -> CycleEvidence:
    for rev in hub.revisions(repo_id):
        if rev.message == f"evidence cycle {cycle}":
            path = hub.download(
                repo_id,
                evidence_file(cycle),
                rev.sha,
                max_bytes=MAX_EVIDENCE_BYTES,
                timeout_s=60.0,
                dest_dir=dest,
            )
            return read_evidence(path)
    raise EvidenceNotFound(f"no evidence for cycle {cycle} in {repo_id}")


@dataclass(frozen=True)
class AuditReport:
    cycle: int
    rescored: int
    mismatches: list[str]


def _same(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True)
    )


def _load_base(
    ev: CycleEvidence, hub: Hub, cache: ModelCache, registry: ExpertGroupRegistry, **kw
) -> ResidentScorer:
    b = ev.base
    commitment = ManifestCommitment(
        cycle=b.cycle,
        revision=b.revision,
        manifest_sha256=bytes.fromhex(b.manifest_sha256),
        repo_id=b.repo_id,
    )
    manifest, paths = cache.fetch_all(
        hub, CanonicalModel(publisher=b.publisher, commitment=commitment, block=0)
    )
    return ResidentScorer(read_model_files(paths, manifest, registry), **kw)


def _check_group(
    g: GroupRecord, es: EvalSet | None, base: tuple[list[float], list[float]] | None
) -> list[str]:
    if es is None or base is None:
        return [f"group {g.group}: no held-out data for domain {g.domain!r} here"]
    out = []
    if es.domain_ids != g.domain_ids or es.general_ids != g.general_ids:
        out.append(f"group {g.group}: evaluation sample ids differ")
    if not (_same(base[0], g.base_domain_losses) and _same(base[1], g.base_general_losses)):
        out.append(f"group {g.group}: base losses differ")
    return out


def _rescore(
    s: SubmissionRecord,
    scorer: ResidentScorer,
    group: ExpertGroup,
    es: EvalSet,
    base: tuple[list[float], list[float]],
    params: ScoringParams,
    *,
    hub: Hub,
    work_dir: Path,
    max_bytes: int,
) -> tuple[Judgement | None, list[str]]:
    """One judged submission, fetched by its pinned revision and judged again."""
    path = hub.download(
        s.repo_id,
        SUBMISSION_FILE,
        s.revision,
        max_bytes=max_bytes,
        timeout_s=600.0,
        dest_dir=work_dir / s.hotkey,
    )
    if sha256_file(path) != s.file_sha256:
        return None, [f"{s.hotkey}: file differs from the recorded sha256"]
    delta = {k: v.float() for k, v in load_file(str(path)).items()}
    domain, general = scorer.score(group, delta, es)
    j = judge(
        base[0],
        domain,
        base[1],
        general,
        significance=params.significance,
        general_tolerance=params.general_tolerance,
        min_gain=params.min_gain,
    )
    out = []
    recorded = s.judgement
    if not (
        _same(j.domain_losses, recorded.domain_losses)
        and _same(j.general_losses, recorded.general_losses)
    ):
        out.append(f"{s.hotkey}: losses differ")
    if (j.passed, j.reason, j.score) != (recorded.passed, recorded.reason, recorded.score):
        out.append(
            f"{s.hotkey}: verdict {j.passed}/{j.reason} vs recorded {recorded.passed}/{recorded.reason}"
        )
    return j, out


def _check_peers(ev: CycleEvidence, rescored: list[SubmissionRecord]) -> list[str]:
    """Apply the group rule (`below_peers`) to the re-judged submissions, taking duplicates as
    recorded, and compare each final reason and score and each group's median."""
    final, medians = below_peers(rescored, min_relative_gain=ev.params.min_relative_gain)
    recorded = {s.hotkey: s for s in ev.submissions}
    out = [
        f"{r.hotkey}: record {r.reason}/{r.score} vs recorded "
        f"{recorded[r.hotkey].reason}/{recorded[r.hotkey].score}"
        for r in final
        if (r.reason, r.score) != (recorded[r.hotkey].reason, recorded[r.hotkey].score)
    ]
    out += [
        f"group {g.group}: peer median gain {medians.get(g.group)} vs recorded {g.peer_median_gain}"
        for g in ev.groups
        if medians.get(g.group) != g.peer_median_gain
    ]
    return out


def audit_cycle(
    ev: CycleEvidence,
    *,
    hub: Hub,
    registry: ExpertGroupRegistry,
    held_out: dict,
    cache: ModelCache,
    work_dir: Path,
    max_bytes: int,
    batch_size: int = 32,
    device: str = "cpu",
) -> AuditReport:
    """Recompute every judged submission of the cycle and list what differs from the evidence."""
    mismatches = []
    if derive_seed(ev.block_hash, SeedPurpose.EVALUATION) != ev.seed:
        mismatches.append("seed does not follow from the recorded block hash")
    scorer = _load_base(ev, hub, cache, registry, batch_size=batch_size, device=device)
    rescored: list[SubmissionRecord] = []
    for g in ev.groups:
        group = registry.group(g.group)
        es = build_eval_set(group, held_out, seed=ev.seed, num_sequences=ev.params.eval_sequences)
        base = scorer.eval_losses(es) if es is not None else None
        mismatches += _check_group(g, es, base)
        if es is None or base is None:
            continue
        for s in ev.submissions:
            if s.group != g.group or s.judgement is None:
                continue
            j, found = _rescore(
                s,
                scorer,
                group,
                es,
                base,
                ev.params,
                hub=hub,
                work_dir=work_dir,
                max_bytes=max_bytes,
            )
            mismatches += found
            if j is not None:
                reason = s.reason if s.reason is Reason.DUPLICATE else j.reason
                update = {"judgement": j, "reason": reason, "score": 0.0 if reason else j.score}
                rescored.append(s.model_copy(update=update))
    if rescored:
        mismatches += _check_peers(ev, rescored)
    return AuditReport(cycle=ev.cycle, rescored=len(rescored), mismatches=mismatches)

"""Per-cycle Proof-of-Loss evidence as the explorer shows it, and where it reads it from.

The validator publishes a full `CycleEvidence` (blockzero/validator/evidence.py) to its evidence
repo each cycle: seed, sample ids, per-sequence losses, verdicts. The page needs only a summary
per cycle, `CycleSummary`: the mean held-out loss of the model the cycle started from, per
domain, and each submission's verdict with its mean losses. Summaries keep `/api/snapshot` small;
the full files stay on the hub for whoever re-scores a cycle.

Evidence comes from peers: it is size-capped, parsed strictly, checked against the commit that
carries it, and a bad file is skipped rather than failing the page.
"""

import logging
import re
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from blockzero.hub.errors import FileNotFound, RevisionNotFound, TooLarge
from blockzero.hub.port import Hub
from blockzero.validator.evidence import (
    MAX_EVIDENCE_BYTES,
    CycleEvidence,
    evidence_file,
)
from blockzero.validator.proof_of_loss import finite_mean

logger = logging.getLogger(__name__)

GENERAL = "general"
"""The series of the general (other domains) held-out loss, the forgetting gate's data."""
_MESSAGE = re.compile(r"evidence cycle (0|[1-9][0-9]{0,9})")
"""How the validator names its evidence commits (blockzero/validator/loop.py)."""


class SubmissionSummary(BaseModel):
    """One miner's submission in one cycle: its verdict and mean losses on its group's domain."""

    model_config = ConfigDict(frozen=True)

    hotkey: str
    uid: int | None
    group: int | None
    passed: bool
    reason: str | None = None
    detail: str = ""
    loss_before: float | None = None
    loss_after: float | None = None
    improvement: float | None = None
    score: float = 0.0


class CycleSummary(BaseModel):
    """One cycle as one validator scored it."""

    model_config = ConfigDict(frozen=True)

    cycle: int = Field(ge=0)
    validator: str
    base_revision: str
    global_losses: dict[str, float]
    """Mean held-out loss of the model this cycle started from, per domain, plus `general`."""
    merged_groups: list[int]
    submissions: list[SubmissionSummary]


def summarize(evidence: CycleEvidence) -> CycleSummary:
    """The page's view of one evidence file; means skip non-finite sequence losses."""
    by_domain: dict[str, list[float]] = defaultdict(list)
    general: list[float] = []
    base_loss: dict[int, float] = {}
    for g in evidence.groups:
        by_domain[g.domain].extend(g.base_domain_losses)
        general.extend(g.base_general_losses)
        base_loss[g.group] = finite_mean(g.base_domain_losses)
    losses = {d: finite_mean(v) for d, v in sorted(by_domain.items())}
    if general:
        losses[GENERAL] = finite_mean(general)
    submissions = []
    for s in evidence.submissions:
        j = s.judgement
        reason = s.reason or (j.reason if j else None)
        submissions.append(
            SubmissionSummary(
                hotkey=s.hotkey,
                uid=s.uid,
                group=s.group,
                # A record's own reason (e.g. duplicate) overrides a passing judgement.
                passed=s.reason is None and j is not None and j.passed,
                reason=None if reason is None else reason.value,
                detail=s.detail or (j.detail if j else ""),
                loss_before=base_loss.get(s.group) if s.group is not None and j else None,
                loss_after=finite_mean(j.domain_losses) if j else None,
                improvement=j.domain_gain if j else None,
                score=s.score,
            )
        )
    return CycleSummary(
        cycle=evidence.cycle,
        validator=evidence.validator,
        base_revision=evidence.base.revision,
        global_losses=losses,
        merged_groups=[g.group for g in evidence.groups if g.merged],
        submissions=submissions,
    )


class EvidenceSource(Protocol):
    def cycles(self) -> list[CycleSummary]:
        """Summaries of the most recent cycles, oldest first (empty when none is published)."""
        ...


class NoEvidence:
    """For a subnet whose evidence repo is unknown: the page shows the chain alone."""

    def cycles(self) -> list[CycleSummary]:
        return []


class HubEvidence:
    """The evidence a validator commits to one hub repo: `evidence/cycle-<c>.json`, one commit
    per cycle, titled `evidence cycle <c>`.

    Revisions are immutable, so each is downloaded and summarized once and kept by sha: a page
    refresh costs one `revisions` call plus the new commits, well inside the hub's rate limits.
    A file that is missing, too large, malformed or for another cycle than its commit says is
    skipped for good; a timeout or an unavailable hub raises (`HubError`) and is retried on the
    next call.
    """

    def __init__(
        self, hub: Hub, repo_id: str, *, max_cycles: int = 50, timeout_s: float = 30.0
    ) -> None:
        self.hub = hub
        self.repo_id = repo_id
        self.max_cycles = max_cycles
        self.timeout_s = timeout_s
        self._by_sha: dict[str, CycleSummary | None] = {}

    def cycles(self) -> list[CycleSummary]:
        try:
            revisions = self.hub.revisions(self.repo_id)[: self.max_cycles]
        except RevisionNotFound:
            return []
        latest: dict[int, CycleSummary] = {}
        for rev in reversed(revisions):  # oldest first, so a re-published cycle wins
            if rev.sha not in self._by_sha:
                self._by_sha[rev.sha] = self._read(rev.sha, rev.message)
            found = self._by_sha[rev.sha]
            if found is not None:
                latest[found.cycle] = found
        return [latest[c] for c in sorted(latest)]

    def _read(self, sha: str, message: str) -> CycleSummary | None:
        match = _MESSAGE.fullmatch(message.strip())
        if match is None:
            return None
        cycle = int(match[1])
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = self.hub.download(
                    self.repo_id,
                    evidence_file(cycle),
                    sha,
                    max_bytes=MAX_EVIDENCE_BYTES,
                    timeout_s=self.timeout_s,
                    dest_dir=Path(tmp),
                )
                evidence = CycleEvidence.model_validate_json(path.read_bytes())
            except (FileNotFound, TooLarge, ValidationError) as e:
                logger.warning("skipping evidence %s@%s: %s", self.repo_id, sha[:10], e)
                return None
        if evidence.cycle != cycle:
            logger.warning(
                "skipping evidence %s@%s: it is for cycle %d",
                self.repo_id,
                sha[:10],
                evidence.cycle,
            )
            return None
        return summarize(evidence)

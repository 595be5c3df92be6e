"""Per-cycle Proof-of-Loss evidence as the explorer reads it, and where it reads it from.

The validator publishes its evidence to the hub each cycle so anyone can check (and re-score)
its weights. The explorer needs only a narrow view of it, `CycleEvidence`, behind one reader
interface, `EvidenceSource`, so the page does not depend on the validator's internals and shows
"no evidence" when there is none. Evidence comes from peers: it is parsed strictly, size-capped,
and one bad file is skipped rather than failing the page.
"""

import logging
import tempfile
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from blockzero.hub.errors import FileNotFound, RevisionNotFound, TooLarge
from blockzero.hub.port import Hub

logger = logging.getLogger(__name__)

EVIDENCE_FILE = "evidence.json"
"""The file each evidence commit carries."""
MAX_EVIDENCE_BYTES = 4 << 20


class SubmissionEvidence(BaseModel):
    """One miner's submission in one cycle: what it scored and why it passed or failed."""

    model_config = ConfigDict(frozen=True)

    hotkey: str
    uid: int | None = None
    group: int | None = None
    passed: bool
    reason: str | None = None
    loss_before: float | None = None
    loss_after: float | None = None
    improvement: float | None = None


class CycleEvidence(BaseModel):
    """One cycle: the global model's held-out loss per domain after the merge, and every
    submission's verdict."""

    model_config = ConfigDict(frozen=True)

    cycle: int = Field(ge=0)
    global_losses: dict[str, float] = Field(default_factory=dict)
    submissions: list[SubmissionEvidence] = Field(default_factory=list)


class EvidenceSource(Protocol):
    def cycles(self) -> list[CycleEvidence]:
        """Evidence of the most recent cycles, oldest first (empty when none is published)."""
        ...


class NoEvidence:
    """For a subnet whose evidence repo is unknown: the page shows the chain alone."""

    def cycles(self) -> list[CycleEvidence]:
        return []


class HubEvidence:
    """Evidence committed to one hub repo, one `evidence.json` per commit.

    Revisions are immutable, so each is downloaded and parsed once and kept by sha: a page
    refresh costs one `revisions` call plus the new commits, well inside the hub's rate limits.
    A file that is missing, too large or malformed is skipped for good; a timeout or an
    unavailable hub raises (`HubError`) and is retried on the next call.
    """

    def __init__(
        self, hub: Hub, repo_id: str, *, max_cycles: int = 50, timeout_s: float = 30.0
    ) -> None:
        self.hub = hub
        self.repo_id = repo_id
        self.max_cycles = max_cycles
        self.timeout_s = timeout_s
        self._by_sha: dict[str, CycleEvidence | None] = {}

    def cycles(self) -> list[CycleEvidence]:
        try:
            revisions = self.hub.revisions(self.repo_id)[: self.max_cycles]
        except RevisionNotFound:
            return []
        for rev in revisions:
            if rev.sha not in self._by_sha:
                self._by_sha[rev.sha] = self._read(rev.sha)
        latest: dict[int, CycleEvidence] = {}
        for rev in reversed(revisions):
            found = self._by_sha[rev.sha]
            if found is not None:
                latest[found.cycle] = found
        return [latest[c] for c in sorted(latest)]

    def _read(self, sha: str) -> CycleEvidence | None:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = self.hub.download(
                    self.repo_id,
                    EVIDENCE_FILE,
                    sha,
                    max_bytes=MAX_EVIDENCE_BYTES,
                    timeout_s=self.timeout_s,
                    dest_dir=Path(tmp),
                )
                return CycleEvidence.model_validate_json(path.read_bytes())
            except (FileNotFound, TooLarge, ValidationError) as e:
                logger.warning("skipping evidence %s@%s: %s", self.repo_id, sha[:10], e)
                return None

"""The per-cycle evidence a validator publishes, so anyone can re-score the cycle.

It holds everything a re-score needs and nothing it could recompute differently: the seed and the
block it came from, the base model (repo, revision, manifest hash), the evaluation sample ids of
every group, the base losses, and per submission where its file is, its sha256, its losses, the
test statistic, pass/fail and the reason. `blockzero audit --cycle N` reads it back
(`blockzero/validator/audit.py`). Losses travel as JSON floats (shortest round-trip repr), so a
re-score on the same hardware compares them bit for bit.
"""

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from blockzero.atomic import atomic_write_text
from blockzero.delta.submission import Rejection

EVIDENCE_FORMAT = "blockzero-evidence"
MAX_EVIDENCE_BYTES = 64 << 20


def evidence_file(cycle: int) -> str:
    return f"evidence/cycle-{cycle}.json"


class Reason(StrEnum):
    """Why a submission scored zero, beyond the file checks of `Rejection`."""

    NO_COMMITMENT = "no_commitment"
    NOT_REVEALED = "not_revealed"
    LATE = "late"
    BAD_REVEAL = "bad_reveal"
    FILE_MISSING = "file_missing"
    DOWNLOAD_TIMEOUT = "download_timeout"
    UNAVAILABLE = "unavailable"
    HASH_MISMATCH = "hash_mismatch"
    STALE_BASE = "stale_base"
    WRONG_GROUP = "wrong_group"
    WRONG_CYCLE = "wrong_cycle"
    DUPLICATE = "duplicate"
    REPLAY = "replay"
    NO_EVAL_DATA = "no_eval_data"
    NON_FINITE_LOSS = "non_finite_loss"
    NOT_SIGNIFICANT = "not_significant"
    FORGETTING = "forgetting"
    BELOW_MIN_GAIN = "below_min_gain"
    BELOW_PEERS = "below_peers"


class _Wire(BaseModel):
    # NaN and inf losses are evidence too: keep them as JSON's NaN/Infinity, not null.
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")


class ScoringParams(_Wire):
    """The knobs a score depends on; an audit uses these, not its own settings. The gain rules
    and the replay window default to off, which is how evidence written before them was scored."""

    eval_sequences: int
    significance: float
    general_tolerance: float
    duplicate_cosine: float
    max_delta_ratio: float
    min_gain: float = 0.0
    min_relative_gain: float = 0.0
    replay_cycles: int = 0


class Judgement(_Wire):
    """Proof-of-Loss of one submission: losses on the group's eval set and the verdict."""

    domain_losses: list[float]
    general_losses: list[float]
    t: float | None = None
    t_critical: float | None = None
    domain_gain: float | None = None
    general_change: float | None = None
    passed: bool
    score: float = Field(ge=0)
    reason: Reason | None = None
    detail: str = ""


class SubmissionRecord(_Wire):
    hotkey: str
    uid: int | None
    group: int | None
    hash_block: int | None = None
    reveal_block: int | None = None
    repo_id: str | None = None
    revision: str | None = None
    file_sha256: str | None = None
    content_sha256: str | None = None
    norm: float | None = None
    reason: Rejection | Reason | None = None
    detail: str = ""
    judgement: Judgement | None = None
    score: float = Field(default=0.0, ge=0)


class GroupRecord(_Wire):
    group: int
    domain: str
    domain_ids: list[int]
    general_ids: list[str]
    base_domain_losses: list[float]
    base_general_losses: list[float]
    merged: bool = False
    gate: str = ""
    # Median domain gain of the group's passing, original submissions: the `below_peers` bar.
    peer_median_gain: float | None = None


class BaseModelRef(_Wire):
    publisher: str
    repo_id: str
    revision: str
    manifest_sha256: str
    cycle: int


class CycleEvidence(_Wire):
    format: str = EVIDENCE_FORMAT
    cycle: int
    validator: str
    evaluation_block: int
    block_hash: str
    seed: int
    base: BaseModelRef
    params: ScoringParams
    groups: list[GroupRecord]
    submissions: list[SubmissionRecord]
    published_revision: str | None = None

    def scores(self) -> dict[str, float]:
        return {s.hotkey: s.score for s in self.submissions}


def write_evidence(path: Path, evidence: CycleEvidence) -> None:
    atomic_write_text(path, evidence.model_dump_json(indent=1))


def read_evidence(path: Path) -> CycleEvidence:
    raw = Path(path).read_bytes()
    if len(raw) > MAX_EVIDENCE_BYTES:
        raise ValueError(f"evidence file is {len(raw)} bytes, over {MAX_EVIDENCE_BYTES}")
    return CycleEvidence.model_validate_json(raw)

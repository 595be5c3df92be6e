"""What the miner must remember across a crash: where each cycle's submission stands.

Saved atomically after every step, so a kill leaves the state of the last completed step. On
restart a file that was written but not committed can still be committed while the commit phase
is open, and a committed one revealed while the reveal phase is open; anything later is recorded
as missed. Training itself is not checkpointed: a kill mid-training loses that cycle's steps
only, and the miner trains again on what is left of the phase if enough remains.
"""

import logging
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from blockzero.atomic import atomic_write_text

logger = logging.getLogger(__name__)

KEEP_RECORDS = 32


class Stage(StrEnum):
    WRITTEN = "written"
    COMMITTED = "committed"
    REVEALED = "revealed"
    MISSED = "missed"


class CycleRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cycle: int = Field(ge=0)
    group: int = Field(ge=0)
    base_revision: str
    file: Path
    file_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    tokens: int = Field(ge=0)
    stage: Stage
    revision: str | None = None
    reason: str | None = None


class HeldShard(BaseModel):
    """A model file kept in the cache and the cycle whose manifest it was verified against."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)
    cycle: int = Field(ge=0)


class MinerState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[CycleRecord] = []
    held: dict[str, HeldShard] = {}

    def record(self, cycle: int) -> CycleRecord | None:
        return next((r for r in reversed(self.records) if r.cycle == cycle), None)

    def put(self, record: CycleRecord) -> None:
        self.records = [r for r in self.records if r.cycle != record.cycle][-KEEP_RECORDS + 1 :]
        self.records.append(record)


class StateStore:
    """`state.json` in the miner's directory, replaced whole on every save."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> MinerState:
        if not self.path.exists():
            return MinerState()
        try:
            return MinerState.model_validate_json(self.path.read_text())
        except (OSError, ValidationError) as e:
            logger.error("miner state %s is unreadable (%s); starting afresh", self.path, e)
            return MinerState()

    def save(self, state: MinerState) -> None:
        atomic_write_text(self.path, state.model_dump_json(indent=1))

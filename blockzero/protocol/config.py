"""The protocol parameters every node must share, read from `configs/protocol.yaml`.

The file must state its protocol version. A node that reads another version raises
`ProtocolVersionMismatch` instead of acting on rules it does not know; pass
`context={"source": path}` to `model_validate` so the error names the file. The defaults here
equal `configs/protocol.yaml` (a test keeps them so), so an installed package without the
repository's `configs/` still speaks the protocol: `ProtocolConfig(version=PROTOCOL_VERSION)`.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from blockzero.protocol.assignment import MinerRule
from blockzero.protocol.cycle import CycleSchedule
from blockzero.protocol.errors import ProtocolVersionMismatch
from blockzero.protocol.version import PROTOCOL_VERSION


class ProtocolConfig(BaseModel):
    """Cycle schedule and miner rule of one protocol version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int
    cycle: CycleSchedule = Field(default_factory=CycleSchedule)
    miners: MinerRule = Field(default_factory=MinerRule)

    @field_validator("version", mode="before")
    @classmethod
    def _same_version(cls, version: Any, info: ValidationInfo) -> Any:
        if version != PROTOCOL_VERSION:
            source = (info.context or {}).get("source", "the protocol config")
            raise ProtocolVersionMismatch(version, str(source))
        return version

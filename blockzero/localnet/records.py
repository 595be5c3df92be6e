"""What a localnet run leaves behind, as data: written to `report/records.json` and read by the
report, so plots and summary can be redrawn (and tested) without running a subnet."""

from pydantic import BaseModel, ConfigDict

from blockzero.explorer.evidence import CycleSummary
from blockzero.localnet.config import LocalnetConfig
from blockzero.localnet.setup import Layout


class CycleRecord(BaseModel):
    """One cycle as the chain and the validators' evidence showed it once it was complete."""

    model_config = ConfigDict(frozen=True)

    cycle: int
    evidence: dict[str, CycleSummary]
    """Validator node name -> its evidence summary; a validator that published none is absent."""
    weights: dict[int, dict[int, float]]
    """The chain's weight rows `{validator_uid: {miner_uid: fraction}}` after the cycle."""
    incentive: dict[int, float]
    """Per uid, the chain's stake-weighted consensus of those rows."""


class HeldOut(BaseModel):
    """Held-out loss of one published global model on a fixed sample, per domain."""

    model_config = ConfigDict(frozen=True)

    cycle: int
    """The cycle whose merge produced the model (the initial model: the cycle it was published)."""
    revision: str
    losses: dict[str, float]

    @property
    def mean(self) -> float:
        return sum(self.losses.values()) / len(self.losses)


class RunRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    config: LocalnetConfig
    layout: Layout
    cycles: list[CycleRecord]
    held_out: list[HeldOut]
    setup_seconds: float
    wall_seconds: float
    load_average: list[float]
    """1-minute load average sampled at start, after set-up and at the end: what else ran."""

"""What one local subnet run is: how many nodes, how many cycles, how fast, how it starts.

Defaults are sized for a 2-core CPU with every process running at once (docs/localnet.md has the
measurements): a cycle is 30 blocks of `block_time_s`, so on a slower machine raise the block
time and every phase stretches with it. `configs/localnet.yaml` spells out these defaults.
"""

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

import blockzero
from blockzero.miner.cheats import Strategy
from blockzero.protocol.config import ProtocolConfig
from blockzero.protocol.cycle import CycleSchedule, Phase
from blockzero.protocol.version import PROTOCOL_VERSION

CHEATS = [s for s in Strategy if s is not Strategy.HONEST]
CONFIGS = Path(blockzero.__file__).resolve().parents[1] / "configs"


LOCAL_SCHEDULE = CycleSchedule(
    length=30,
    phases={Phase.TRAIN: 18, Phase.COMMIT: 3, Phase.REVEAL: 3, Phase.VALIDATE: 6},
)
"""Train is what miners get; validate must hold every validator's scoring, the publisher's merge
and its publish, or miners start the next cycle on the previous model."""


class LocalnetConfig(BaseModel):
    """One local subnet run. `cheaters` of the `miners` run a dishonest strategy, taken in turn
    from `cheats`; the rest are honest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    miners: int = Field(4, ge=1)
    validators: int = Field(2, ge=1)
    cycles: int = Field(6, ge=1)
    cheaters: int = Field(2, ge=0)
    cheats: list[Strategy] = Field(default_factory=lambda: [Strategy.NOISE, Strategy.COPY])
    work_dir: Path = Path("runs/localnet")
    block_time_s: float = Field(2.0, gt=0)
    cycle: CycleSchedule = LOCAL_SCHEDULE
    start_lead_s: float = Field(
        30.0, gt=0, description="From publishing the initial model to the first cycle's start."
    )
    model: Path = CONFIGS / "models" / "tiny-qwen3-moe.yaml"
    data: Path = CONFIGS / "data" / "local.yaml"
    warmup_steps: int = Field(120, ge=0)
    profile_sequences: int = Field(64, gt=0)
    eval_sequences: int = Field(32, ge=4, description="Validators' held-out sequences per group.")
    heldout_sequences: int = Field(64, gt=0, description="Per domain, for the report's curve.")
    general_tolerance: float = Field(
        0.03, ge=0, description="Validators' forgetting and merge-gate tolerance, nats."
    )
    max_delta_ratio: float = Field(1.0, gt=0, description="Validators' norm bound.")
    min_gain: float = Field(
        0.005, ge=0, description="Validators' minimum Proof-of-Loss gain, nats."
    )
    miner_lr: float = Field(1e-3, gt=0)
    miner_batch_size: int = Field(8, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> "LocalnetConfig":
        if self.cheaters > self.miners:
            raise ValueError(f"cheaters ({self.cheaters}) must not exceed miners ({self.miners})")
        if self.cheaters and not self.cheats:
            raise ValueError("cheats must name at least one strategy when cheaters > 0")
        if Strategy.HONEST in self.cheats:
            raise ValueError(f"cheats are dishonest strategies: {[s.value for s in CHEATS]}")
        lead_blocks = self.start_lead_s / self.block_time_s
        if lead_blocks >= self.cycle.length:
            raise ValueError("start_lead_s must be shorter than one cycle")
        return self

    def protocol(self) -> ProtocolConfig:
        return ProtocolConfig(version=PROTOCOL_VERSION, cycle=self.cycle)

    def strategies(self) -> list[Strategy]:
        """Each miner's strategy: honest first, then the cheaters cycling through `cheats`."""
        honest = [Strategy.HONEST] * (self.miners - self.cheaters)
        return honest + [self.cheats[i % len(self.cheats)] for i in range(self.cheaters)]

"""Cycle and phase from block height alone, so every node agrees without a coordinator.

A cycle is `length` consecutive blocks starting at `cycle * length`. Inside it the phases follow
in the fixed order of `Phase`, each lasting its configured number of blocks:

    train -> commit -> reveal -> validate

Windows are half-open, like `range`: a phase owns blocks `start <= block < stop`.
"""

from enum import StrEnum
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Phase(StrEnum):
    """The phases of a cycle, in order."""

    TRAIN = "train"
    COMMIT = "commit"
    REVEAL = "reveal"
    VALIDATE = "validate"


class PhaseWindow(NamedTuple):
    """Blocks `start <= block < stop` of one phase of one cycle."""

    start: int
    stop: int

    def __contains__(self, block: object) -> bool:
        return isinstance(block, int) and self.start <= block < self.stop

    def __len__(self) -> int:
        return self.stop - self.start


class CycleSchedule(BaseModel):
    """Cycle length and phase lengths in blocks; the phase lengths must add up to the cycle."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    length: int = Field(default=45, gt=0)
    phases: dict[Phase, int] = Field(
        default_factory=lambda: {
            Phase.TRAIN: 30,
            Phase.COMMIT: 4,
            Phase.REVEAL: 5,
            Phase.VALIDATE: 6,
        }
    )

    @model_validator(mode="after")
    def _phases_tile_cycle(self) -> "CycleSchedule":
        if set(self.phases) != set(Phase):
            raise ValueError(
                f"cycle.phases must list exactly {[p.value for p in Phase]}, "
                f"got {[p.value for p in self.phases]}"
            )
        if any(n < 1 for n in self.phases.values()):
            raise ValueError(f"every phase needs at least 1 block, got {self._lengths()}")
        if sum(self.phases.values()) != self.length:
            raise ValueError(
                f"phase lengths {self._lengths()} add up to {sum(self.phases.values())}, "
                f"not cycle.length={self.length}"
            )
        return self

    def _lengths(self) -> dict[str, int]:
        return {p.value: self.phases[p] for p in Phase if p in self.phases}

    def _offset(self, phase: Phase) -> int:
        """Blocks from the cycle start to the first block of `phase`."""
        offset = 0
        for p in Phase:
            if p is phase:
                return offset
            offset += self.phases[p]
        raise AssertionError(phase)

    def cycle_of(self, block: int) -> int:
        return _non_negative(block, "block") // self.length

    def cycle_start(self, cycle: int) -> int:
        return _non_negative(cycle, "cycle") * self.length

    def phase_window(self, cycle: int, phase: Phase) -> PhaseWindow:
        start = self.cycle_start(cycle) + self._offset(phase)
        return PhaseWindow(start, start + self.phases[phase])

    def phase_of(self, block: int) -> Phase:
        offset = _non_negative(block, "block") % self.length
        for phase in Phase:
            if offset < self.phases[phase]:
                return phase
            offset -= self.phases[phase]
        raise AssertionError(block)

    def current_window(self, block: int) -> PhaseWindow:
        return self.phase_window(self.cycle_of(block), self.phase_of(block))

    def blocks_left_in_phase(self, block: int) -> int:
        """Blocks until the phase ends, counting `block` itself (1 on the phase's last block)."""
        return self.current_window(block).stop - block

    def next_phase_start(self, block: int) -> int:
        """First block of the phase after the one `block` is in (maybe in the next cycle)."""
        return self.current_window(block).stop


def _non_negative(value: int, name: str) -> int:
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value

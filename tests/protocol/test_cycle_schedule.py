import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blockzero.protocol.cycle import CycleSchedule, Phase, PhaseWindow

SCHEDULE = CycleSchedule()
blocks = st.integers(min_value=0, max_value=2**32 - 1)


@st.composite
def schedules(draw: st.DrawFn) -> CycleSchedule:
    lengths = draw(st.lists(st.integers(1, 50), min_size=4, max_size=4))
    return CycleSchedule(length=sum(lengths), phases=dict(zip(Phase, lengths, strict=True)))


def test_default_boundaries() -> None:
    assert SCHEDULE.length == 45
    expected = {
        Phase.TRAIN: (0, 30),
        Phase.COMMIT: (30, 34),
        Phase.REVEAL: (34, 39),
        Phase.VALIDATE: (39, 45),
    }
    for phase, (start, stop) in expected.items():
        assert SCHEDULE.phase_window(0, phase) == PhaseWindow(start, stop)
        assert SCHEDULE.phase_window(2, phase) == PhaseWindow(90 + start, 90 + stop)
    assert [SCHEDULE.phase_of(b) for b in (0, 29, 30, 33, 34, 38, 39, 44, 45)] == [
        Phase.TRAIN,
        Phase.TRAIN,
        Phase.COMMIT,
        Phase.COMMIT,
        Phase.REVEAL,
        Phase.REVEAL,
        Phase.VALIDATE,
        Phase.VALIDATE,
        Phase.TRAIN,
    ]
    assert SCHEDULE.blocks_left_in_phase(30) == 4
    assert SCHEDULE.blocks_left_in_phase(33) == 1
    assert SCHEDULE.next_phase_start(31) == 34
    assert SCHEDULE.next_phase_start(44) == 45


@given(schedules(), blocks)
def test_every_block_is_in_exactly_one_phase(schedule: CycleSchedule, block: int) -> None:
    cycle = schedule.cycle_of(block)
    owners = [p for p in Phase if block in schedule.phase_window(cycle, p)]
    assert owners == [schedule.phase_of(block)]
    window = schedule.current_window(block)
    assert block in window
    assert schedule.blocks_left_in_phase(block) == window.stop - block >= 1
    assert schedule.next_phase_start(block) == window.stop


@given(schedules(), st.integers(0, 10**6))
def test_phase_windows_tile_the_cycle(schedule: CycleSchedule, cycle: int) -> None:
    windows = [schedule.phase_window(cycle, p) for p in Phase]
    assert windows[0].start == schedule.cycle_start(cycle) == cycle * schedule.length
    assert windows[-1].stop == schedule.cycle_start(cycle + 1)
    assert all(a.stop == b.start for a, b in itertools.pairwise(windows))
    assert all(len(w) == schedule.phases[p] for w, p in zip(windows, Phase, strict=True))


@given(schedules(), blocks, blocks)
def test_cycle_of_is_monotone(schedule: CycleSchedule, a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert schedule.cycle_of(low) <= schedule.cycle_of(high)
    assert schedule.cycle_of(high + schedule.length) == schedule.cycle_of(high) + 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"length": 46}, "add up to 45, not cycle.length=46"),
        ({"phases": {"train": 30, "commit": 4, "reveal": 11}}, "must list exactly"),
        (
            {"length": 45, "phases": {"train": 45, "commit": 0, "reveal": 0, "validate": 0}},
            "at least 1 block",
        ),
    ],
)
def test_bad_schedules_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CycleSchedule.model_validate(kwargs)


def test_negative_block_is_refused() -> None:
    with pytest.raises(ValueError, match="block must be >= 0"):
        SCHEDULE.phase_of(-1)

"""Cross-cycle replays: the check against earlier cycles' accepted sketches, and the sketches
surviving a restart in the validator's atomic state."""

from pathlib import Path

import torch

from blockzero.validator.collect import (
    PastDelta,
    Refused,
    Verified,
    content_sha256,
    replay_of,
    sketch,
)
from blockzero.validator.evidence import Reason
from blockzero.validator.state import StateStore, ValidatorState


def _verified(delta: dict[str, torch.Tensor]) -> Verified:
    return Verified(
        path=Path("unused"),
        file_sha256="f" * 64,
        content_sha256=content_sha256(delta),
        norm=0.0,
        sketch=sketch(delta),
        delta=delta,
    )


def _delta(seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {"a": torch.randn(8, 16, generator=gen), "b": torch.randn(4, 4, generator=gen)}


def _past(delta, *, cycle: int, hotkey: str = "old"):
    p = PastDelta(cycle=cycle, hotkey=hotkey, content_sha256=content_sha256(delta))
    return p, {p.key: sketch(delta)}


def _check(v: Verified, past, sketches, *, cycle: int = 5) -> Refused | None:
    return replay_of(v, cycle=cycle, past=past, sketches=sketches, window=2, threshold=0.97)


def test_exact_and_near_replays_of_the_window_are_refused():
    old = _delta(1)
    p, sketches = _past(old, cycle=4)
    exact = _check(_verified(old), [p], sketches)
    assert exact is not None and exact.reason is Reason.REPLAY and "same tensors" in exact.detail
    assert exact.file_sha256 == "f" * 64
    gen = torch.Generator().manual_seed(9)
    near = {k: 1.3 * v + 0.01 * torch.randn(v.shape, generator=gen) for k, v in old.items()}
    got = _check(_verified(near), [p], sketches)
    assert got is not None and got.reason is Reason.REPLAY and "cosine" in got.detail


def test_the_window_before_this_cycle_counts_in_any_group():
    old = _delta(1)
    v = _verified(old)
    for cycle, expected in ((3, True), (4, True), (2, False), (5, False), (6, False)):
        p, sketches = _past(old, cycle=cycle)
        assert (_check(v, [p], sketches) is not None) is expected, cycle
    # An unrelated delta is not a replay; a sketch of another shape is never compared.
    p, sketches = _past(_delta(2), cycle=4)
    assert _check(v, [p], sketches) is None
    p, sketches = _past({"a": torch.randn(3, 3)}, cycle=4)
    assert _check(v, [p], sketches) is None


def test_history_and_sketches_survive_a_restart(tmp_path):
    old = _delta(1)
    p, sketches = _past(old, cycle=4, hotkey="5Fminer")
    store = StateStore(tmp_path / "state")
    store.save(ValidatorState(cycle=4, history=[p]), sketches=sketches)

    again = StateStore(tmp_path / "state")
    state, loaded = again.load(), again.load_sketches()
    assert state.history == [p]
    assert loaded.keys() == sketches.keys()
    assert torch.equal(loaded[p.key], sketches[p.key])
    assert _check(_verified(old), state.history, loaded) is not None
    # A generation without accepted deltas has no sketch file and loads as empty.
    store.save(ValidatorState(cycle=5))
    assert StateStore(tmp_path / "state").load_sketches() == {}

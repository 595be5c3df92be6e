"""State generations: written whole, switched atomically, crash leftovers ignored, exact reload."""

import torch

from blockzero.model.loading import build_model
from blockzero.validator.state import CURRENT, StateStore, ValidatorState
from blockzero.validator.weights import ScoreBook


def test_save_and_reload_exactly(tmp_path, tiny_config, registry):
    store = StateStore(tmp_path / "state")
    assert store.load() is None
    model = build_model(tiny_config, seed=7)
    momentum = {"group-1/x": torch.randn(3, 4)}
    book = ScoreBook().update({0: "a"}, {"a": 0.25}, alpha=0.5)
    state = ValidatorState(cycle=4, scores=book, parent_revision="a" * 40, has_model=True)
    store.save(state, model=model, registry=registry, momentum=momentum)

    again = StateStore(tmp_path / "state")
    assert again.load() == state
    loaded, manifest, loaded_momentum = again.load_model(registry)
    assert manifest.cycle == 4 and manifest.parent_revision == "a" * 40
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())
    assert torch.equal(loaded_momentum["group-1/x"], momentum["group-1/x"])
    assert again.update(published_revision="b" * 40).published_revision == "b" * 40
    assert StateStore(tmp_path / "state").load().published_revision == "b" * 40


def test_a_crash_mid_save_leaves_the_previous_generation(tmp_path):
    store = StateStore(tmp_path / "state")
    store.save(ValidatorState(cycle=1))
    first = store.current()
    # What a kill -9 while writing generation 2 leaves: a temp dir, CURRENT unchanged.
    (tmp_path / "state" / ".gen-2.crashed").mkdir()
    (tmp_path / "state" / ".gen-2.crashed" / "state.json").write_text("{partial")
    assert StateStore(tmp_path / "state").load().cycle == 1
    store.save(ValidatorState(cycle=2))
    assert store.load().cycle == 2
    names = {p.name for p in (tmp_path / "state").iterdir()}
    assert names == {CURRENT, first.name, store.current().name}

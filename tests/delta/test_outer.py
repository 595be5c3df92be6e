"""The outer step matches torch's Nesterov SGD exactly, also across a save and restore."""

import pytest
import torch

from blockzero.delta.outer import OuterConfig, load_momentum, outer_step, save_momentum
from blockzero.delta.pseudo_gradient import pseudo_gradient

NAMES = ("a", "b")


def grads(step: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(100 + step)
    return {"a": torch.randn(3, 4, generator=gen), "b": torch.randn(5, generator=gen)}


def torch_reference(start, steps, cfg):
    params = {k: torch.nn.Parameter(v.clone()) for k, v in start.items()}
    opt = torch.optim.SGD(params.values(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    for s in range(steps):
        for k, p in params.items():
            p.grad = grads(s)[k].clone()
        opt.step()
    return {k: p.detach() for k, p in params.items()}


@pytest.mark.parametrize(
    "cfg",
    [OuterConfig(), OuterConfig(lr=1.0, momentum=0.0, nesterov=False), OuterConfig(nesterov=False)],
)
def test_matches_torch_sgd(cfg):
    start = {"a": torch.randn(3, 4), "b": torch.randn(5)}
    params = {k: v.clone() for k, v in start.items()}
    momentum: dict[str, torch.Tensor] = {}
    for s in range(6):
        outer_step(params, grads(s), momentum, cfg)
    expected = torch_reference(start, 6, cfg)
    for k in NAMES:
        torch.testing.assert_close(params[k], expected[k], rtol=0, atol=0)


def test_save_and_restore_continues_exactly(tmp_path):
    cfg = OuterConfig()
    start = {"a": torch.randn(3, 4), "b": torch.randn(5)}
    params = {k: v.clone() for k, v in start.items()}
    momentum: dict[str, torch.Tensor] = {}
    for s in range(3):
        outer_step(params, grads(s), momentum, cfg)
    save_momentum(tmp_path / "m.safetensors", momentum)
    restored = load_momentum(tmp_path / "m.safetensors")
    for s in range(3, 6):
        outer_step(params, grads(s), restored, cfg)
    expected = torch_reference(start, 6, cfg)
    for k in NAMES:
        torch.testing.assert_close(params[k], expected[k], rtol=0, atol=0)


def test_nesterov_without_momentum_is_refused():
    with pytest.raises(ValueError, match="momentum > 0"):
        OuterConfig(momentum=0.0)


def test_missing_state_file_is_empty_momentum(tmp_path):
    assert load_momentum(tmp_path / "absent.safetensors") == {}


def test_untouched_tensors_do_not_move():
    params = {"a": torch.ones(2), "b": torch.ones(2)}
    momentum = {"b": torch.ones(2)}
    outer_step(params, {"a": torch.ones(2)}, momentum, OuterConfig())
    assert params["b"].equal(torch.ones(2))
    assert momentum["b"].equal(torch.ones(2))


def test_pseudo_gradient_is_start_minus_end():
    start, end = {"a": torch.tensor([3.0, 1.0])}, {"a": torch.tensor([1.0, 2.0])}
    assert pseudo_gradient(start, end)["a"].equal(torch.tensor([2.0, -1.0]))
    with pytest.raises(ValueError, match="names differ"):
        pseudo_gradient(start, {"b": torch.zeros(2)})


def test_from_momentum_is_plain_without_momentum_and_nesterov_with_it():
    plain = OuterConfig.from_momentum(1.0, 0.0)
    assert not plain.nesterov
    params, delta = {"a": torch.ones(3)}, {"a": torch.full((3,), 0.25)}
    outer_step(params, delta, {}, plain)
    assert torch.equal(params["a"], torch.full((3,), 0.75))  # averaging: rows - merged delta
    assert OuterConfig.from_momentum(0.7, 0.9) == OuterConfig()

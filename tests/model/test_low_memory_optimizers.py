"""The low-memory group state: bf16 rows with stochastic rounding, 8-bit AdamW moments."""

import pytest
import torch
from torchao.optim.subclass_8bit import OptimState8bit

from blockzero.data.batches import train_batches
from blockzero.delta.pseudo_gradient import pseudo_gradient
from blockzero.model.group_training import prepare_group_training
from blockzero.model.loading import build_model
from blockzero.model.training import InnerConfig, build_optimizer, train

LR = 1e-3
STEPS = 10
# One shape for every bare-parameter test: torchao compiles its step once per shape and dtype,
# which costs seconds each on a CPU.
SHAPE = (64, 256)


def _constant_gradient_steps(optimizer_name: str, *, dtype: torch.dtype) -> torch.Tensor:
    """Mean change of weights at 1.0 after STEPS Adam steps on a constant gradient of 1; each
    step moves about LR, under a quarter of a bf16 step at 1.0 (2**-7)."""
    param = torch.nn.Parameter(torch.ones(SHAPE, dtype=dtype))
    optimizer = build_optimizer([param], InnerConfig(lr=LR, optimizer=optimizer_name))
    for _ in range(STEPS):
        param.grad = torch.ones_like(param)
        optimizer.step()
    return (param.detach().float() - 1.0).mean()


def test_plain_adamw_on_bf16_rows_loses_small_updates():
    """Why the stochastic rounding: round-to-nearest drops every one of these updates."""
    param = torch.nn.Parameter(torch.ones(SHAPE, dtype=torch.bfloat16))
    optimizer = torch.optim.AdamW([param], lr=LR, weight_decay=0.0)
    for _ in range(STEPS):
        param.grad = torch.ones_like(param)
        optimizer.step()
    assert param.detach().eq(1.0).all()


@pytest.mark.parametrize("optimizer_name", ["adamw", "adamw8bit"])
def test_bf16_rows_keep_small_updates_in_expectation(optimizer_name):
    change = _constant_gradient_steps(optimizer_name, dtype=torch.bfloat16).item()
    assert change == pytest.approx(-STEPS * LR, rel=0.15)


def test_optimizer_choice_and_state_precision():
    fp32 = torch.nn.Parameter(torch.zeros(SHAPE))
    assert type(build_optimizer([fp32], InnerConfig())) is torch.optim.AdamW
    param = torch.nn.Parameter(torch.zeros(SHAPE, dtype=torch.bfloat16))
    optimizer = build_optimizer([param], InnerConfig(optimizer="adamw8bit"))
    param.grad = torch.randn_like(param)
    optimizer.step()
    for moment in ("exp_avg", "exp_avg_sq"):
        state = optimizer.state[param][moment]
        assert isinstance(state, OptimState8bit) and state.codes.dtype == torch.uint8


@pytest.mark.slow
def test_bf16_rows_with_8bit_adamw_learn(tiny_config, registry, corpora):
    """The 16 GB recipe end to end on the tiny model: int8 frozen experts, bf16 rows, 8-bit
    AdamW, checkpointing. Training loss falls and the delta is finite and non-zero."""
    wrapped = prepare_group_training(
        build_model(tiny_config, seed=1),
        registry.group(0),
        frozen_dtype=torch.int8,
        group_dtype=torch.bfloat16,
        checkpointing=True,
    )
    start = wrapped.group_tensors()
    report = train(
        wrapped.model,
        wrapped.trainable_parameters(),
        train_batches(corpora["code"].train, batch_size=8, seed=0),
        InnerConfig(lr=1e-2, optimizer="adamw8bit"),
        max_steps=12,
    )
    assert report.loss_end < report.loss_start
    delta = pseudo_gradient(start, wrapped.group_tensors())
    assert all(d.isfinite().all() and d.abs().max() > 0 for d in delta.values())

"""Expert-group training: exactness of both modes, what is trainable, and that it learns."""

import torch

from blockzero.data.batches import train_batches
from blockzero.delta.pseudo_gradient import pseudo_gradient
from blockzero.model.evaluation import sequence_losses
from blockzero.model.families import MoEAdapter
from blockzero.model.group_rows import (
    add_to_group_rows,
    group_tensor_shapes,
    read_group_rows,
    write_group_rows,
)
from blockzero.model.group_training import TrainingMode, prepare_group_training
from blockzero.model.loading import build_model
from blockzero.model.training import InnerConfig, train

TOKENS = torch.randint(4, 260, (2, 48), generator=torch.Generator().manual_seed(0))


def test_full_routing_forward_equals_the_full_model(tiny_config, registry):
    reference = build_model(tiny_config, seed=1).eval()
    expected = reference(TOKENS).logits
    wrapped = prepare_group_training(build_model(tiny_config, seed=1), registry.group(1))
    torch.testing.assert_close(wrapped.model.eval()(TOKENS).logits, expected, rtol=0, atol=1e-5)


def test_frozen_experts_in_bf16_stay_close(tiny_config, registry):
    expected = build_model(tiny_config, seed=1).eval()(TOKENS).logits
    wrapped = prepare_group_training(
        build_model(tiny_config, seed=1), registry.group(1), frozen_dtype=torch.bfloat16
    )
    layer = MoEAdapter(wrapped.model).layers[0]
    assert layer.experts.frozen.gate_up_proj.dtype == torch.bfloat16
    assert wrapped.trainable_parameters()[0].dtype == torch.float32
    diff = (wrapped.model.eval()(TOKENS).logits - expected).abs()
    assert diff.mean() < 5e-3 and diff.max() < 0.1, (diff.mean().item(), diff.max().item())


def test_only_group_rows_carry_gradients_and_optimizer_state(tiny_config, registry, corpora):
    group = registry.group(2)
    model = build_model(tiny_config, seed=1)
    adapter = MoEAdapter(model)
    expected_shapes = group_tensor_shapes(adapter, group)
    wrapped = prepare_group_training(model, group)
    params = wrapped.trainable_parameters()
    assert [tuple(p.shape) for p in params] == list(expected_shapes.values())

    optimizer = torch.optim.AdamW(params, lr=1e-3)
    loss = wrapped.model(input_ids=corpora["math"].train[:4], labels=corpora["math"].train[:4]).loss
    loss.backward()
    optimizer.step()

    with_grad = [n for n, p in wrapped.model.named_parameters() if p.grad is not None]
    assert len(with_grad) == len(params)
    assert all(".experts.trainable." in n for n in with_grad)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
    state_numel = sum(t.numel() for s in optimizer.state.values() for t in s.values() if t.dim())
    group_numel = sum(p.numel() for p in params)
    assert state_numel == 2 * group_numel
    fused_numel = sum(layer.experts.frozen.gate_up_proj.numel() for layer in adapter.layers)
    assert group_numel < fused_numel


def test_training_then_applying_the_delta_changes_only_the_group_rows(
    tiny_config, registry, corpora
):
    group = registry.group(0)
    wrapped = prepare_group_training(build_model(tiny_config, seed=1), group)
    start = wrapped.group_tensors()
    train(
        wrapped.model,
        wrapped.trainable_parameters(),
        train_batches(corpora["code"].train, batch_size=4, seed=0),
        InnerConfig(lr=1e-2, weight_decay=0.1),
        max_steps=2,
    )
    delta = pseudo_gradient(start, wrapped.group_tensors())
    assert all(d.abs().max() > 0 for d in delta.values())

    full = build_model(tiny_config, seed=1)
    before = {k: v.clone() for k, v in full.state_dict().items()}
    adapter = MoEAdapter(full)
    add_to_group_rows(adapter, group, delta, alpha=-1.0)
    after = full.state_dict()
    for name, value in after.items():
        if name in delta:
            ids = torch.tensor(group.experts[int(name.split(".")[2])])
            others = torch.ones(value.shape[0], dtype=torch.bool)
            others[ids] = False
            assert value[others].equal(before[name][others]), name
            assert not value[ids].equal(before[name][ids]), name
        else:
            assert value.equal(before[name]), name


def test_snapshot_and_write_back_is_an_exact_revert(tiny_config, registry):
    model = build_model(tiny_config, seed=2)
    adapter = MoEAdapter(model)
    group = registry.group(3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    snapshot = read_group_rows(adapter, group)
    noise = {k: torch.randn_like(v) * 1e-3 for k, v in snapshot.items()}
    add_to_group_rows(adapter, group, noise)
    assert not all(model.state_dict()[k].equal(before[k]) for k in snapshot)
    write_group_rows(adapter, group, snapshot)
    assert all(v.equal(before[k]) for k, v in model.state_dict().items())


def test_partial_slice_then_scatter_is_bit_exact(tiny_config, registry):
    for group in registry.groups:
        full = build_model(tiny_config, seed=4)
        before = {k: v.clone() for k, v in full.state_dict().items()}
        partial = prepare_group_training(full, group, TrainingMode.PARTIAL)
        assert MoEAdapter(partial.model).num_experts == group.size(0)
        write_group_rows(MoEAdapter(full), group, partial.group_tensors())
        assert all(v.equal(before[k]) for k, v in full.state_dict().items())


def test_partial_model_equals_full_model_routing_only_within_the_group(tiny_config, registry):
    group = registry.group(1)
    full = build_model(tiny_config, seed=5).eval()
    partial = prepare_group_training(build_model(tiny_config, seed=5), group, TrainingMode.PARTIAL)
    outside = torch.ones(16, dtype=torch.bool)
    outside[list(group.experts[0])] = False
    masked_rows = -1e9 * outside.float()

    def mask_router(module, args, output):
        logits, _, _ = output
        logits = logits + masked_rows
        probs = torch.softmax(logits, dim=-1, dtype=torch.float)
        top, idx = torch.topk(probs, module.top_k, dim=-1)
        top = top / top.sum(dim=-1, keepdim=True)
        return logits, top.to(logits.dtype), idx

    for layer in MoEAdapter(full).layers:
        layer.router.register_forward_hook(mask_router)
    torch.testing.assert_close(
        partial.model.eval()(TOKENS).logits, full(TOKENS).logits, rtol=0, atol=1e-5
    )


def test_full_routing_training_lowers_the_full_models_held_out_loss(
    tiny_config, warm_state, registry, corpora
):
    """A real learning test: the delta, applied to a fresh full model, helps its domain."""
    group = registry.group(0)
    held_out = corpora["code"].held_out[:64]
    model = build_model(tiny_config)
    model.load_state_dict(warm_state)
    base = sequence_losses(model, held_out)

    wrapped = prepare_group_training(model, group)
    start = wrapped.group_tensors()
    report = train(
        wrapped.model,
        wrapped.trainable_parameters(),
        train_batches(corpora["code"].train, batch_size=16, seed=1),
        InnerConfig(lr=3e-3),
        max_steps=25,
    )
    assert report.loss_end < report.loss_start
    delta = pseudo_gradient(start, wrapped.group_tensors())

    fresh = build_model(tiny_config)
    fresh.load_state_dict(warm_state)
    add_to_group_rows(MoEAdapter(fresh), group, delta, alpha=-1.0)
    after = sequence_losses(fresh, held_out)
    gain = (base - after).mean().item()
    improved = (after < base).float().mean().item()
    assert gain > 0.01, f"held-out gain {gain:.4f}"
    assert improved > 0.7, f"only {improved:.0%} of held-out sequences improved"

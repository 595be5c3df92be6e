"""Expert-group training: exactness of both modes, what is trainable, and that it learns."""

import pytest
import torch

from blockzero.data.batches import train_batches
from blockzero.delta.pseudo_gradient import pseudo_gradient
from blockzero.model.evaluation import sequence_losses
from blockzero.model.families import EXPERT_TENSORS, MoEAdapter
from blockzero.model.group_rows import (
    add_to_group_rows,
    group_tensor_shapes,
    read_group_rows,
    write_group_rows,
)
from blockzero.model.group_training import (
    Int8Experts,
    TrainingMode,
    prepare_group_training,
    quantize_rows,
)
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


def test_int8_rows_round_trip_within_half_a_step():
    weight = torch.randn(3, 8, 16) * torch.logspace(-3, 1, 8)[None, :, None]
    codes, scales = quantize_rows(weight)
    assert codes.dtype == torch.int8 and scales.shape == (3, 8, 1)
    error = (codes.float() * scales - weight).abs()
    assert (error <= scales / 2 + 1e-7).all()
    assert codes.abs().amax(dim=-1).eq(127).all()


def test_frozen_experts_in_int8_stay_close_and_train_only_the_group(tiny_config, registry):
    reference = build_model(tiny_config, seed=1).eval()
    expected = reference(TOKENS).logits
    wrapped = prepare_group_training(
        build_model(tiny_config, seed=1), registry.group(1), frozen_dtype=torch.int8
    )
    adapter = MoEAdapter(wrapped.model)
    frozen = adapter.layers[0].experts.frozen
    assert isinstance(frozen, Int8Experts)
    assert frozen.gate_up_proj_codes.dtype == torch.int8
    assert not any(p.dtype.is_floating_point and p.dim() == 3 for p in frozen.parameters())
    diff = (wrapped.model.eval()(TOKENS).logits - expected).abs()
    assert diff.mean() < 1e-3 and diff.max() < 1e-2, (diff.mean().item(), diff.max().item())

    for ref_layer, layer in zip(MoEAdapter(reference).layers, adapter.layers, strict=True):
        assert layer.router.weight.equal(ref_layer.router.weight)
    wrapped.model.train()(input_ids=TOKENS, labels=TOKENS).loss.backward()
    with_grad = {n for n, p in wrapped.model.named_parameters() if p.grad is not None}
    assert with_grad == {n for n, p in wrapped.model.named_parameters() if p.requires_grad}
    assert len(with_grad) == len(wrapped.trainable_parameters())
    assert all(".experts.trainable." in n for n in with_grad)


def test_int8_forward_and_backward_equal_fp32_on_the_dequantized_weights(tiny_config, registry):
    """The custom backward re-dequantizes instead of saving the weight: same gradients."""
    group = registry.group(2)
    dequantized = build_model(tiny_config, seed=3)
    with torch.no_grad():
        for layer in MoEAdapter(dequantized).layers:
            for name in EXPERT_TENSORS:
                codes, scales = quantize_rows(getattr(layer.experts, name))
                getattr(layer.experts, name).copy_(codes.float() * scales)
    fp32 = prepare_group_training(dequantized, group)
    int8 = prepare_group_training(build_model(tiny_config, seed=3), group, frozen_dtype=torch.int8)
    with torch.no_grad():
        for a, b in zip(fp32.trainable_parameters(), int8.trainable_parameters(), strict=True):
            b.copy_(a)
    losses = []
    for wrapped in (fp32, int8):
        loss = wrapped.model.train()(input_ids=TOKENS, labels=TOKENS).loss
        loss.backward()
        losses.append(loss.detach())
    torch.testing.assert_close(losses[0], losses[1], rtol=0, atol=1e-5)
    for a, b in zip(fp32.trainable_parameters(), int8.trainable_parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("frozen_dtype", [torch.float32, torch.int8])
def test_activation_checkpointing_gives_the_same_gradients(tiny_config, registry, frozen_dtype):
    grads = []
    for checkpointing in (False, True):
        wrapped = prepare_group_training(
            build_model(tiny_config, seed=1),
            registry.group(0),
            frozen_dtype=frozen_dtype,
            checkpointing=checkpointing,
        )
        assert wrapped.model.model.gradient_checkpointing is checkpointing
        out = wrapped.model.train()(
            input_ids=TOKENS, labels=TOKENS, output_router_logits=True, use_cache=False
        )
        out.loss.backward()
        grads.append([p.grad for p in wrapped.trainable_parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7)


def test_group_rows_in_bf16_keep_the_full_model_names_and_fp32_snapshots(tiny_config, registry):
    group = registry.group(1)
    model = build_model(tiny_config, seed=1)
    expected = read_group_rows(MoEAdapter(model), group)
    wrapped = prepare_group_training(
        model, group, frozen_dtype=torch.int8, group_dtype=torch.bfloat16
    )
    assert all(p.dtype == torch.bfloat16 for p in wrapped.trainable_parameters())
    snapshot = wrapped.group_tensors()
    assert snapshot.keys() == expected.keys()
    for name, value in snapshot.items():
        assert value.dtype == torch.float32
        assert value.equal(expected[name].to(torch.bfloat16).float()), name
    wrapped.model.train()(input_ids=TOKENS, labels=TOKENS).loss.backward()
    assert all(
        p.grad is not None and p.grad.dtype == torch.bfloat16
        for p in wrapped.trainable_parameters()
    )


def test_partial_mode_refuses_bf16_rows(tiny_config, registry):
    with pytest.raises(ValueError, match="group_dtype"):
        prepare_group_training(
            build_model(tiny_config),
            registry.group(0),
            TrainingMode.PARTIAL,
            group_dtype=torch.bfloat16,
        )


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

"""Make one expert group trainable while everything else stays frozen.

Two modes behind one interface (`GroupTrainingModel`):

* **full routing** (default): the full model's forward. Each MoE layer's experts module is wrapped
  so tokens are routed over all experts exactly as in the global model, but only the group's rows
  live in a small trainable parameter; the other experts stay in the original fused tensors,
  frozen, optionally held at a lower precision (bf16, or int8 with per-row scales: `Int8Experts`).
  Gradients and optimizer state exist for the group's rows only; the rows can be held in bf16
  (pair them with a stochastic-rounding optimizer, `blockzero.model.training.build_optimizer`).
* **partial** (memory-minimal): a model of the same class holding only the group's experts
  (`num_experts` = group size, expert and router rows sliced), routing only among them. Its
  updates are scattered back by row. Measured: its deltas do not transfer to the full model
  (see `scripts/bench/miner_memory.py`), so it exists for comparison, not as the default.

Either mode can checkpoint activations per decoder layer (transformers' non-reentrant
checkpointing): the backward pass recomputes each layer's forward instead of keeping it.
"""

import copy
import warnings
from enum import StrEnum
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedModel

from blockzero.model.families import EXPERT_TENSORS, MoEAdapter
from blockzero.model.group_rows import GroupTensors, group_row_index, read_group_rows
from blockzero.protocol.expert_groups import ExpertGroup


class TrainingMode(StrEnum):
    FULL_ROUTING = "full_routing"
    PARTIAL = "partial"


class GroupTrainingModel(Protocol):
    """What a trainer needs: a model to run forward on, the parameters to optimise, and the
    group's current rows under their full-model names."""

    model: nn.Module

    def trainable_parameters(self) -> list[nn.Parameter]: ...

    def group_tensors(self) -> GroupTensors: ...


def _experts_config(experts: nn.Module, adapter: MoEAdapter, num_experts: int):
    cfg = copy.copy(experts.config)
    setattr(cfg, adapter.family.expert_count_field, num_experts)
    return cfg


def quantize_rows(weight_ERC: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 with one fp32 absmax scale per output row (`[E, R, C]` -> codes, `[E, R, 1]`).

    One expert at a time, so the fp32 temporaries are one expert's slice, not the layer's.
    """
    codes = torch.empty(weight_ERC.shape, dtype=torch.int8, device=weight_ERC.device)
    scales = torch.empty((*weight_ERC.shape[:-1], 1), dtype=torch.float32, device=weight_ERC.device)
    for e in range(weight_ERC.shape[0]):
        w_RC = weight_ERC[e].float()
        s_R1 = w_RC.abs().amax(dim=-1, keepdim=True).clamp(min=1e-12) / 127.0
        codes[e] = (w_RC / s_R1).round().clamp(-127, 127).to(torch.int8)
        scales[e] = s_R1
    return codes, scales


class _Int8Linear(torch.autograd.Function):
    """`x @ (codes * scales).T` that saves the int8 codes, not a dequantized weight, for backward.

    A plain `F.linear` on a dequantized slice would keep every slice alive until backward, i.e.
    the frozen experts at compute precision again. The per-row scale is applied to the output
    (and to the incoming gradient in backward) rather than to the weight, so only the int8 ->
    float conversion of the slice is paid. No gradient flows to the codes.
    """

    @staticmethod
    def forward(ctx, x, codes, scales):  # type: ignore[override]
        ctx.save_for_backward(codes, scales)
        ctx.x_dtype = x.dtype
        return F.linear(x, codes.to(x.dtype)) * scales.squeeze(-1).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        codes, scales = ctx.saved_tensors
        dtype = ctx.x_dtype
        return (grad.to(dtype) * scales.squeeze(-1).to(dtype)) @ codes.to(dtype), None, None


class Int8Experts(nn.Module):
    """Frozen fused experts stored as int8 codes + per-row scales (buffers, never trained).

    Same call as transformers' experts module; each hit expert's slice is converted on the fly to
    the hidden states' precision and its row scales applied (`_Int8Linear`). Index `num_experts`
    is skipped (transformers' sentinel), which `GroupExperts` uses for slots of the group.
    """

    def __init__(self, experts: nn.Module) -> None:
        super().__init__()
        self.num_experts: int = experts.num_experts
        self.act_fn = experts.act_fn
        for name in EXPERT_TENSORS:
            codes, scales = quantize_rows(getattr(experts, name).detach())
            self.register_buffer(f"{name}_codes", codes, persistent=False)
            self.register_buffer(f"{name}_scales", scales, persistent=False)

    def forward(
        self, hidden_states: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor
    ) -> torch.Tensor:
        # (token, slot) pairs sorted by expert: one gather in, one index_add out, and a split in
        # between, so backward does not build a full-size gradient per expert.
        num_slots = top_k_index.shape[-1]
        flat = top_k_index.reshape(-1)
        counts = torch.bincount(flat, minlength=self.num_experts + 1)[: self.num_experts].tolist()
        order = flat.argsort(stable=True)[: sum(counts)]  # the sentinel sorts last: dropped
        token_idx = order // num_slots
        out = torch.zeros_like(hidden_states)
        if token_idx.numel() == 0:
            return out
        chunks = hidden_states[token_idx].split(counts)
        down = torch.cat([self._expert(e, x) for e, x in enumerate(chunks) if x.shape[0]])
        weighted = down * top_k_weights.reshape(-1)[order, None]
        return out.index_add(0, token_idx, weighted.to(out.dtype))

    def _expert(self, expert: int, x: torch.Tensor) -> torch.Tensor:
        gate, up = _Int8Linear.apply(
            x, self.gate_up_proj_codes[expert], self.gate_up_proj_scales[expert]
        ).chunk(2, dim=-1)
        return _Int8Linear.apply(
            self.act_fn(gate) * up, self.down_proj_codes[expert], self.down_proj_scales[expert]
        )


class GroupExperts(nn.Module):
    """Drop-in replacement for a layer's experts module: same routing, group rows trainable.

    Each (token, slot) chosen by the router is computed by the frozen fused experts, unless the
    slot's expert belongs to the group, in which case it is computed by the trainable copy of the
    group's rows. Summing the two gives exactly the original layer output (up to the frozen and
    group precisions). `frozen_dtype` torch.int8 means `Int8Experts`.
    """

    def __init__(
        self,
        frozen: nn.Module,
        ids: torch.Tensor,
        adapter: MoEAdapter,
        frozen_dtype: torch.dtype,
        group_dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        num_experts = frozen.num_experts
        trainable = type(frozen)(_experts_config(frozen, adapter, len(ids)))
        with torch.no_grad():
            for name in EXPERT_TENSORS:
                rows = (
                    getattr(frozen, name)
                    .detach()
                    .index_select(0, ids.to(getattr(frozen, name).device))
                )
                getattr(trainable, name).data = rows.to(group_dtype).clone()
        self.trainable = trainable.to(ids.device)
        if frozen_dtype == torch.int8:
            self.frozen: nn.Module = Int8Experts(frozen)
        else:
            self.frozen = frozen.to(frozen_dtype).requires_grad_(False)
        local = torch.full((num_experts,), -1, dtype=torch.long)
        local[ids.cpu()] = torch.arange(len(ids))
        self.register_buffer("local_index", local.to(ids.device), persistent=False)

    def forward(
        self, hidden_states: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor
    ) -> torch.Tensor:
        local = self.local_index[top_k_index]
        in_group = local >= 0
        if isinstance(self.frozen, Int8Experts):
            # Group slots are skipped outright rather than computed with weight 0.
            frozen_dtype = hidden_states.dtype
            frozen_index = top_k_index.masked_fill(in_group, self.frozen.num_experts)
        else:
            frozen_dtype = self.frozen.gate_up_proj.dtype
            frozen_index = top_k_index
        out = self.frozen(
            hidden_states.to(frozen_dtype),
            frozen_index,
            top_k_weights.masked_fill(in_group, 0.0).to(frozen_dtype),
        ).to(hidden_states.dtype)
        tokens = in_group.any(dim=-1).nonzero().squeeze(-1)
        if tokens.numel() == 0:
            return out
        group_dtype = self.trainable.gate_up_proj.dtype
        group_out = self.trainable(
            hidden_states[tokens].to(group_dtype),
            local[tokens].clamp(min=0),
            (top_k_weights[tokens] * in_group[tokens]).to(group_dtype),
        )
        return out.index_add(0, tokens, group_out.to(out.dtype))


class FullRoutingGroupModel:
    """Full-routing mode. Wraps the experts of `model` in place: pass the miner's own copy."""

    def __init__(
        self,
        model: PreTrainedModel,
        group: ExpertGroup,
        *,
        frozen_dtype: torch.dtype = torch.float32,
        group_dtype: torch.dtype = torch.float32,
    ) -> None:
        self.model = model
        self.group = group
        self.adapter = MoEAdapter(model)
        model.requires_grad_(False)
        self._names: list[tuple[str, nn.Parameter]] = []
        for layer in self.adapter.layers:
            device = layer.experts.gate_up_proj.device
            wrapper = GroupExperts(
                layer.experts,
                group_row_index(group, layer.index, device),
                self.adapter,
                frozen_dtype,
                group_dtype,
            )
            layer.block.experts = wrapper
            for tensor in EXPERT_TENSORS:
                self._names.append(
                    (layer.expert_tensor_name(tensor), getattr(wrapper.trainable, tensor))
                )

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for _, p in self._names]

    def group_tensors(self) -> GroupTensors:
        return {name: p.detach().to(torch.float32, copy=True) for name, p in self._names}


class PartialGroupModel:
    """Partial mode: a smaller model of the same class with only the group's experts."""

    def __init__(self, model: PreTrainedModel, group: ExpertGroup) -> None:
        adapter = MoEAdapter(model)
        sizes = {group.size(layer.index) for layer in adapter.layers}
        if len(sizes) != 1:
            raise ValueError(f"partial mode needs the same group size in every layer, got {sizes}")
        (size,) = sizes
        if not adapter.family.renormalizes_topk(adapter.config):
            warnings.warn(
                "this model does not renormalise top-k routing weights, so a partial model's "
                "routing weights differ from the full model's",
                stacklevel=2,
            )
        cfg = copy.deepcopy(adapter.config)
        setattr(cfg, adapter.family.expert_count_field, size)
        partial = AutoModelForCausalLM.from_config(cfg, dtype=model.dtype)
        state = dict(model.state_dict())
        for layer in adapter.layers:
            ids = group_row_index(group, layer.index)
            for key in [
                *(layer.expert_tensor_name(t) for t in EXPERT_TENSORS),
                f"{layer.prefix}.gate.weight",
            ]:
                state[key] = state[key].index_select(0, ids.to(state[key].device)).clone()
        partial.load_state_dict(state, strict=True, assign=True)
        partial.requires_grad_(False)
        self.model = partial
        self.group = group
        self.adapter = MoEAdapter(partial)
        for layer in self.adapter.layers:
            for tensor in EXPERT_TENSORS:
                getattr(layer.experts, tensor).requires_grad_(True)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [getattr(layer.experts, t) for layer in self.adapter.layers for t in EXPERT_TENSORS]

    def group_tensors(self) -> GroupTensors:
        return read_group_rows(self.adapter, _all_rows(self.adapter, self.group))


def _all_rows(adapter: MoEAdapter, group: ExpertGroup) -> ExpertGroup:
    """The partial model's own view of the group: every one of its experts, in order."""
    return group.model_copy(
        update={
            "experts": {
                layer.index: tuple(range(group.size(layer.index))) for layer in adapter.layers
            }
        }
    )


def prepare_group_training(
    model: PreTrainedModel,
    group: ExpertGroup,
    mode: TrainingMode = TrainingMode.FULL_ROUTING,
    *,
    frozen_dtype: torch.dtype = torch.float32,
    group_dtype: torch.dtype = torch.float32,
    checkpointing: bool = False,
) -> GroupTrainingModel:
    """`frozen_dtype` (full routing only): float32, bfloat16, or int8 (`Int8Experts`).
    `group_dtype`: the trainable rows' precision. `checkpointing`: recompute each decoder layer
    in backward instead of keeping its activations (same gradients, about one more forward)."""
    gtm: GroupTrainingModel
    if mode is TrainingMode.FULL_ROUTING:
        gtm = FullRoutingGroupModel(
            model, group, frozen_dtype=frozen_dtype, group_dtype=group_dtype
        )
    elif group_dtype != torch.float32:
        # Partial mode is kept for comparison only; it trains in the model's own precision.
        raise ValueError("mode partial trains its rows in float32: set group_dtype float32")
    else:
        gtm = PartialGroupModel(model, group)
    if checkpointing:
        with warnings.catch_warnings():
            # Renamed activation_checkpointing_enable in transformers 5.2x; the old name works
            # across every 5.x this project allows and only warns.
            warnings.simplefilter("ignore", FutureWarning)
            gtm.model.gradient_checkpointing_enable({"use_reentrant": False})
    return gtm

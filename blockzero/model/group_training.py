"""Make one expert group trainable while everything else stays frozen.

Two modes behind one interface (`GroupTrainingModel`):

* **full routing** (default): the full model's forward. Each MoE layer's experts module is wrapped
  so tokens are routed over all experts exactly as in the global model, but only the group's rows
  live in a small trainable parameter; the other experts stay in the original fused tensors,
  frozen, optionally held at a lower precision. Gradients and optimizer state exist for the
  group's rows only.
* **partial** (memory-minimal): a model of the same class holding only the group's experts
  (`num_experts` = group size, expert and router rows sliced), routing only among them. Its
  updates are scattered back by row. Measured: its deltas do not transfer to the full model
  (see `scripts/bench_miner_memory.py`), so it exists for comparison, not as the default.
"""

import copy
import warnings
from enum import StrEnum
from typing import Protocol

import torch
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


class GroupExperts(nn.Module):
    """Drop-in replacement for a layer's experts module: same routing, group rows trainable.

    Each (token, slot) chosen by the router is computed by the frozen fused experts, unless the
    slot's expert belongs to the group, in which case it is computed by the trainable copy of the
    group's rows. Summing the two gives exactly the original layer output.
    """

    def __init__(
        self, frozen: nn.Module, ids: torch.Tensor, adapter: MoEAdapter, frozen_dtype: torch.dtype
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
                getattr(trainable, name).data = rows.to(torch.float32).clone()
        self.trainable = trainable.to(ids.device)
        self.frozen = frozen.to(frozen_dtype).requires_grad_(False)
        local = torch.full((num_experts,), -1, dtype=torch.long)
        local[ids.cpu()] = torch.arange(len(ids))
        self.register_buffer("local_index", local.to(ids.device), persistent=False)

    def forward(
        self, hidden_states: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor
    ) -> torch.Tensor:
        local = self.local_index[top_k_index]
        in_group = local >= 0
        frozen_dtype = self.frozen.gate_up_proj.dtype
        out = self.frozen(
            hidden_states.to(frozen_dtype),
            top_k_index,
            top_k_weights.masked_fill(in_group, 0.0).to(frozen_dtype),
        ).to(hidden_states.dtype)
        tokens = in_group.any(dim=-1).nonzero().squeeze(-1)
        if tokens.numel() == 0:
            return out
        group_out = self.trainable(
            hidden_states[tokens],
            local[tokens].clamp(min=0),
            top_k_weights[tokens] * in_group[tokens],
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
) -> GroupTrainingModel:
    if mode is TrainingMode.FULL_ROUTING:
        return FullRoutingGroupModel(model, group, frozen_dtype=frozen_dtype)
    return PartialGroupModel(model, group)

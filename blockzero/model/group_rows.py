"""Read and write one expert group's rows of a full model's fused expert tensors.

A group's tensors are named by the full model's parameter name
(`model.layers.3.mlp.experts.gate_up_proj`) and hold only the group's rows, in registry order.
These names are the keys of a submission file, so they are part of the protocol.
"""

import torch
from torch import nn

from blockzero.model.families import EXPERT_TENSORS, MoEAdapter
from blockzero.protocol.expert_groups import ExpertGroup

GroupTensors = dict[str, torch.Tensor]


def group_row_index(
    group: ExpertGroup, layer: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    return torch.tensor(group.experts[layer], dtype=torch.long, device=device)


def _fused(adapter: MoEAdapter, layer: int, tensor: str) -> nn.Parameter:
    return getattr(adapter.layer(layer).experts, tensor)


def group_tensor_shapes(adapter: MoEAdapter, group: ExpertGroup) -> dict[str, tuple[int, ...]]:
    """The exact shape of every tensor a submission for `group` must carry."""
    out: dict[str, tuple[int, ...]] = {}
    for layer in adapter.layers:
        for tensor in EXPERT_TENSORS:
            full = _fused(adapter, layer.index, tensor)
            out[layer.expert_tensor_name(tensor)] = (group.size(layer.index), *full.shape[1:])
    return out


def read_group_rows(adapter: MoEAdapter, group: ExpertGroup) -> GroupTensors:
    """A float32 copy of the group's rows (a snapshot, not a view)."""
    out: GroupTensors = {}
    for layer in adapter.layers:
        for tensor in EXPERT_TENSORS:
            full = _fused(adapter, layer.index, tensor)
            rows = full.detach().index_select(0, group_row_index(group, layer.index, full.device))
            out[layer.expert_tensor_name(tensor)] = rows.to(torch.float32, copy=True)
    return out


@torch.no_grad()
def write_group_rows(adapter: MoEAdapter, group: ExpertGroup, rows: GroupTensors) -> None:
    """Overwrite the group's rows in place; with a snapshot from `read_group_rows` this is an exact revert."""
    for layer in adapter.layers:
        for tensor in EXPERT_TENSORS:
            full = _fused(adapter, layer.index, tensor)
            new = rows[layer.expert_tensor_name(tensor)].to(device=full.device, dtype=full.dtype)
            full.index_copy_(0, group_row_index(group, layer.index, full.device), new)


@torch.no_grad()
def add_to_group_rows(
    adapter: MoEAdapter, group: ExpertGroup, update: GroupTensors, *, alpha: float = 1.0
) -> None:
    """rows += alpha * update, in place, computed in float32 then stored at the model's dtype."""
    current = read_group_rows(adapter, group)
    write_group_rows(
        adapter,
        group,
        {k: v + alpha * update[k].to(v.device, torch.float32) for k, v in current.items()},
    )

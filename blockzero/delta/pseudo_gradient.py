"""delta = start - end: the pseudo-gradient a miner publishes for its group's rows."""

import torch

from blockzero.model.group_rows import GroupTensors


def pseudo_gradient(start: GroupTensors, end: GroupTensors) -> GroupTensors:
    """Computed in float32 whatever the training precision, so the codec decides the rounding."""
    if start.keys() != end.keys():
        raise ValueError(f"tensor names differ: {sorted(start.keys() ^ end.keys())}")
    out = {}
    for name, s in start.items():
        if s.shape != end[name].shape:
            raise ValueError(f"{name}: start {tuple(s.shape)} vs end {tuple(end[name].shape)}")
        out[name] = s.to(torch.float32) - end[name].to(torch.float32)
    return out


def global_norm(tensors: GroupTensors) -> float:
    return torch.sqrt(sum(t.to(torch.float32).pow(2).sum() for t in tensors.values())).item()

"""The DiLoCo outer optimizer: SGD with Nesterov momentum over a group's tensors.

Written as a function over plain tensors and an explicit momentum dict (rather than a
`torch.optim.SGD` over model parameters) so the validator can step one group's rows without
touching the others, and save and restore the state exactly. It matches
`torch.optim.SGD(lr, momentum, nesterov=True)` step for step.
"""

from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from safetensors.torch import load_file, save_file

from blockzero.atomic import atomic_path
from blockzero.model.group_rows import GroupTensors


class OuterConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    lr: float = Field(0.7, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True

    @classmethod
    def from_momentum(cls, lr: float, momentum: float) -> "OuterConfig":
        """Nesterov SGD when there is momentum, plain SGD when there is none (lr 1: averaging).
        Every caller that maps settings to a step goes through here."""
        return cls(lr=lr, momentum=momentum, nesterov=momentum > 0)

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> "OuterConfig":
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0 (use nesterov=False for plain SGD)")
        return self


@torch.no_grad()
def outer_step(
    params: GroupTensors, pseudo_grads: GroupTensors, momentum: GroupTensors, cfg: OuterConfig
) -> None:
    """Update `params` and `momentum` in place. A missing momentum entry starts as the gradient,
    as in torch's SGD. Only the given tensors move: a group not passed in is not touched."""
    for name, g in pseudo_grads.items():
        g = g.to(params[name].dtype)
        if cfg.momentum == 0:
            update = g
        else:
            buf = momentum.get(name)
            if buf is None:
                buf = momentum[name] = g.clone()
            else:
                buf.mul_(cfg.momentum).add_(g)
            update = g.add(buf, alpha=cfg.momentum) if cfg.nesterov else buf
        params[name].sub_(update, alpha=cfg.lr)


def save_momentum(path: Path, momentum: GroupTensors) -> None:
    with atomic_path(Path(path)) as tmp:
        save_file({k: v.contiguous() for k, v in momentum.items()}, str(tmp))


def load_momentum(path: Path) -> GroupTensors:
    return load_file(str(path)) if Path(path).exists() else {}

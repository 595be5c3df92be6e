"""The inner training loop: AdamW on a given set of parameters, for a step budget or a deadline.

`build_optimizer` picks the AdamW: torch's for fp32 parameters; torchao's when the parameters
are bf16 (stochastic rounding, so updates smaller than a bf16 step are kept in expectation
instead of rounded away) or when 8-bit moments are asked for (`optimizer: adamw8bit`, block-wise
quantized states, 2 bytes/param instead of 8). torchao's step is `torch.compile`d: the first
step of each parameter shape compiles (seconds; a C++ compiler is needed on CPU).

One loop serves the miner (a group's rows), the warm-up of a tiny model (every parameter) and the
benchmarks. A non-finite loss stops the run before the optimizer step, so a broken batch can never
poison the delta.
"""

import math
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn
from torchao.optim import AdamW8bit, _AdamW


class InnerConfig(BaseModel):
    """Inner-optimizer settings. `aux_loss` adds the router's load-balancing loss where the model
    computes one (the router itself is frozen on miners, so it only shapes the hidden states)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lr: float = Field(3e-3, gt=0)
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    aux_loss: bool = True
    optimizer: Literal["adamw", "adamw8bit"] = "adamw"


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; nothing from this step was applied."""


@dataclass(frozen=True)
class TrainReport:
    steps: int
    tokens: int
    loss_start: float
    loss_end: float
    seconds: float
    peak_memory_bytes: int

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def peak_memory_bytes(device: torch.device) -> int:
    """Peak CUDA allocation on a GPU; the process's peak resident set on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def causal_lm_loss(model: nn.Module, batch: torch.Tensor, *, aux_loss: bool) -> torch.Tensor:
    out = model(input_ids=batch, labels=batch, output_router_logits=aux_loss, use_cache=False)
    return out.loss


def build_optimizer(params: list[nn.Parameter], cfg: InnerConfig) -> torch.optim.Optimizer:
    """AdamW for `params`; see the module docstring for which implementation and why."""
    bf16 = any(p.dtype == torch.bfloat16 for p in params)
    kwargs = {"lr": cfg.lr, "betas": cfg.betas, "weight_decay": cfg.weight_decay}
    if cfg.optimizer == "adamw8bit":
        return AdamW8bit(params, **kwargs, bf16_stochastic_round=bf16)
    if bf16:
        return _AdamW(params, **kwargs, bf16_stochastic_round=True)
    return torch.optim.AdamW(params, **kwargs)


def train(
    model: nn.Module,
    params: list[nn.Parameter],
    batches: Iterator[torch.Tensor],
    cfg: InnerConfig,
    *,
    max_steps: int | None = None,
    deadline: float | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
    description: str = "training",
) -> TrainReport:
    """Run AdamW until `max_steps` or until `time.monotonic()` passes `deadline`, whichever first.

    Loss start/end are means over the first and last up-to-5 steps, so one noisy batch does not
    decide them.
    """
    if max_steps is None and deadline is None:
        raise ValueError("give max_steps, a deadline, or both")
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    optimizer = build_optimizer(params, cfg)
    model.train()
    losses: list[float] = []
    tokens = 0
    start = time.monotonic()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} loss {task.fields[loss]:.4f}"),
        TimeRemainingColumn(),
        disable=not progress,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=max_steps, loss=float("nan"))
        while (max_steps is None or len(losses) < max_steps) and (
            deadline is None or time.monotonic() < deadline
        ):
            batch = next(batches).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = causal_lm_loss(model, batch, aux_loss=cfg.aux_loss)
            value = loss.item()
            if not math.isfinite(value):
                raise NonFiniteLossError(f"loss is {value} at step {len(losses)}")
            # A batch whose tokens the router sends to none of the trained experts gives a loss
            # that does not depend on them: nothing to step (seen after a short warm-up whose
            # routing had collapsed onto two experts).
            if loss.requires_grad:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
            losses.append(value)
            tokens += batch.numel()
            bar.update(task, advance=1, loss=value)
    model.eval()
    if not losses:
        raise ValueError("no training step fit before the deadline")
    window = min(5, len(losses))
    return TrainReport(
        steps=len(losses),
        tokens=tokens,
        loss_start=sum(losses[:window]) / window,
        loss_end=sum(losses[-window:]) / window,
        seconds=time.monotonic() - start,
        peak_memory_bytes=peak_memory_bytes(device),
    )

"""Expert activation profiles: how often each MoE layer's router picks each expert on some data.

ESFT and DES-MoE choose expert groups from these numbers. Routing is read with forward hooks on
the router modules (their output is `(router_logits, routing_weights, selected_experts)`), so the
model runs unmodified. Profiles keep raw slot counts, so the profile of a mixture of data sets is
exactly the sum of their profiles (`combine_profiles`).
"""

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

from blockzero.atomic import atomic_write_text
from blockzero.data.batches import sample_indices
from blockzero.data.domains import DomainCorpus
from blockzero.model.families import MoEAdapter

PROFILE_VERSION = 1
GENERAL = "general"


class LayerProfile(BaseModel):
    """One MoE layer, per expert e: `slot_counts[e]` top-k slots chose e; `frequency[e]` is the
    share of tokens routed to e (slots / tokens, so a layer sums to top_k); `mean_gate[e]` is the
    mean routing weight of those slots (0 if never chosen)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    layer: int
    slot_counts: tuple[int, ...]
    frequency: tuple[float, ...]
    mean_gate: tuple[float, ...]

    @classmethod
    def from_sums(
        cls, layer: int, counts: Sequence[int], gate_sums: Sequence[float], num_tokens: int
    ) -> "LayerProfile":
        return cls(
            layer=layer,
            slot_counts=tuple(int(c) for c in counts),
            frequency=tuple(c / num_tokens if num_tokens else 0.0 for c in counts),
            mean_gate=tuple(s / c if c else 0.0 for s, c in zip(gate_sums, counts, strict=True)),
        )

    def gate_sums(self) -> list[float]:
        return [g * c for g, c in zip(self.mean_gate, self.slot_counts, strict=True)]


class ExpertProfile(BaseModel):
    """Routing statistics of one model on one data set (a domain, or the general mixture)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = PROFILE_VERSION
    data: str = Field(min_length=1)
    num_experts: int = Field(gt=0)
    top_k: int = Field(gt=0)
    num_tokens: int = Field(ge=0)
    layers: tuple[LayerProfile, ...]

    @model_validator(mode="after")
    def _check(self) -> "ExpertProfile":
        for lp in self.layers:
            lengths = {len(lp.slot_counts), len(lp.frequency), len(lp.mean_gate)}
            if lengths != {self.num_experts}:
                raise ValueError(f"layer {lp.layer} does not have {self.num_experts} experts")
            if sum(lp.slot_counts) != self.num_tokens * self.top_k:
                raise ValueError(
                    f"layer {lp.layer}: {sum(lp.slot_counts)} slots for {self.num_tokens} tokens "
                    f"at top_k={self.top_k}"
                )
        return self

    @property
    def moe_layers(self) -> tuple[int, ...]:
        return tuple(lp.layer for lp in self.layers)

    def layer(self, index: int) -> LayerProfile:
        for lp in self.layers:
            if lp.layer == index:
                return lp
        raise KeyError(f"no MoE layer {index} in the profile of {self.data!r}")

    def frequency(self, layer: int) -> torch.Tensor:
        return torch.tensor(self.layer(layer).frequency, dtype=torch.float64)


class _RoutingCounter:
    """Accumulates slot counts and gate sums per layer from router forward hooks, on the
    model's device so a GPU run never waits for a copy to the host."""

    def __init__(self, adapter: MoEAdapter, device: torch.device) -> None:
        self.num_experts = adapter.num_experts
        self.counts = {
            layer.index: torch.zeros(self.num_experts, dtype=torch.int64, device=device)
            for layer in adapter.layers
        }
        self.gates = {
            layer.index: torch.zeros(self.num_experts, dtype=torch.float64, device=device)
            for layer in adapter.layers
        }

    def hook(self, layer: int):
        def record(_module: nn.Module, _inputs, output) -> None:
            _, weights, selected = output
            selected = selected.reshape(-1)
            self.counts[layer] += torch.bincount(selected, minlength=self.num_experts)
            self.gates[layer].index_add_(0, selected, weights.reshape(-1).double())

        return record


@contextmanager
def _router_hooks(adapter: MoEAdapter, counter: _RoutingCounter) -> Iterator[None]:
    handles = [
        layer.router.register_forward_hook(counter.hook(layer.index)) for layer in adapter.layers
    ]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def profile_experts(
    model: nn.Module,
    sequences: torch.Tensor,
    *,
    data: str,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> ExpertProfile:
    """Run `sequences` `[N, T]` through the model in batches and count every routing decision."""
    adapter = MoEAdapter(model)
    device = torch.device(device)
    model.to(device).eval()
    counter = _RoutingCounter(adapter, device)
    with (
        _router_hooks(adapter, counter),
        Progress(
            TextColumn("profiling {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            disable=not progress,
            transient=True,
        ) as bar,
    ):
        task = bar.add_task(data, total=len(sequences))
        for start in range(0, len(sequences), batch_size):
            batch = sequences[start : start + batch_size].to(device)
            model(input_ids=batch)
            bar.update(task, advance=len(batch))
    num_tokens = sequences.numel()
    return ExpertProfile(
        data=data,
        num_experts=adapter.num_experts,
        top_k=adapter.top_k,
        num_tokens=num_tokens,
        layers=tuple(
            LayerProfile.from_sums(
                layer, counter.counts[layer].tolist(), counter.gates[layer].tolist(), num_tokens
            )
            for layer in counter.counts
        ),
    )


def profile_domains(
    model: nn.Module,
    corpora: Mapping[str, DomainCorpus],
    *,
    num_sequences: int,
    batch_size: int = 16,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> dict[str, ExpertProfile]:
    """A profile per domain on a seeded sample of its training split, plus `general`: their
    mixture (the same number of sequences from each domain)."""
    if GENERAL in corpora:
        raise ValueError(f"{GENERAL!r} is reserved for the mixture of the domains")
    out = {}
    for name, corpus in corpora.items():
        k = min(num_sequences, len(corpus.train))
        ids = sample_indices(len(corpus.train), k, seed=seed)
        out[name] = profile_experts(
            model,
            corpus.train[ids],
            data=name,
            batch_size=batch_size,
            device=device,
            progress=progress,
        )
    out[GENERAL] = combine_profiles(list(out.values()), data=GENERAL)
    return out


def combine_profiles(profiles: Sequence[ExpertProfile], *, data: str) -> ExpertProfile:
    """The profile of the concatenation of the profiled data sets (counts add up)."""
    first = profiles[0]
    shape = (first.num_experts, first.top_k, first.moe_layers)
    for p in profiles[1:]:
        if (p.num_experts, p.top_k, p.moe_layers) != shape:
            raise ValueError(f"profiles {first.data!r} and {p.data!r} are of different models")
    num_tokens = sum(p.num_tokens for p in profiles)
    layers = []
    for layer in first.moe_layers:
        parts = [p.layer(layer) for p in profiles]
        counts = [sum(col) for col in zip(*(lp.slot_counts for lp in parts), strict=True)]
        gates = [sum(col) for col in zip(*(lp.gate_sums() for lp in parts), strict=True)]
        layers.append(LayerProfile.from_sums(layer, counts, gates, num_tokens))
    return ExpertProfile(
        data=data,
        num_experts=first.num_experts,
        top_k=first.top_k,
        num_tokens=num_tokens,
        layers=tuple(layers),
    )


def save_profile(profile: ExpertProfile, path: Path) -> None:
    atomic_write_text(Path(path), profile.model_dump_json(indent=1))


def load_profile(path: Path) -> ExpertProfile:
    return ExpertProfile.model_validate_json(Path(path).read_text())

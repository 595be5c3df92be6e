"""Brief centralized training of a fresh tiny model so its experts specialize by domain.

Expert groups are only meaningful once experts differ; a freshly initialised model routes at
random. Tests, demos and benchmarks start from a model warmed up here, built in-process.
"""

from collections.abc import Iterator, Mapping

import torch
from torch import nn

from blockzero.data.batches import train_batches
from blockzero.data.domains import DomainCorpus
from blockzero.model.training import InnerConfig, TrainReport, train


def mixed_batches(
    corpora: Mapping[str, DomainCorpus], *, batch_size: int, seed: int
) -> Iterator[torch.Tensor]:
    """Batches taken from each domain in turn, each domain in its own seeded order."""
    streams = [
        train_batches(c.train, batch_size=batch_size, seed=seed + i)
        for i, c in enumerate(corpora.values())
    ]
    while True:
        for stream in streams:
            yield next(stream)


def warm_up(
    model: nn.Module,
    corpora: Mapping[str, DomainCorpus],
    *,
    steps: int,
    batch_size: int = 16,
    seed: int = 0,
    cfg: InnerConfig | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> TrainReport:
    model.requires_grad_(True)
    return train(
        model,
        list(model.parameters()),
        mixed_batches(corpora, batch_size=batch_size, seed=seed),
        cfg or InnerConfig(lr=3e-3),
        max_steps=steps,
        device=device,
        progress=progress,
        description="warm-up",
    )

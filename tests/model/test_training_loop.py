"""The inner loop's handling of batches that cannot move the trained parameters."""

from types import SimpleNamespace

import torch
from torch import nn

from blockzero.model.training import InnerConfig, train


class GatedModel(nn.Module):
    """A loss that depends on `weight` only for batches whose first token is 1, as a group's
    rows matter only for tokens the router sends to them."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))

    def forward(self, input_ids, labels, **_):
        base = input_ids.float().mean()
        if bool((input_ids[:, 0] == 1).all()):
            return SimpleNamespace(loss=base * self.weight**2)
        return SimpleNamespace(loss=base.detach())


def test_batches_that_miss_the_trained_parameters_are_not_stepped():
    model = GatedModel()
    batches = iter([torch.full((2, 4), 2), torch.full((2, 4), 1), torch.full((2, 4), 2)])
    report = train(model, [model.weight], batches, InnerConfig(lr=0.1, aux_loss=False), max_steps=3)
    assert report.steps == 3
    # One real step moved the weight down; the two others left it where it was.
    assert 0.8 < model.weight.item() < 1.0

"""Evaluate deltas on the one resident model: apply in place, compute losses, revert exactly.

The validator never copies the model: a submission touches only its group's rows of the fused
expert tensors, so applying it is one `index_copy_` per tensor, and writing the saved rows back
restores the model bit for bit (`write_group_rows` with a `read_group_rows` snapshot).
"""

import contextlib
from collections.abc import Iterator

import torch
from transformers import PreTrainedModel

from blockzero.model.evaluation import sequence_losses
from blockzero.model.families import MoEAdapter
from blockzero.model.group_rows import GroupTensors, read_group_rows, write_group_rows
from blockzero.protocol.expert_groups import ExpertGroup
from blockzero.validator.proof_of_loss import EvalSet


class ResidentScorer:
    def __init__(self, model: PreTrainedModel, *, batch_size: int, device: str) -> None:
        self.model = model.to(device).eval()
        self.adapter = MoEAdapter(self.model)
        self.batch_size = batch_size
        self.device = device

    def losses(self, sequences: torch.Tensor) -> list[float]:
        return sequence_losses(
            self.model, sequences, batch_size=self.batch_size, device=self.device
        ).tolist()

    def eval_losses(self, eval_set: EvalSet) -> tuple[list[float], list[float]]:
        return self.losses(eval_set.domain_seqs), self.losses(eval_set.general_seqs)

    @contextlib.contextmanager
    def applied(self, group: ExpertGroup, delta: GroupTensors) -> Iterator[None]:
        """The model with `rows - delta` (a miner's delta is start - end) until the block exits."""
        snapshot = read_group_rows(self.adapter, group)
        moved = {k: v - delta[k].to(v.device, torch.float32) for k, v in snapshot.items()}
        write_group_rows(self.adapter, group, moved)
        try:
            yield
        finally:
            write_group_rows(self.adapter, group, snapshot)

    def score(
        self, group: ExpertGroup, delta: GroupTensors, eval_set: EvalSet
    ) -> tuple[list[float], list[float]]:
        with self.applied(group, delta):
            return self.eval_losses(eval_set)

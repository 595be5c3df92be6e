"""Per-sequence held-out loss: what Proof-of-Loss and every benchmark compare."""

import torch
from torch import nn


@torch.no_grad()
def sequence_losses(
    model: nn.Module,
    sequences: torch.Tensor,
    *,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Mean next-token cross-entropy of each sequence, as a float32 CPU tensor `[N]`."""
    was_training = model.training
    model.eval()
    device = torch.device(device)
    out = []
    for start in range(0, len(sequences), batch_size):
        batch = sequences[start : start + batch_size].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(input_ids=batch).logits
        losses = nn.functional.cross_entropy(
            logits[:, :-1].float().transpose(1, 2), batch[:, 1:], reduction="none"
        )
        out.append(losses.mean(dim=1).cpu())
    model.train(was_training)
    return torch.cat(out)


def mean_loss(model: nn.Module, sequences: torch.Tensor, **kwargs) -> float:
    return sequence_losses(model, sequences, **kwargs).mean().item()

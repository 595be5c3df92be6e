"""Token sequences and seeded batches.

Documents are tokenized, joined with an end-of-sequence token and cut into fixed-length
sequences, separately for each side of the split. Training order comes from a seed (the miner
derives it from its hotkey and the cycle, so two honest miners never see the same sample order);
evaluation batches come from a seed the validator draws after the commit phase.
"""

from collections.abc import Iterator

import torch
from transformers import PreTrainedTokenizerBase


def pack_documents(
    docs: list[str], tokenizer: PreTrainedTokenizerBase, seq_len: int
) -> torch.Tensor:
    """Concatenate tokenized documents (each followed by EOS) into `[N, seq_len]` int64 rows."""
    if seq_len < 2:
        raise ValueError(f"seq_len must be at least 2, got {seq_len}")
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for encoded in tokenizer(docs, add_special_tokens=False)["input_ids"]:
        ids.extend(encoded)
        ids.append(eos)
    n = len(ids) // seq_len
    if n == 0:
        raise ValueError(f"{len(ids)} tokens do not fill one sequence of {seq_len}")
    return torch.tensor(ids[: n * seq_len], dtype=torch.long).view(n, seq_len)


def train_batches(sequences: torch.Tensor, *, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """Endless batches in a seeded order, reshuffled each pass over the data."""
    if len(sequences) < batch_size:
        raise ValueError(f"{len(sequences)} sequences are fewer than one batch of {batch_size}")
    gen = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(sequences), generator=gen)
        for start in range(0, len(order) - batch_size + 1, batch_size):
            yield sequences[order[start : start + batch_size]]


def sample_indices(num_sequences: int, k: int, *, seed: int) -> torch.Tensor:
    """`k` distinct sequence indices chosen by `seed`, sorted (the evaluation sample ids)."""
    if k > num_sequences:
        raise ValueError(f"cannot sample {k} of {num_sequences} sequences")
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(num_sequences, generator=gen)[:k].sort().values

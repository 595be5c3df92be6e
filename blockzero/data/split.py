"""The train / held-out split, by content hash.

A document's side depends only on its text and a salt, not on file order, appends or library
versions, so every miner and validator agrees on it, and held-out text can never have been in a
miner's training split.
"""

import hashlib


def held_out_bucket(text: str, salt: str) -> int:
    digest = hashlib.sha256(f"{salt}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def split_documents(
    docs: list[str], *, held_out_fraction: float = 0.1, salt: str = "blockzero-v1"
) -> tuple[list[str], list[str]]:
    """Return (train, held_out). Identical documents always land on the same side."""
    if not 0.0 < held_out_fraction < 1.0:
        raise ValueError(f"held_out_fraction must be in (0, 1), got {held_out_fraction}")
    cut = int(held_out_fraction * 10_000)
    train, held = [], []
    for d in docs:
        (held if held_out_bucket(d, salt) < cut else train).append(d)
    return train, held

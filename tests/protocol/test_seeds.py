import hashlib

import pytest

from blockzero.protocol.cycle import CycleSchedule
from blockzero.protocol.seeds import (
    SeedPurpose,
    assignment_block,
    derive_seed,
    evaluation_block,
)

BLOCK_HASH = "0x" + "ab" * 32


def test_seed_is_pinned() -> None:
    by_hand = hashlib.sha256(b"blockzero/seed/v1\x00" + b"\xab" * 32 + b"assignment").digest()
    assert derive_seed(BLOCK_HASH, SeedPurpose.ASSIGNMENT) == int.from_bytes(by_hand[:8], "big")
    assert derive_seed(BLOCK_HASH, "assignment") == 14579200787980330535


def test_bytes_and_hex_agree_and_purposes_differ() -> None:
    assert derive_seed(b"\xab" * 32, "evaluation") == derive_seed(
        BLOCK_HASH.upper().replace("0X", "0x"), "evaluation"
    )
    assert derive_seed(BLOCK_HASH, "assignment") != derive_seed(BLOCK_HASH, "evaluation")


@pytest.mark.parametrize(
    ("block_hash", "purpose"),
    [
        ("0xab", "x"),
        (b"\x00" * 31, "x"),
        (BLOCK_HASH, ""),
        (BLOCK_HASH, "Eval"),
        (BLOCK_HASH, "x\n"),
    ],
)
def test_bad_inputs_are_refused(block_hash: bytes | str, purpose: str) -> None:
    with pytest.raises(ValueError):
        derive_seed(block_hash, purpose)


def test_seed_blocks() -> None:
    schedule = CycleSchedule()
    assert assignment_block(schedule, 3) == 135
    assert evaluation_block(schedule, 3) == 135 + 34

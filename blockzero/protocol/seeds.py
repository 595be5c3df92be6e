"""Seeds every node derives alike from a block hash, so no party picks the randomness.

    seed = int.from_bytes(sha256(b"blockzero/seed/v1\\x00" || block_hash || purpose)[:8], "big")

`block_hash` is the 32 raw bytes (the chain shows them as `0x` + 64 hex), `purpose` is a short
ASCII name, so one block hash gives independent seeds for independent uses. The hash is fixed
width, so the concatenation is unambiguous. The 64-bit result fits `random.Random`,
`numpy.random.default_rng` and `torch.Generator.manual_seed`.

Which block feeds which seed is part of the protocol: `assignment_block` is the first block of
the cycle (miners learn their group as training starts), `evaluation_block` is the first block
after the commit phase, so a miner's file is fixed before the evaluation samples can be known.
"""

import hashlib
import re
from enum import StrEnum

from blockzero.protocol.cycle import CycleSchedule, Phase

_SEED_TAG = b"blockzero/seed/v1\x00"
_PURPOSE = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,63}")


class SeedPurpose(StrEnum):
    """Purposes the protocol defines; other code may add its own names."""

    ASSIGNMENT = "assignment"
    EVALUATION = "evaluation"


def derive_seed(block_hash: bytes | str, purpose: str) -> int:
    """64-bit seed for `purpose` from a block hash (raw 32 bytes or `0x` + 64 hex)."""
    if not _PURPOSE.fullmatch(purpose):
        raise ValueError(f"seed purpose must match {_PURPOSE.pattern}, got {purpose!r}")
    digest = hashlib.sha256(_SEED_TAG + _block_hash_bytes(block_hash) + purpose.encode()).digest()
    return int.from_bytes(digest[:8], "big")


def assignment_block(schedule: CycleSchedule, cycle: int) -> int:
    """The block whose hash (and metagraph) decides group assignment for `cycle`."""
    return schedule.cycle_start(cycle)


def evaluation_block(schedule: CycleSchedule, cycle: int) -> int:
    """The block whose hash seeds Proof-of-Loss sampling for `cycle`."""
    return schedule.phase_window(cycle, Phase.REVEAL).start


def _block_hash_bytes(block_hash: bytes | str) -> bytes:
    if isinstance(block_hash, str):
        if not re.fullmatch(r"0x[0-9a-fA-F]{64}", block_hash):
            raise ValueError(f"block hash must be 0x + 64 hex digits, got {block_hash!r}")
        return bytes.fromhex(block_hash[2:])
    if len(block_hash) != 32:
        raise ValueError(f"block hash must be 32 bytes, got {len(block_hash)}")
    return block_hash

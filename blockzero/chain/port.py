"""The Chain port: the few chain operations miners and validators use.

Roles only see this interface. Two adapters implement it: ``BittensorChain`` (a real subtensor
through the bittensor 11 SDK) and ``LocalChain`` (an embedded SQLite chain for tests and the local
net). Every adapter is bound to one netuid at construction, reports stake as a float in whole
units (TAO, or the subnet's alpha on dynamic subnets), and raises only ``blockzero.chain.errors``
types (plus ``ValueError`` for malformed arguments and ``TimeoutError`` from ``wait_for_block``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict

from blockzero.chain.errors import CommitmentTooLarge

if TYPE_CHECKING:
    from bittensor import Wallet

RAW_FIELD_BYTES = 128
"""Largest ``Raw{n}`` field of the Commitments pallet (``Raw0``..``Raw128``)."""
MAX_COMMITMENT_FIELDS = 3
"""``Commitments::MaxFields``: a commitment may carry at most this many fields."""
MAX_COMMITMENT_BYTES = RAW_FIELD_BYTES * MAX_COMMITMENT_FIELDS
"""A commitment is UTF-8 text split over up to 3 Raw fields (readers concatenate them)."""


class Neuron(BaseModel):
    """One uid of the metagraph, as roles need it."""

    model_config = ConfigDict(frozen=True)

    uid: int
    hotkey: str
    coldkey: str | None
    stake: float
    validator_permit: bool
    incentive: float
    last_update: int


class Metagraph(BaseModel):
    """The subnet's neurons at one block, ordered by uid."""

    model_config = ConfigDict(frozen=True)

    netuid: int
    block: int
    neurons: list[Neuron]

    @property
    def hotkeys(self) -> list[str]:
        return [n.hotkey for n in self.neurons]

    @property
    def validators(self) -> list[Neuron]:
        return [n for n in self.neurons if n.validator_permit]

    def by_hotkey(self, hotkey: str) -> Neuron | None:
        return next((n for n in self.neurons if n.hotkey == hotkey), None)


class Commitment(BaseModel):
    """A hotkey's commitment and the block it was made at (a new one replaces it on chain)."""

    model_config = ConfigDict(frozen=True)

    data: str
    block: int


class Chain(Protocol):
    """What roles may ask of a chain. Implementations are bound to one ``netuid``."""

    netuid: int

    def current_block(self) -> int:
        """The head block number."""
        ...

    def block_hash(self, block: int) -> str:
        """The ``0x``-hex hash of an existing block (seeds evaluation after the commit phase)."""
        ...

    def wait_for_block(self, block: int, *, timeout: float | None = None) -> int:
        """Block until the head reaches ``block``; return the head. ``TimeoutError`` past it."""
        ...

    def metagraph(self) -> Metagraph:
        """A snapshot of the subnet's neurons."""
        ...

    def uid(self, hotkey: str) -> int | None:
        """The uid of a hotkey on this subnet, or None when it is not registered."""
        ...

    def publish_commitment(self, wallet: Wallet, data: str) -> None:
        """Publish ``data`` as the hotkey's commitment, signed by the wallet's hotkey."""
        ...

    def commitments(self, at_block: int | None = None) -> dict[str, Commitment]:
        """Every hotkey's commitment on this subnet, with its block, newest first.

        The latest when ``at_block`` is None; else the state as of that past block: each hotkey's
        last commitment made at or before it (a hotkey that first committed later is absent).
        Validators read the hash commitments at the last block of the commit phase this way,
        after the reveals have replaced them. ``ChainError`` when that block's state is not
        available (a future block, or history pruned by the node or the local chain).
        """
        ...

    def set_weights(self, wallet: Wallet, uids: Sequence[int], weights: Sequence[float]) -> None:
        """Set this validator's weights (relative; only proportions matter)."""
        ...

    def weights(self) -> dict[int, dict[int, float]]:
        """The weight rows on chain as ``{validator_uid: {miner_uid: fraction}}``."""
        ...


def encode_commitment(data: str, *, netuid: int, hotkey: str) -> bytes:
    """UTF-8 bytes of a commitment, or ``CommitmentTooLarge`` past the chain's limit."""
    payload = data.encode("utf-8")
    if len(payload) > MAX_COMMITMENT_BYTES:
        raise CommitmentTooLarge(
            f"commitment is {len(payload)} bytes; the chain accepts at most "
            f"{MAX_COMMITMENT_BYTES} ({MAX_COMMITMENT_FIELDS} Raw fields of {RAW_FIELD_BYTES} B)",
            size=len(payload),
            limit=MAX_COMMITMENT_BYTES,
            netuid=netuid,
            hotkey=hotkey,
        )
    return payload


def normalize_weights(uids: Sequence[int], weights: Sequence[float]) -> dict[int, float]:
    """Check a weight vector and scale it to sum 1, dropping zeros.

    The same rules on both adapters (the SDK enforces them too): equal lengths, no duplicate or
    negative uids, finite non-negative weights, not all zero. Raises ``ValueError`` otherwise.
    """
    if len(uids) != len(weights):
        raise ValueError(f"{len(uids)} uids but {len(weights)} weights")
    if len(set(uids)) != len(uids):
        raise ValueError("duplicate uids in weights")
    if any(u < 0 for u in uids):
        raise ValueError("uids must be non-negative")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ValueError("weights must be finite and non-negative")
    total = math.fsum(weights)
    if total <= 0:
        raise ValueError("all weights are zero; nothing to set")
    return {int(u): float(w) / total for u, w in zip(uids, weights, strict=True) if w > 0}

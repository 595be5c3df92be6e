"""Typed chain errors, shared by every Chain adapter.

Roles branch on these classes, never on vendor exceptions: the Bittensor adapter translates SDK
errors into them in one place, and the local chain raises them directly, so a miner or validator
behaves the same on the embedded chain and on finney.
"""

from __future__ import annotations


class ChainError(Exception):
    """Base class: something about a chain read or write failed.

    Carries the netuid and hotkey the call was about (None where not relevant) so a log line or
    a CLI message can say which key on which subnet, e.g.
    ``ChainRefused: NeuronNoValidatorPermit (netuid=7, hotkey=5F...)``.
    """

    def __init__(self, message: str, *, netuid: int | None = None, hotkey: str | None = None):
        self.message = message
        self.netuid = netuid
        self.hotkey = hotkey
        super().__init__(message)

    def __str__(self) -> str:
        where = ", ".join(
            f"{name}={value}"
            for name, value in (("netuid", self.netuid), ("hotkey", self.hotkey))
            if value is not None
        )
        return f"{self.message} ({where})" if where else self.message


class NotRegistered(ChainError):
    """The hotkey holds no uid on the subnet: register it first (`blockzero chain register`)."""


class RateLimited(ChainError):
    """The chain refuses the call for now; retrying later (not immediately) can succeed.

    Raised for the weights rate limit and for the commitment byte quota of an epoch.
    ``retry_in_blocks`` is the wait when the chain says it, else None.
    """

    def __init__(
        self,
        message: str,
        *,
        netuid: int | None = None,
        hotkey: str | None = None,
        retry_in_blocks: int | None = None,
    ):
        super().__init__(message, netuid=netuid, hotkey=hotkey)
        self.retry_in_blocks = retry_in_blocks


class CommitmentTooLarge(ChainError, ValueError):
    """The commitment does not fit the chain's limit; shorten it (it is never truncated)."""

    def __init__(
        self,
        message: str,
        *,
        size: int,
        limit: int,
        netuid: int | None = None,
        hotkey: str | None = None,
    ):
        super().__init__(message, netuid=netuid, hotkey=hotkey)
        self.size = size
        self.limit = limit


class ChainUnavailable(ChainError, ConnectionError):
    """The chain could not be reached (RPC or connection failure) after all retries."""


class ChainRefused(ChainError):
    """The chain rejected an extrinsic; ``reason`` is the chain's own error name or message.

    e.g. ``NeuronNoValidatorPermit`` when a miner tries to set weights.
    """

    def __init__(
        self,
        reason: str,
        *,
        netuid: int | None = None,
        hotkey: str | None = None,
        message: str | None = None,
    ):
        super().__init__(message or reason, netuid=netuid, hotkey=hotkey)
        self.reason = reason

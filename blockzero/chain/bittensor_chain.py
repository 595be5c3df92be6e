"""The Chain port on a real subtensor, through the bittensor 11 SDK.

Reads use the SDK's typed namespaces (``sub.subnets.metagraph``, ``sub.subnets.commitments``,
``sub.neurons.uid``, ``sub.weights.weights``); commitments are a raw ``Commitments.set_commitment``
call signed by the hotkey; weights go through the ``bt.SetWeights`` intent (which handles
commit-reveal). Every SDK call runs under ``_call``: RPC and connection failures are retried with
exponential backoff, and every vendor error leaves through ``_translate`` as a
``blockzero.chain.errors`` type.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import bittensor as bt
from pydantic import BaseModel, ConfigDict, Field

from blockzero.chain.errors import (
    ChainError,
    ChainRefused,
    ChainUnavailable,
    NotRegistered,
    RateLimited,
)
from blockzero.chain.port import (
    RAW_FIELD_BYTES,
    Commitment,
    Metagraph,
    Neuron,
    encode_commitment,
    normalize_weights,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
RAO_PER_UNIT = 10**9

_RETRYABLE = (bt.RpcConnectionError, ConnectionError, TimeoutError)
_NOT_REGISTERED_NAMES = {"AccountNotAllowedCommit", "HotKeyNotRegisteredInSubNet"}
_QUOTA_NAMES = {"SpaceLimitExceeded"}
_RETRY_IN = re.compile(r"Retry in ~(\d+) blocks")


class RetryPolicy(BaseModel):
    """Bounded exponential backoff for RPC/connection failures.

    Failed attempt ``k`` (from 1) waits ``min(max_delay_s, initial_delay_s * multiplier**(k-1))``
    before the next; after ``attempts`` failures the call raises ``ChainUnavailable``. Writes are
    retried too: a commitment replaces itself, and a weight set that did land before the
    connection dropped comes back as ``RateLimited``.
    """

    model_config = ConfigDict(frozen=True)

    attempts: int = Field(default=4, ge=1)
    initial_delay_s: float = Field(default=0.5, ge=0)
    multiplier: float = Field(default=2.0, ge=1)
    max_delay_s: float = Field(default=8.0, ge=0)

    def delay(self, attempt: int) -> float:
        return min(self.max_delay_s, self.initial_delay_s * self.multiplier ** (attempt - 1))


def _translate(error: Exception, *, netuid: int, hotkey: str | None, attempts: int) -> ChainError:
    """The one place SDK errors become port errors (callers ``raise ... from error``)."""
    if isinstance(error, _RETRYABLE):
        return ChainUnavailable(
            f"chain unreachable after {attempts} attempt(s): {error}", netuid=netuid, hotkey=hotkey
        )
    if isinstance(error, bt.ChainError):
        name = error.name or ""
        if error.code is bt.ErrorCode.NOT_REGISTERED or name in _NOT_REGISTERED_NAMES:
            return NotRegistered(error.message, netuid=netuid, hotkey=hotkey)
        if error.code is bt.ErrorCode.RATE_LIMITED or name in _QUOTA_NAMES:
            match = _RETRY_IN.search(error.message)
            return RateLimited(
                f"{name or 'rate limited'}: {error.message}",
                netuid=netuid,
                hotkey=hotkey,
                retry_in_blocks=int(match.group(1)) if match else None,
            )
        return ChainRefused(
            name or error.message,
            netuid=netuid,
            hotkey=hotkey,
            message=f"{name}: {error.message}" if name else error.message,
        )
    return ChainError(f"{type(error).__name__}: {error}", netuid=netuid, hotkey=hotkey)


class BittensorChain:
    """The Chain port on subtensor ``network`` (a name like ``finney``/``test`` or a ws URL).

    ``substrate`` is the SDK's test seam: an object implementing ``bt.Substrate`` replaces the RPC
    backend. ``version_key`` is sent with weights (must be >= the subnet's WeightsVersionKey).
    """

    def __init__(
        self,
        netuid: int,
        *,
        network: str = "finney",
        substrate: bt.Substrate | None = None,
        retry: RetryPolicy | None = None,
        version_key: int = 0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.netuid = netuid
        self._sub = bt.Subtensor(network, substrate=substrate)
        self._retry = retry or RetryPolicy()
        self._version_key = version_key
        self._sleep = sleep
        self._block_time_s: float | None = None

    def close(self) -> None:
        """Stop the SDK's background loop (it also stops when garbage collected)."""
        self._sub.close()

    def _call(self, what: str, fn: Callable[[], T], *, hotkey: str | None = None) -> T:
        for attempt in range(1, self._retry.attempts + 1):
            try:
                return fn()
            except _RETRYABLE as e:
                if attempt == self._retry.attempts:
                    raise _translate(e, netuid=self.netuid, hotkey=hotkey, attempts=attempt) from e
                delay = self._retry.delay(attempt)
                logger.warning(
                    "%s failed (attempt %d/%d): %s; retrying in %.1fs",
                    what,
                    attempt,
                    self._retry.attempts,
                    e,
                    delay,
                )
                self._sleep(delay)
            except bt.BittensorError as e:
                raise _translate(e, netuid=self.netuid, hotkey=hotkey, attempts=attempt) from e
        raise AssertionError("unreachable: the last attempt returns or raises")

    # --- blocks -------------------------------------------------------------------------

    def current_block(self) -> int:
        return self._call("read block", lambda: self._sub.block)

    def block_hash(self, block: int) -> str:
        info = self._call("read block hash", lambda: self._sub.block_info(block))
        if info is None or not info.hash:
            raise ChainError(f"block {block} does not exist", netuid=self.netuid)
        return str(info.hash)

    def wait_for_block(self, block: int, *, timeout: float | None = None) -> int:
        """Poll the head (one cheap read per block time); each poll is retried like any read."""
        if self._block_time_s is None:
            self._block_time_s = self._call("read block time", self._sub.block_time)
        deadline = None if timeout is None else time.monotonic() + timeout
        while (head := self.current_block()) < block:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"block {block} not reached in {timeout}s (head {head})")
            self._sleep(self._block_time_s)
        return head

    # --- reads --------------------------------------------------------------------------

    def metagraph(self) -> Metagraph:
        mg = self._call(
            "read metagraph", lambda: self._sub.subnets.metagraph(self.netuid, commitments=False)
        )
        if mg is None:
            raise ChainError("subnet does not exist", netuid=self.netuid)
        neurons = [
            Neuron(
                uid=n.uid,
                hotkey=n.hotkey,
                coldkey=n.coldkey or None,
                stake=n.total_stake.rao / RAO_PER_UNIT,
                validator_permit=n.validator_permit,
                incentive=n.incentive,
                last_update=n.last_update,
            )
            for n in mg.neurons
        ]
        return Metagraph(netuid=self.netuid, block=mg.block, neurons=neurons)

    def uid(self, hotkey: str) -> int | None:
        return self._call("read uid", lambda: self._sub.neurons.uid(hotkey, self.netuid))

    def commitments(self, at_block: int | None = None) -> dict[str, Commitment]:
        """Visible commitments only: a timelocked one still sealed has no data yet.

        ``at_block`` pins the read to that block (the SDK's ``block=``: every storage query
        goes to that block's hash). State a lite node has pruned (older than its window, 256
        blocks by default) is re-read by the SDK from the network's archive pool; where there is
        none, the node's "state discarded" refusal surfaces as a ``ChainError``.
        """
        if at_block is not None and (isinstance(at_block, bool) or at_block < 0):
            raise ValueError(f"a block number is a non-negative int, got {at_block!r}")
        found = self._call(
            "read commitments",
            lambda: self._sub.subnets.commitments(self.netuid, block=at_block),
        )
        return {
            hotkey: Commitment(data=c.value, block=c.block)
            for hotkey, c in found.items()
            if c.value is not None
        }

    def weights(self) -> dict[int, dict[int, float]]:
        return self._call("read weights", lambda: self._sub.weights.weights(self.netuid))

    # --- writes -------------------------------------------------------------------------

    def publish_commitment(self, wallet: bt.Wallet, data: str) -> None:
        """Commit ``data`` as exact-length Raw fields (<= 128 B each), signed by the hotkey."""
        hotkey = wallet.hotkey.ss58_address
        payload = encode_commitment(data, netuid=self.netuid, hotkey=hotkey)
        chunks = [payload[i : i + RAW_FIELD_BYTES] for i in range(0, len(payload), RAW_FIELD_BYTES)]
        fields = [{f"Raw{len(chunk)}": chunk} for chunk in chunks or [b""]]
        call = bt.calls.Commitments.set_commitment(netuid=self.netuid, info={"fields": fields})
        result = self._call(
            "publish commitment",
            lambda: self._sub.submit_call(
                call, wallet, signer="hotkey", wait_for_finalization=False
            ).raise_for_failure(),
            hotkey=hotkey,
        )
        logger.info("committed %d bytes for %s (%s)", len(payload), hotkey, result.extrinsic_id)

    def set_weights(self, wallet: bt.Wallet, uids: Sequence[int], weights: Sequence[float]) -> None:
        hotkey = wallet.hotkey.ss58_address
        row = normalize_weights(uids, weights)
        intent = bt.SetWeights(
            netuid=self.netuid,
            uids=list(row),
            weights=list(row.values()),
            version_key=self._version_key,
        )
        result = self._call(
            "set weights",
            lambda: self._sub.execute(
                intent, wallet, wait_for_finalization=False
            ).raise_for_failure(),
            hotkey=hotkey,
        )
        logger.info(
            "set weights on %d uids for %s (%s) %s",
            len(row),
            hotkey,
            result.extrinsic_id,
            result.explorer_url or "",
        )

"""An in-memory ``bt.Substrate`` for driving the real bittensor 11 SDK without a node.

Injected through the SDK's own seam (``bt.Subtensor("local", substrate=fake)``), so everything
above the transport (intents, preflight, decoding) is the SDK's real code. Storage is a dict of
decoded values; ``submit`` applies the two extrinsics BlockZero sends (``set_commitment`` and
``set_mechanism_weights``) with the chain checks our tests rely on. ``fail(method, *errors)``
queues exceptions that the next calls of ``method`` raise, to simulate RPC failures, and
``refusals`` queues chain error names that the next submissions fail with.

Storage is versioned by block: every ``seed`` is logged with the block it takes effect at (the
head, or the block an extrinsic lands in), and a ``query``/``query_map`` pinned to an older block
hash (the SDK's ``block=`` reads) sees the values as of that block. ``pinned_blocks`` records the
block of every pinned storage read.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bittensor import Balance, ChainError, ExtrinsicResult

U16_MAX = 65535


class FakeSubstrate:
    def __init__(self, *, block: int = 1000):
        self.block = block
        self.token_symbols: dict[int, str] = {}
        self.storage: dict[tuple[str, str, tuple], Any] = {}
        self.runtime: dict[tuple[str, str], Any] = {}
        self.submissions: list[dict[str, Any]] = []
        self.calls: defaultdict[str, int] = defaultdict(int)
        self._failures: defaultdict[str, list[Exception]] = defaultdict(list)
        self.refusals: list[str] = []
        self.history: dict[tuple[str, str, tuple], list[tuple[int, Any]]] = defaultdict(list)
        self.pinned_blocks: list[tuple[str, str, int]] = []

    # --- test controls --------------------------------------------------------------
    def seed(
        self, module: str, item: str, params: list, value: Any, *, block: int | None = None
    ) -> None:
        """Set a storage value from ``block`` on (the head by default)."""
        key = (module, item, tuple(params))
        self.storage[key] = value
        self.history[key].append((self.block if block is None else block, value))

    def _storage_at(self, block_hash: str | None, module: str, item: str) -> dict[tuple, Any]:
        """``{params: value}`` of one storage item as of the block ``block_hash`` names."""
        latest = {k[2]: v for k, v in self.storage.items() if k[:2] == (module, item)}
        if block_hash is None:
            return latest
        block = int(block_hash, 16)  # our hashes are the block number in hex
        self.pinned_blocks.append((module, item, block))
        if block >= self.block:
            return latest
        out = {}
        for params, value in latest.items():
            log = self.history.get((module, item, params))
            if not log:  # written straight into ``storage``: treat as genesis state
                out[params] = value
                continue
            past = [v for b, v in log if b <= block]
            if past:
                out[params] = past[-1]
        return out

    def seed_runtime(self, api: str, method: str, value: Any) -> None:
        self.runtime[(api, method)] = value

    def fail(self, method: str, *errors: Exception) -> None:
        self._failures[method].extend(errors)

    def _enter(self, method: str) -> None:
        self.calls[method] += 1
        if self._failures[method]:
            raise self._failures[method].pop(0)

    # --- Substrate protocol ------------------------------------------------------------
    def balance(self, rao: int, netuid: int = 0) -> Balance:
        return Balance.from_rao(int(rao), netuid)

    async def connect(self) -> None:
        self._enter("connect")

    async def close(self) -> None:
        pass

    async def block_number(self) -> int:
        self._enter("block_number")
        return self.block

    async def block_hash(self, block: int | None = None) -> str:
        self._enter("block_hash")
        return f"0x{self.block if block is None else block:064x}"

    async def block_time(self) -> float:
        return 12.0

    async def get_block(self, block_number: int | None = None, block_hash: str | None = None):
        self._enter("get_block")
        number = self.block if block_number is None else block_number
        if number > self.block:
            return None
        stamp = {"call_module": "Timestamp", "call_function": "set", "call_args": [{"value": 0}]}
        return {
            "header": {"number": number, "hash": await self.block_hash(number)},
            "extrinsics": [{"call": stamp}],
        }

    async def query(self, module, storage_function, params=None, block_hash=None):
        self._enter("query")
        return self._storage_at(block_hash, module, storage_function).get(tuple(params or []))

    async def query_map(self, module, storage_function, params=None, block_hash=None):
        self._enter("query_map")
        prefix = tuple(params or [])
        rows = []
        for key, value in self._storage_at(block_hash, module, storage_function).items():
            if key[: len(prefix)] == prefix:
                rest = key[len(prefix) :]
                rows.append((rest[0] if len(rest) == 1 else list(rest), value))
        return rows

    async def runtime_call(self, api, method, params, block_hash=None):
        self._enter("runtime_call")
        value = self.runtime.get((api, method))
        return value(params) if callable(value) else value

    async def constant(self, module, name):
        return {("Aura", "SlotDuration"): 12000}.get((module, name))

    async def compose(self, call):
        return call

    async def estimate_fee(self, call, keypair) -> Balance:
        return Balance.from_rao(100_000)

    async def submit(self, call, keypair, **_kwargs) -> ExtrinsicResult:
        self._enter("submit")
        _module, function, params = tuple(call)
        signer = keypair.ss58_address
        self.submissions.append({"function": function, "params": params, "signer": signer})
        error = self.refusals.pop(0) if self.refusals else self._apply(function, params, signer)
        if error is not None:
            return ExtrinsicResult(success=False, message=error, error=ChainError(error, error))
        self.block += 1
        return ExtrinsicResult(
            success=True,
            message="Success",
            block_hash=await self.block_hash(),
            extrinsic_id=f"{self.block}-0001",
            fee=Balance.from_rao(100_000),
        )

    def _apply(self, function: str, params: dict, signer: str) -> str | None:
        """Apply a write like the chain would; return the chain's error name on refusal."""
        netuid = params["netuid"]
        uid = self.storage.get(("SubtensorModule", "Uids", (netuid, signer)))
        if function == "set_commitment":
            if uid is None:
                return "AccountNotAllowedCommit"
            fields = [
                {variant: "0x" + bytes(value).hex() for variant, value in field.items()}
                for field in params["info"]["fields"]
            ]
            self.seed(
                "Commitments",
                "CommitmentOf",
                [netuid, signer],
                {"deposit": 0, "block": self.block + 1, "info": {"fields": fields}},
                block=self.block + 1,
            )
            return None
        if function == "set_mechanism_weights":
            permits = self.storage.get(("SubtensorModule", "ValidatorPermit", (netuid,))) or []
            if uid is None or not permits[uid]:
                return "NeuronNoValidatorPermit"
            pairs = list(zip(params["dests"], params["weights"], strict=True))
            self.seed("SubtensorModule", "Weights", [netuid, uid], pairs, block=self.block + 1)
            last = list(self.storage[("SubtensorModule", "LastUpdate", (netuid,))])
            last[uid] = self.block + 1
            self.seed("SubtensorModule", "LastUpdate", [netuid], last, block=self.block + 1)
            return None
        raise NotImplementedError(function)

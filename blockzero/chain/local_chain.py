"""An embedded chain in one SQLite file, for tests and the local net.

Blocks come from the wall clock (``block = floor((now - genesis_time) / block_time)``), so every
process that opens the file agrees on the height without a block producer. Several processes can
read and write at once: the file is in WAL mode, each call opens its own connection with a busy
timeout, and every write is one short ``BEGIN IMMEDIATE`` transaction that re-reads what it checks.

It mimics the subtensor rules roles depend on (commitment size and byte quota, validator permits,
weights rate limit) and computes incentive with a documented simplification of Yuma consensus:
see ``incentive`` and docs/chain.md.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from bittensor import sp_core

from blockzero.chain.consensus import incentive, validator_permits
from blockzero.chain.errors import (
    ChainError,
    ChainRefused,
    ChainUnavailable,
    NotRegistered,
    RateLimited,
)
from blockzero.chain.local_schema import SCHEMA, SCHEMA_VERSION, SubnetParams
from blockzero.chain.port import (
    Commitment,
    Metagraph,
    Neuron,
    encode_commitment,
    normalize_weights,
)

if TYPE_CHECKING:
    from bittensor import Wallet

logger = logging.getLogger(__name__)

DEFAULT_BLOCK_TIME_S = 12.0
COMMITMENT_SPACE_PER_EPOCH = 3100
"""``Commitments::MaxSpace``: bytes a hotkey may commit per epoch."""
COMMITMENT_MIN_CHARGE = 100
"""Each commitment is charged at least this many bytes against the quota."""
RAO_PER_UNIT = 10**9
COMMITMENT_HISTORY_BLOCKS = 50_400
"""Commitment history kept for ``commitments(at_block=...)``: a week of 12 s blocks. On each
publish, the hotkey's rows superseded at or before ``head - COMMITMENT_HISTORY_BLOCKS`` are deleted
(the newest row at or before that block stays, so every read within the horizon is exact)."""
_MAX_BLOCK = 2**63 - 1


def _check_block(block: int) -> None:
    if isinstance(block, bool) or not isinstance(block, int) or block < 0:
        raise ValueError(f"a block number is a non-negative int, got {block!r}")


def _hotkey_of(wallet: Wallet) -> str:
    # The local chain trusts its caller: loading the hotkey (as signing would) is the proof.
    return wallet.hotkey.ss58_address


class LocalChain:
    """The Chain port on one SQLite file, bound to one netuid.

    ``clock`` and ``sleep`` are injectable so tests can move time by hand.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        netuid: int,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        busy_timeout_s: float = 30.0,
    ):
        self.path = Path(path)
        self.netuid = netuid
        self._clock = clock
        self._sleep = sleep
        self._busy_timeout_s = busy_timeout_s
        if not self.path.is_file():
            raise FileNotFoundError(f"no local chain at {self.path}; create it first")
        with self._tx(write=False) as db:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            params = db.execute(
                "SELECT netuid, tempo, weights_rate_limit, max_validators FROM subnets "
                "WHERE netuid = ?",
                (netuid,),
            ).fetchone()
        if int(meta["schema_version"]) != SCHEMA_VERSION:
            raise ChainError(
                f"{self.path} has local chain schema {meta['schema_version']}, "
                f"this code reads {SCHEMA_VERSION} (recreate it with `blockzero chain create`)"
            )
        if params is None:
            raise ChainError(f"subnet does not exist on {self.path}", netuid=netuid)
        self.chain_id: str = meta["chain_id"]
        self.genesis_time = float(meta["genesis_time"])
        self.block_time_s = float(meta["block_time_s"])
        self.params = SubnetParams(
            netuid=params[0],
            tempo=params[1],
            weights_rate_limit=params[2],
            max_validators=params[3],
        )

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        subnets: Sequence[SubnetParams],
        *,
        block_time_s: float = DEFAULT_BLOCK_TIME_S,
        genesis_time: float | None = None,
    ) -> None:
        """Write a new chain file (genesis now, or at ``genesis_time``); never overwrite one.

        The file is built aside and linked into place, so a concurrent opener sees either no
        chain or a complete one.
        """
        if block_time_s <= 0:
            raise ValueError("block_time_s must be positive")
        if not subnets:
            raise ValueError("a chain needs at least one subnet")
        path = Path(path)
        if path.exists():
            raise FileExistsError(f"a file already exists at {path}")
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            meta = {
                "schema_version": str(SCHEMA_VERSION),
                "chain_id": uuid.uuid4().hex,
                "genesis_time": repr(time.time() if genesis_time is None else genesis_time),
                "block_time_s": repr(float(block_time_s)),
            }
            db.execute("BEGIN")
            db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            db.executemany(
                "INSERT INTO subnets VALUES (?, ?, ?, ?)",
                [(s.netuid, s.tempo, s.weights_rate_limit, s.max_validators) for s in subnets],
            )
            db.execute("COMMIT")
        finally:
            db.close()
        try:
            os.link(tmp, path)
        finally:
            tmp.unlink()
        logger.info("created local chain %s (netuids %s)", path, [s.netuid for s in subnets])

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """One short transaction on a fresh connection (safe across threads and processes).

        Writes take the write lock up front (``BEGIN IMMEDIATE``) so check-then-write is atomic
        and contention waits in SQLite's busy handler instead of failing on lock upgrade.
        """
        uri = f"file:{quote(str(self.path))}?mode=rw"
        try:
            db = sqlite3.connect(uri, uri=True, timeout=self._busy_timeout_s, isolation_level=None)
            try:
                db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            finally:
                db.close()
        except sqlite3.OperationalError as e:
            raise ChainUnavailable(f"local chain {self.path}: {e}", netuid=self.netuid) from e

    # --- blocks -------------------------------------------------------------------------

    def current_block(self) -> int:
        return max(0, math.floor((self._clock() - self.genesis_time) / self.block_time_s))

    def block_hash(self, block: int) -> str:
        """``0x`` + sha256(chain_id:block): deterministic per chain, unknowable before genesis."""
        if not 0 <= block <= self.current_block():
            raise ChainError(f"block {block} does not exist yet", netuid=self.netuid)
        return "0x" + hashlib.sha256(f"{self.chain_id}:{block}".encode()).hexdigest()

    def wait_for_block(self, block: int, *, timeout: float | None = None) -> int:
        deadline = None if timeout is None else self._clock() + timeout
        while (head := self.current_block()) < block:
            now = self._clock()
            if deadline is not None and now >= deadline:
                raise TimeoutError(f"block {block} not reached in {timeout}s (head {head})")
            until_block = self.genesis_time + block * self.block_time_s - now
            self._sleep(
                max(0.0, min(until_block, math.inf if deadline is None else deadline - now))
            )
        return head

    # --- reads --------------------------------------------------------------------------

    def metagraph(self) -> Metagraph:
        with self._tx(write=False) as db:
            rows = db.execute(
                "SELECT uid, hotkey, coldkey, stake_rao, last_update FROM neurons "
                "WHERE netuid = ? ORDER BY uid",
                (self.netuid,),
            ).fetchall()
            weights = self._weights(db)
        block = self.current_block()
        stakes = {uid: stake_rao / RAO_PER_UNIT for uid, _, _, stake_rao, _ in rows}
        permits = validator_permits(stakes, self.params.max_validators)
        scores = incentive(stakes, {v: row for v, row in weights.items() if v in permits})
        neurons = [
            Neuron(
                uid=uid,
                hotkey=hotkey,
                coldkey=coldkey,
                stake=stakes[uid],
                validator_permit=uid in permits,
                incentive=scores.get(uid, 0.0),
                last_update=last_update,
            )
            for uid, hotkey, coldkey, _, last_update in rows
        ]
        return Metagraph(netuid=self.netuid, block=block, neurons=neurons)

    def uid(self, hotkey: str) -> int | None:
        with self._tx(write=False) as db:
            return self._uid(db, hotkey)

    def commitments(self, at_block: int | None = None) -> dict[str, Commitment]:
        """Each hotkey's commitment as of ``at_block`` (the latest when None), newest first.

        That is the hotkey's last publish at a block ``<= at_block``; a hotkey whose first
        publish came later is absent. ``at_block`` must exist (``0..head``) and lie within
        ``COMMITMENT_HISTORY_BLOCKS`` of the head (older history is pruned), else ``ChainError``.
        """
        if at_block is not None:
            _check_block(at_block)
            if at_block > self.current_block():
                raise ChainError(f"block {at_block} does not exist yet", netuid=self.netuid)
        with self._tx(write=False) as db:
            rows = db.execute(
                "SELECT hotkey, data, block FROM ("
                " SELECT hotkey, data, block, ROW_NUMBER() OVER ("
                "  PARTITION BY hotkey ORDER BY block DESC, seq DESC) AS newest"
                " FROM commitments WHERE netuid = ? AND block <= ?"
                ") WHERE newest = 1 ORDER BY block DESC, hotkey",
                (self.netuid, _MAX_BLOCK if at_block is None else at_block),
            ).fetchall()
        # Checked after the read: a publish pruned what this snapshot saw only below its own
        # cutoff (head - horizon), which is at or below the head taken here.
        if at_block is not None and at_block < self.current_block() - COMMITMENT_HISTORY_BLOCKS:
            raise ChainError(
                f"commitments at block {at_block} are pruned (the local chain keeps "
                f"{COMMITMENT_HISTORY_BLOCKS} blocks of history)",
                netuid=self.netuid,
            )
        return {hotkey: Commitment(data=data, block=block) for hotkey, data, block in rows}

    def weights(self) -> dict[int, dict[int, float]]:
        with self._tx(write=False) as db:
            return self._weights(db)

    def _uid(self, db: sqlite3.Connection, hotkey: str) -> int | None:
        row = db.execute(
            "SELECT uid FROM neurons WHERE netuid = ? AND hotkey = ?", (self.netuid, hotkey)
        ).fetchone()
        return None if row is None else row[0]

    def _weights(self, db: sqlite3.Connection) -> dict[int, dict[int, float]]:
        out: dict[int, dict[int, float]] = {}
        for uid, dest, weight in db.execute(
            "SELECT uid, dest, weight FROM weights WHERE netuid = ? ORDER BY uid, dest",
            (self.netuid,),
        ):
            out.setdefault(uid, {})[dest] = weight
        return out

    # --- writes -------------------------------------------------------------------------

    def register(self, hotkey: str, *, coldkey: str | None = None) -> int:
        """Give a hotkey (ss58) the next uid. Free and instant, unlike burned registration."""
        for address in (hotkey, coldkey):
            if address is not None:
                sp_core.ss58_decode(address)  # ValueError on a malformed address
        with self._tx(write=True) as db:
            if self._uid(db, hotkey) is not None:
                raise ChainRefused(
                    "HotKeyAlreadyRegisteredInSubNet", netuid=self.netuid, hotkey=hotkey
                )
            (uid,) = db.execute(
                "SELECT COALESCE(MAX(uid) + 1, 0) FROM neurons WHERE netuid = ?", (self.netuid,)
            ).fetchone()
            db.execute(
                "INSERT INTO neurons (netuid, uid, hotkey, coldkey, registered_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (self.netuid, uid, hotkey, coldkey, self.current_block()),
            )
        logger.info("registered %s as uid %d on netuid %d", hotkey, uid, self.netuid)
        return uid

    def add_stake(self, hotkey: str, amount: float) -> float:
        """Add ``amount`` (whole units) to a registered hotkey's stake; return the new stake."""
        if not (math.isfinite(amount) and amount > 0):
            raise ValueError("stake amount must be positive")
        with self._tx(write=True) as db:
            if self._uid(db, hotkey) is None:
                raise NotRegistered(
                    "cannot stake to an unregistered hotkey", netuid=self.netuid, hotkey=hotkey
                )
            db.execute(
                "UPDATE neurons SET stake_rao = stake_rao + ? WHERE netuid = ? AND hotkey = ?",
                (round(amount * RAO_PER_UNIT), self.netuid, hotkey),
            )
            (stake_rao,) = db.execute(
                "SELECT stake_rao FROM neurons WHERE netuid = ? AND hotkey = ?",
                (self.netuid, hotkey),
            ).fetchone()
        return stake_rao / RAO_PER_UNIT

    def publish_commitment(self, wallet: Wallet, data: str) -> None:
        """Replace the hotkey's commitment (the old one stays in the history), charging
        ``max(100, bytes)`` to its epoch quota."""
        hotkey = _hotkey_of(wallet)
        size = len(encode_commitment(data, netuid=self.netuid, hotkey=hotkey))
        charge = max(COMMITMENT_MIN_CHARGE, size)
        with self._tx(write=True) as db:
            block = self.current_block()
            if self._uid(db, hotkey) is None:
                raise NotRegistered(
                    "AccountNotAllowedCommit: only registered hotkeys can commit",
                    netuid=self.netuid,
                    hotkey=hotkey,
                )
            epoch = block // self.params.tempo
            row = db.execute(
                "SELECT epoch, used FROM commitment_space WHERE netuid = ? AND hotkey = ?",
                (self.netuid, hotkey),
            ).fetchone()
            used = row[1] if row is not None and row[0] == epoch else 0
            if used + charge > COMMITMENT_SPACE_PER_EPOCH:
                raise RateLimited(
                    f"SpaceLimitExceeded: {used} of {COMMITMENT_SPACE_PER_EPOCH} commitment "
                    f"bytes used this epoch",
                    netuid=self.netuid,
                    hotkey=hotkey,
                    retry_in_blocks=self.params.tempo - block % self.params.tempo,
                )
            db.execute(
                "INSERT OR REPLACE INTO commitment_space VALUES (?, ?, ?, ?)",
                (self.netuid, hotkey, epoch, used + charge),
            )
            db.execute(
                "INSERT INTO commitments (netuid, hotkey, data, block) VALUES (?, ?, ?, ?)",
                (self.netuid, hotkey, data, block),
            )
            self._prune_commitments(db, hotkey, block - COMMITMENT_HISTORY_BLOCKS)

    def _prune_commitments(self, db: sqlite3.Connection, hotkey: str, cutoff: int) -> None:
        """Delete the hotkey's rows older than its newest row at or before ``cutoff``."""
        db.execute(
            "DELETE FROM commitments WHERE netuid = ? AND hotkey = ? AND (block, seq) < ("
            " SELECT block, seq FROM commitments WHERE netuid = ? AND hotkey = ? AND block <= ?"
            " ORDER BY block DESC, seq DESC LIMIT 1)",
            (self.netuid, hotkey, self.netuid, hotkey, cutoff),
        )

    def set_weights(self, wallet: Wallet, uids: Sequence[int], weights: Sequence[float]) -> None:
        """Replace the validator's weight row; the rules below mirror subtensor's checks."""
        hotkey = _hotkey_of(wallet)
        row = normalize_weights(uids, weights)
        with self._tx(write=True) as db:
            block = self.current_block()
            uid = self._uid(db, hotkey)
            if uid is None:
                raise NotRegistered("cannot set weights", netuid=self.netuid, hotkey=hotkey)
            stakes = {
                u: s / RAO_PER_UNIT
                for u, s in db.execute(
                    "SELECT uid, stake_rao FROM neurons WHERE netuid = ?", (self.netuid,)
                )
            }
            if uid not in validator_permits(stakes, self.params.max_validators):
                raise ChainRefused("NeuronNoValidatorPermit", netuid=self.netuid, hotkey=hotkey)
            if unknown := sorted(set(row) - set(stakes)):
                raise ChainRefused(
                    "UidVecContainInvalidOne",
                    netuid=self.netuid,
                    hotkey=hotkey,
                    message=f"UidVecContainInvalidOne: no uids {unknown}",
                )
            (last_update,) = db.execute(
                "SELECT last_update FROM neurons WHERE netuid = ? AND uid = ?", (self.netuid, uid)
            ).fetchone()
            since = block - last_update
            if last_update > 0 and since < self.params.weights_rate_limit:
                raise RateLimited(
                    f"SettingWeightsTooFast: last set {since} blocks ago, limit "
                    f"{self.params.weights_rate_limit}",
                    netuid=self.netuid,
                    hotkey=hotkey,
                    retry_in_blocks=self.params.weights_rate_limit - since,
                )
            db.execute("DELETE FROM weights WHERE netuid = ? AND uid = ?", (self.netuid, uid))
            db.executemany(
                "INSERT INTO weights VALUES (?, ?, ?, ?)",
                [(self.netuid, uid, dest, w) for dest, w in row.items()],
            )
            db.execute(
                "UPDATE neurons SET last_update = ? WHERE netuid = ? AND uid = ?",
                (block, self.netuid, uid),
            )
        logger.info("uid %d set weights on %d uids at block %d", uid, len(row), block)

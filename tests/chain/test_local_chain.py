"""LocalChain rules, with a hand-driven clock."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import bittensor as bt
import pytest

from blockzero.chain.consensus import incentive, validator_permits
from blockzero.chain.errors import (
    ChainError,
    ChainRefused,
    CommitmentTooLarge,
    NotRegistered,
    RateLimited,
)
from blockzero.chain.local_chain import (
    COMMITMENT_HISTORY_BLOCKS,
    COMMITMENT_MIN_CHARGE,
    COMMITMENT_SPACE_PER_EPOCH,
    LocalChain,
)
from blockzero.chain.local_schema import SubnetParams
from blockzero.chain.port import MAX_COMMITMENT_BYTES, Commitment

GENESIS = 1_000_000.0
NETUID = 3


class Clock:
    """A settable clock; ``sleep`` advances it, so waits take no real time."""

    def __init__(self, now: float = GENESIS):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def to_block(self, block: int, *, block_time: float = 12.0) -> None:
        self.now = GENESIS + block * block_time


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def chain_path(tmp_path: Path) -> Path:
    path = tmp_path / "chain.db"
    LocalChain.create(
        path,
        [SubnetParams(netuid=NETUID, tempo=100, weights_rate_limit=10, max_validators=2)],
        block_time_s=12.0,
        genesis_time=GENESIS,
    )
    return path


@pytest.fixture
def chain(chain_path: Path, clock: Clock) -> LocalChain:
    return LocalChain(chain_path, NETUID, clock=clock, sleep=clock.sleep)


@pytest.fixture
def neurons(chain: LocalChain, make_wallet: Callable[[str], bt.Wallet]) -> dict[str, bt.Wallet]:
    """uid 0 and 1: validators staked 3 and 1; uids 2 and 3: miners."""
    wallets = {name: make_wallet(name) for name in ("val_a", "val_b", "miner1", "miner2")}
    for w in wallets.values():
        chain.register(w.hotkey.ss58_address, coldkey=w.coldkeypub.ss58_address)
    chain.add_stake(wallets["val_a"].hotkey.ss58_address, 3.0)
    chain.add_stake(wallets["val_b"].hotkey.ss58_address, 1.0)
    return wallets


def test_block_number_follows_the_clock(chain: LocalChain, clock: Clock) -> None:
    clock.now = GENESIS - 50
    assert chain.current_block() == 0
    for offset, block in [(0.0, 0), (11.999, 0), (12.0, 1), (12 * 50 + 6, 50)]:
        clock.now = GENESIS + offset
        assert chain.current_block() == block


def test_block_hash_is_deterministic_per_chain(
    chain: LocalChain, chain_path: Path, clock: Clock, tmp_path: Path
) -> None:
    clock.to_block(20)
    other_process_view = LocalChain(chain_path, NETUID, clock=clock)
    assert chain.block_hash(7) == other_process_view.block_hash(7)
    assert chain.block_hash(7) != chain.block_hash(8)
    assert chain.block_hash(7).startswith("0x") and len(chain.block_hash(7)) == 66
    LocalChain.create(tmp_path / "other.db", [SubnetParams(netuid=NETUID)], genesis_time=GENESIS)
    assert LocalChain(tmp_path / "other.db", NETUID, clock=clock).block_hash(7) != chain.block_hash(
        7
    )
    with pytest.raises(ChainError, match="does not exist"):
        chain.block_hash(21)


def test_wait_for_block(chain: LocalChain, clock: Clock) -> None:
    clock.now = GENESIS + 5
    assert chain.wait_for_block(4) == 4
    assert clock.now == GENESIS + 48
    with pytest.raises(TimeoutError):
        chain.wait_for_block(100, timeout=60)
    assert chain.current_block() < 100


def test_create_refuses_to_overwrite_and_open_needs_a_subnet(chain_path: Path) -> None:
    with pytest.raises(FileExistsError):
        LocalChain.create(chain_path, [SubnetParams(netuid=1)])
    with pytest.raises(ChainError, match="subnet does not exist"):
        LocalChain(chain_path, NETUID + 1)
    with pytest.raises(FileNotFoundError):
        LocalChain(chain_path.with_name("missing.db"), NETUID)


def test_register_allots_next_uid(
    chain: LocalChain, neurons: dict[str, bt.Wallet], make_wallet: Callable[[str], bt.Wallet]
) -> None:
    assert [chain.uid(w.hotkey.ss58_address) for w in neurons.values()] == [0, 1, 2, 3]
    with pytest.raises(ChainRefused) as info:
        chain.register(neurons["miner1"].hotkey.ss58_address)
    assert info.value.reason == "HotKeyAlreadyRegisteredInSubNet"
    with pytest.raises(ValueError):
        chain.register("not-an-ss58-address")
    assert chain.uid(make_wallet("nobody").hotkey.ss58_address) is None
    with pytest.raises(NotRegistered):
        chain.add_stake(make_wallet("nobody2").hotkey.ss58_address, 1.0)


def test_commitment_read_back_replace_and_size_limit(
    chain: LocalChain, neurons: dict[str, bt.Wallet], clock: Clock
) -> None:
    miner = neurons["miner1"]
    hotkey = miner.hotkey.ss58_address
    clock.to_block(5)
    chain.publish_commitment(miner, "first")
    clock.to_block(6)
    chain.publish_commitment(miner, "é" * (MAX_COMMITMENT_BYTES // 2))  # 2 bytes per char
    got = chain.commitments()[hotkey]
    assert (got.data, got.block) == ("é" * (MAX_COMMITMENT_BYTES // 2), 6)
    with pytest.raises(CommitmentTooLarge) as info:
        chain.publish_commitment(miner, "é" * (MAX_COMMITMENT_BYTES // 2) + "x")
    assert (info.value.size, info.value.limit) == (MAX_COMMITMENT_BYTES + 1, MAX_COMMITMENT_BYTES)
    assert chain.commitments()[hotkey].block == 6


def test_commitments_at_a_past_block(
    chain: LocalChain, neurons: dict[str, bt.Wallet], clock: Clock
) -> None:
    """The hash committed in the commit phase stays readable after the reveal replaced it."""
    miner1, miner2 = neurons["miner1"], neurons["miner2"]
    hk1, hk2 = miner1.hotkey.ss58_address, miner2.hotkey.ss58_address
    clock.to_block(10)
    chain.publish_commitment(miner1, "sha256:old")
    clock.to_block(20)
    chain.publish_commitment(miner1, "sha256:" + "ab" * 32)
    chain.publish_commitment(miner1, "sha256:" + "cd" * 32)  # same block: the later one wins
    commit_end = 25
    clock.to_block(30)
    chain.publish_commitment(miner1, "acme/moe-g3@abc123")  # the reveal
    chain.publish_commitment(miner2, "late/model@def456")  # first commits after commit_end

    assert chain.commitments(at_block=commit_end) == {
        hk1: Commitment(data="sha256:" + "cd" * 32, block=20)
    }
    assert chain.commitments(at_block=10) == {hk1: Commitment(data="sha256:old", block=10)}
    assert chain.commitments(at_block=9) == {}
    after = chain.commitments(at_block=30)
    assert after == chain.commitments()
    assert after[hk1] == Commitment(data="acme/moe-g3@abc123", block=30)
    assert after[hk2] == Commitment(data="late/model@def456", block=30)
    with pytest.raises(ChainError, match="does not exist yet"):
        chain.commitments(at_block=31)
    with pytest.raises(ValueError):
        chain.commitments(at_block=-1)


def test_commitment_history_is_pruned_beyond_the_horizon(
    chain: LocalChain, chain_path: Path, neurons: dict[str, bt.Wallet], clock: Clock
) -> None:
    miner = neurons["miner1"]
    hotkey = miner.hotkey.ss58_address
    for block, data in [(10, "a"), (20, "b"), (30, "c")]:
        clock.to_block(block)
        chain.publish_commitment(miner, data)
    head = 25 + COMMITMENT_HISTORY_BLOCKS
    clock.to_block(head)
    chain.publish_commitment(miner, "d")  # cutoff 25: "b" is the state there, "a" goes
    with sqlite3.connect(chain_path) as db:
        kept = db.execute("SELECT data FROM commitments ORDER BY seq").fetchall()
    assert kept == [("b",), ("c",), ("d",)]
    assert chain.commitments(at_block=25)[hotkey] == Commitment(data="b", block=20)
    assert chain.commitments(at_block=30)[hotkey] == Commitment(data="c", block=30)
    with pytest.raises(ChainError, match="pruned"):
        chain.commitments(at_block=24)


def test_an_older_schema_is_refused(chain_path: Path) -> None:
    with sqlite3.connect(chain_path) as db:
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with pytest.raises(ChainError, match="schema 1"):
        LocalChain(chain_path, NETUID)


def test_commitment_needs_registration(
    chain: LocalChain, make_wallet: Callable[[str], bt.Wallet]
) -> None:
    stranger = make_wallet("stranger")
    with pytest.raises(NotRegistered) as info:
        chain.publish_commitment(stranger, "hello")
    assert info.value.hotkey == stranger.hotkey.ss58_address and info.value.netuid == NETUID
    assert chain.commitments() == {}


def test_commitment_byte_quota_resets_each_epoch(
    chain: LocalChain, neurons: dict[str, bt.Wallet], clock: Clock
) -> None:
    miner = neurons["miner2"]
    clock.to_block(150)  # epoch 1 of tempo 100: blocks 100..199
    allowed = COMMITMENT_SPACE_PER_EPOCH // COMMITMENT_MIN_CHARGE
    for i in range(allowed):
        chain.publish_commitment(miner, f"c{i}")
    with pytest.raises(RateLimited) as info:
        chain.publish_commitment(miner, "one too many")
    assert info.value.retry_in_blocks == 50
    assert chain.commitments()[miner.hotkey.ss58_address].data == f"c{allowed - 1}"
    clock.to_block(200)
    chain.publish_commitment(miner, "next epoch")
    assert chain.commitments()[miner.hotkey.ss58_address].data == "next epoch"


def test_weights_from_non_validator_are_refused(
    chain: LocalChain, neurons: dict[str, bt.Wallet]
) -> None:
    with pytest.raises(ChainRefused) as info:
        chain.set_weights(neurons["miner1"], [3], [1.0])
    assert info.value.reason == "NeuronNoValidatorPermit"
    assert info.value.hotkey == neurons["miner1"].hotkey.ss58_address
    assert chain.weights() == {}


def test_weights_rate_limit(chain: LocalChain, neurons: dict[str, bt.Wallet], clock: Clock) -> None:
    validator = neurons["val_a"]
    clock.to_block(30)
    chain.set_weights(validator, [2, 3], [1.0, 1.0])
    assert chain.metagraph().neurons[0].last_update == 30
    clock.to_block(39)
    with pytest.raises(RateLimited) as info:
        chain.set_weights(validator, [2], [1.0])
    assert info.value.retry_in_blocks == 1
    assert chain.weights()[0] == {2: 0.5, 3: 0.5}
    clock.to_block(40)
    chain.set_weights(validator, [2], [1.0])
    assert chain.weights()[0] == {2: 1.0}


def test_bad_weights(chain: LocalChain, neurons: dict[str, bt.Wallet], clock: Clock) -> None:
    clock.to_block(1)
    with pytest.raises(ChainRefused, match="UidVecContainInvalidOne"):
        chain.set_weights(neurons["val_a"], [2, 99], [1.0, 1.0])
    for uids, weights in [([2, 2], [1.0, 1.0]), ([2], [0.0]), ([2], [float("nan")]), ([2], [])]:
        with pytest.raises(ValueError):
            chain.set_weights(neurons["val_a"], uids, weights)


def test_permits_go_to_top_stake() -> None:
    assert validator_permits({0: 5.0, 1: 0.0, 2: 7.0, 3: 5.0}, 2) == {2, 0}
    assert validator_permits({0: 0.0, 1: 0.0}, 64) == set()


def test_incentive_formula_by_hand() -> None:
    # A (stake 3) splits 1:1 over miners 2 and 3; B (stake 1) puts all on miner 3.
    # raw: m2 = 3*0.5 = 1.5, m3 = 3*0.5 + 1*1 = 2.5; normalized by 4.
    got = incentive({0: 3.0, 1: 1.0}, {0: {2: 2.0, 3: 2.0}, 1: {3: 5.0}})
    assert got == pytest.approx({2: 0.375, 3: 0.625})
    assert incentive({0: 0.0}, {0: {2: 1.0}}) == {2: 0.0}


def test_metagraph_incentive_and_permits(
    chain: LocalChain, neurons: dict[str, bt.Wallet], clock: Clock
) -> None:
    clock.to_block(12)
    chain.set_weights(neurons["val_a"], [2, 3], [2.0, 2.0])
    chain.set_weights(neurons["val_b"], [3], [5.0])
    mg = chain.metagraph()
    assert mg.block == 12
    assert [n.validator_permit for n in mg.neurons] == [True, True, False, False]
    assert [n.stake for n in mg.neurons] == [3.0, 1.0, 0.0, 0.0]
    assert [n.incentive for n in mg.neurons] == pytest.approx([0.0, 0.0, 0.375, 0.625])
    assert mg.neurons[2].coldkey == neurons["miner1"].coldkeypub.ss58_address
    # A third, larger validator pushes val_b (stake 1) out of the top 2: its row stops counting.
    chain.add_stake(neurons["miner1"].hotkey.ss58_address, 10.0)
    mg = chain.metagraph()
    assert [n.validator_permit for n in mg.neurons] == [True, False, True, False]
    assert [n.incentive for n in mg.neurons] == pytest.approx([0.0, 0.0, 0.5, 0.5])

"""BittensorChain against the real bittensor 11 SDK, with a fake ``bt.Substrate`` underneath."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import bittensor as bt
import pytest
from fake_substrate import FakeSubstrate

from blockzero.chain.bittensor_chain import BittensorChain, RetryPolicy
from blockzero.chain.errors import (
    ChainRefused,
    ChainUnavailable,
    CommitmentTooLarge,
    NotRegistered,
    RateLimited,
)
from blockzero.chain.port import MAX_COMMITMENT_BYTES, Commitment

NETUID = 7


@pytest.fixture
def wallets(make_wallet: Callable[[str], bt.Wallet]) -> list[bt.Wallet]:
    return [make_wallet(name) for name in ("validator", "miner1", "miner2")]


@pytest.fixture
def fake(wallets: list[bt.Wallet]) -> FakeSubstrate:
    """Subnet 7 with a validator (uid 0, 1000 stake) and two miners."""
    fake = FakeSubstrate(block=1000)
    hotkeys = [w.hotkey.ss58_address for w in wallets]
    for uid, hotkey in enumerate(hotkeys):
        fake.seed("SubtensorModule", "Uids", [NETUID, hotkey], uid)
    for item, value in [
        ("CommitRevealWeightsEnabled", False),
        ("WeightsSetRateLimit", 100),
        ("LastUpdate", [0, 0, 0]),
        ("MinAllowedWeights", 0),
        ("MaxWeightsLimit", 65535),
        ("SubnetEpochConsensus", "Yuma"),
        ("ValidatorPermit", [True, False, False]),
        ("WeightsVersionKey", 0),
    ]:
        fake.seed("SubtensorModule", item, [NETUID], value)
    fake.seed_runtime(
        "SubnetInfoRuntimeApi",
        "get_metagraph",
        lambda params: {
            "netuid": params[0],
            "block": fake.block,
            "tempo": 360,
            "last_step": 900,
            "blocks_since_last_step": fake.block - 900,
            "owner_hotkey": hotkeys[0],
            "owner_coldkey": wallets[0].coldkeypub.ss58_address,
            "network_registered_at": 1,
            "hotkeys": hotkeys,
            "coldkeys": [w.coldkeypub.ss58_address for w in wallets],
            "validator_permit": [True, False, False],
            "last_update": [990, 0, 0],
            "incentives": [0, 49151, 16384],
            "total_stake": [1000 * 10**9, 0, 5 * 10**8],
        },
    )
    return fake


@pytest.fixture
def chain(fake: FakeSubstrate) -> Iterator[BittensorChain]:
    chain = BittensorChain(
        NETUID,
        network="local",
        substrate=fake,
        retry=RetryPolicy(attempts=3, initial_delay_s=0.01),
        sleep=lambda _s: None,
    )
    yield chain
    chain.close()


def test_reads_block_hash_and_metagraph(
    chain: BittensorChain, fake: FakeSubstrate, wallets: list[bt.Wallet]
) -> None:
    assert chain.current_block() == 1000
    assert chain.block_hash(999) == f"0x{999:064x}"
    mg = chain.metagraph()
    assert mg.netuid == NETUID and mg.block == 1000
    assert mg.hotkeys == [w.hotkey.ss58_address for w in wallets]
    validator, miner1, miner2 = mg.neurons
    assert validator.validator_permit and not miner1.validator_permit
    assert validator.stake == pytest.approx(1000.0) and miner2.stake == pytest.approx(0.5)
    assert miner1.incentive == pytest.approx(0.75, abs=1e-4)
    assert validator.coldkey == wallets[0].coldkeypub.ss58_address
    assert validator.last_update == 990
    assert chain.uid(wallets[2].hotkey.ss58_address) == 2
    assert chain.uid("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY") is None


def test_commit_then_read_back(
    chain: BittensorChain, fake: FakeSubstrate, wallets: list[bt.Wallet]
) -> None:
    miner = wallets[1]
    data = "acme/moe-g3@" + "ab" * 70  # 152 bytes: two Raw fields
    chain.publish_commitment(miner, data)
    sent = fake.submissions[-1]
    assert sent["function"] == "set_commitment"
    assert sent["signer"] == miner.hotkey.ss58_address  # hotkey-signed, not coldkey
    assert [list(f) for f in sent["params"]["info"]["fields"]] == [["Raw128"], ["Raw24"]]
    found = chain.commitments()
    assert found[miner.hotkey.ss58_address].data == data
    assert found[miner.hotkey.ss58_address].block == 1001


def test_commitments_at_a_past_block_read_historical_state(
    chain: BittensorChain, fake: FakeSubstrate, wallets: list[bt.Wallet]
) -> None:
    miner1, miner2 = (w.hotkey.ss58_address for w in wallets[1:])
    chain.publish_commitment(wallets[1], "sha256:" + "ab" * 32)  # lands in block 1001
    commit_end = chain.current_block()
    chain.publish_commitment(wallets[1], "acme/moe-g3@abc123")  # the reveal, block 1002
    chain.publish_commitment(wallets[2], "late/model@def456")  # first commit, block 1003
    assert commit_end == 1001 and chain.current_block() == 1003

    fake.pinned_blocks.clear()
    past = chain.commitments(at_block=commit_end)
    assert past == {miner1: Commitment(data="sha256:" + "ab" * 32, block=1001)}
    # Pinned the way the SDK pins a read: every storage map query at that block's hash.
    assert ("Commitments", "CommitmentOf", commit_end) in fake.pinned_blocks
    assert {block for _, _, block in fake.pinned_blocks} == {commit_end}

    assert chain.commitments(at_block=1000) == {}
    latest = chain.commitments()
    assert latest[miner1] == Commitment(data="acme/moe-g3@abc123", block=1002)
    assert latest[miner2] == Commitment(data="late/model@def456", block=1003)
    assert list(latest) == [miner2, miner1]  # newest first
    assert chain.commitments(at_block=1003) == latest
    with pytest.raises(ValueError):
        chain.commitments(at_block=-1)


def test_commitment_over_limit_is_refused_before_sending(
    chain: BittensorChain, fake: FakeSubstrate, wallets: list[bt.Wallet]
) -> None:
    with pytest.raises(CommitmentTooLarge) as info:
        chain.publish_commitment(wallets[1], "x" * (MAX_COMMITMENT_BYTES + 1))
    assert info.value.size == MAX_COMMITMENT_BYTES + 1
    assert fake.submissions == []


def test_commit_from_unregistered_hotkey(
    chain: BittensorChain, make_wallet: Callable[[str], bt.Wallet]
) -> None:
    stranger = make_wallet("stranger")
    with pytest.raises(NotRegistered) as info:
        chain.publish_commitment(stranger, "hello")
    assert info.value.hotkey == stranger.hotkey.ss58_address and info.value.netuid == NETUID


def test_set_weights(chain: BittensorChain, fake: FakeSubstrate, wallets: list[bt.Wallet]) -> None:
    chain.set_weights(wallets[0], [1, 2], [0.7, 0.3])
    sent = fake.submissions[-1]
    assert sent["function"] == "set_mechanism_weights"
    assert sent["signer"] == wallets[0].hotkey.ss58_address
    assert sent["params"]["dests"] == [1, 2]
    assert sent["params"]["weights"] == [65535, 28086]
    assert chain.weights() == {0: pytest.approx({1: 65535 / 93621, 2: 28086 / 93621})}


def test_set_weights_refused_without_permit(
    chain: BittensorChain, wallets: list[bt.Wallet]
) -> None:
    with pytest.raises(ChainRefused) as info:
        chain.set_weights(wallets[1], [2], [1.0])
    assert info.value.reason == "NeuronNoValidatorPermit"
    assert info.value.hotkey == wallets[1].hotkey.ss58_address


def test_set_weights_too_soon_is_rate_limited(
    chain: BittensorChain, fake: FakeSubstrate, wallets: list[bt.Wallet]
) -> None:
    fake.seed("SubtensorModule", "LastUpdate", [NETUID], [960, 0, 0])
    with pytest.raises(RateLimited) as info:
        chain.set_weights(wallets[0], [1], [1.0])
    assert info.value.retry_in_blocks == 60
    assert fake.submissions == []


@pytest.mark.parametrize(
    ("refusal", "expected"),
    [
        ("SpaceLimitExceeded", RateLimited),
        ("SettingWeightsTooFast", RateLimited),
        ("IncorrectWeightVersionKey", ChainRefused),
    ],
)
def test_refused_extrinsics_map_to_port_errors(
    chain: BittensorChain,
    fake: FakeSubstrate,
    wallets: list[bt.Wallet],
    refusal: str,
    expected: type[Exception],
) -> None:
    fake.refusals.append(refusal)
    with pytest.raises(expected, match=refusal) as info:
        if refusal == "SpaceLimitExceeded":
            chain.publish_commitment(wallets[1], "hello")
        else:
            chain.set_weights(wallets[0], [1], [1.0])
    assert type(info.value) is expected
    assert isinstance(info.value.__cause__, bt.ChainError)


def test_wait_for_block_polls_the_head(chain: BittensorChain, fake: FakeSubstrate) -> None:
    def next_block(_seconds: float) -> None:
        fake.block += 1

    chain._sleep = next_block
    assert chain.wait_for_block(1003) == 1003
    with pytest.raises(TimeoutError):
        chain.wait_for_block(10**9, timeout=0.05)


def test_rpc_error_is_retried_then_succeeds(chain: BittensorChain, fake: FakeSubstrate) -> None:
    sleeps: list[float] = []
    chain._sleep = sleeps.append
    fake.fail("block_number", bt.RpcConnectionError("socket closed"), ConnectionResetError())
    assert chain.current_block() == 1000
    assert fake.calls["block_number"] == 3
    assert sleeps == [0.01, 0.02]


def test_rpc_errors_exhaust_retries(chain: BittensorChain, fake: FakeSubstrate) -> None:
    fake.fail("runtime_call", *[bt.RpcConnectionError("node down")] * 3)
    with pytest.raises(ChainUnavailable) as info:
        chain.metagraph()
    assert isinstance(info.value.__cause__, bt.RpcConnectionError)
    assert info.value.netuid == NETUID
    assert fake.calls["runtime_call"] == 3

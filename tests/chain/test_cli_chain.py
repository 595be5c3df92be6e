"""The `blockzero chain` commands on a local chain file."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import bittensor as bt
from typer.testing import CliRunner

from blockzero.chain.local_chain import LocalChain
from blockzero.chain.local_schema import SubnetParams
from blockzero.cli.chain import app

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_create_register_stake_and_inspect(
    tmp_path: Path, wallet_dir: Path, make_wallet: Callable[[str], bt.Wallet]
) -> None:
    chain = str(tmp_path / "chain.db")
    run("create", chain, "--netuid", "2", "--block-time", "1", "--weights-rate-limit", "5")
    val, miner = make_wallet("val"), make_wallet("miner")
    wallet = ["--chain", chain, "--netuid", "2", "--wallet.path", str(wallet_dir)]
    assert "uid 0" in run("register", *wallet, "--wallet.name", "val", "--stake", "10")
    assert "uid 1" in run("register", *wallet, "--wallet.name", "miner")
    assert "stake 12.5" in run("stake", "2.5", *wallet, "--wallet.name", "val")

    inspect = ["--chain", chain, "--netuid", "2", "--json"]
    head = json.loads(run("block", *inspect))
    assert head["block"] >= 0 and head["hash"].startswith("0x")
    mg = json.loads(run("metagraph", *inspect))
    assert [n["hotkey"] for n in mg["neurons"]] == [
        val.hotkey.ss58_address,
        miner.hotkey.ss58_address,
    ]
    assert [n["stake"] for n in mg["neurons"]] == [12.5, 0.0]
    assert [n["validator_permit"] for n in mg["neurons"]] == [True, False]
    assert json.loads(run("commitments", *inspect)) == {}
    assert json.loads(run("commitments", *inspect, "--at-block", "0")) == {}
    assert json.loads(run("weights", *inspect)) == {}
    assert val.hotkey.ss58_address[:8] in run("metagraph", "--chain", chain, "--netuid", "2")


def test_commitments_at_block(
    tmp_path: Path, wallet_dir: Path, make_wallet: Callable[[str], bt.Wallet]
) -> None:
    path = tmp_path / "chain.db"
    LocalChain.create(
        path, [SubnetParams(netuid=1)], block_time_s=12.0, genesis_time=time.time() - 126
    )
    chain = LocalChain(path, 1)
    miner = make_wallet("miner")
    chain.register(miner.hotkey.ss58_address)
    chain.publish_commitment(miner, "sha256:abc")
    block = chain.commitments()[miner.hotkey.ss58_address].block
    assert block >= 10
    base = ["commitments", "--chain", str(path), "--netuid", "1", "--json"]
    past = json.loads(run(*base, "--at-block", str(block)))
    assert past == {miner.hotkey.ss58_address: {"data": "sha256:abc", "block": block}}
    assert json.loads(run(*base, "--at-block", str(block - 1))) == {}
    assert "sha256:abc" in run(*base[:-1], "--at-block", str(block))
    future = runner.invoke(app, [*base, "--at-block", str(10**12)])
    assert future.exit_code == 1 and "does not exist yet" in future.output


def test_errors_are_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["block", "--chain", str(tmp_path / "missing.db")])
    assert result.exit_code == 1
    assert "FileNotFoundError" in result.output and "Traceback" not in result.output

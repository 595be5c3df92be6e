"""A local subnet in a temp dir: a fast chain (0.5 s blocks, 22-block cycles; a long commit phase absorbs slow steps on a loaded CPU), a directory hub,
a staked validator that has published the tiny model, and a registered miner wallet."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import bittensor as bt
import pytest
import torch
import yaml

from blockzero.chain.local_chain import LocalChain
from blockzero.chain.local_schema import SubnetParams
from blockzero.connect import local_chain_path
from blockzero.hub.local_hub import LocalHub
from blockzero.miner.loop import Miner
from blockzero.model.loading import build_model
from blockzero.model.shards import write_model_dir
from blockzero.protocol.commitments import ManifestCommitment
from blockzero.protocol.expert_groups import load_registry
from blockzero.publish import publish_model
from blockzero.settings import Settings, load_protocol_config, load_settings

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "configs" / "groups" / "tiny-qwen3-moe.yaml"
BLOCK_TIME_S = 0.5
PROTOCOL = {
    "version": 1,
    "cycle": {"length": 22, "phases": {"train": 8, "commit": 8, "reveal": 4, "validate": 2}},
    "miners": {"validator_min_stake_alpha": 1000},
}
DATA = {
    "seq_len": 32,
    "domains": {
        "code": {"kind": "stdlib_code", "max_files": 3},
        "prose": {"kind": "arithmetic", "num_documents": 100, "seed": 3},
        "math": {"kind": "arithmetic", "num_documents": 100, "seed": 1},
        "spare": {"kind": "arithmetic", "num_documents": 100, "seed": 2},
    },
}


def make_wallet(wallet_dir: Path, name: str) -> bt.Wallet:
    wallet = bt.Wallet(name=name, hotkey="default", path=str(wallet_dir))
    wallet.create_new_coldkey(use_password=False, overwrite=True, suppress=True)
    wallet.create_new_hotkey(use_password=False, overwrite=True, suppress=True)
    return wallet


@pytest.fixture(scope="session", autouse=True)
def _warm_kernels(tiny_config) -> None:
    """Pay torch's one-off first-step cost (seconds on a loaded CPU) outside the timed cycles."""
    model = build_model(tiny_config, seed=0)
    batch = torch.randint(4, tiny_config.vocab_size, (2, 32))
    model(input_ids=batch, labels=batch).loss.backward()


@dataclass
class Subnet:
    settings: Settings
    chain: LocalChain
    hub: LocalHub
    validator: bt.Wallet
    miner_wallet: bt.Wallet
    model_commitment: ManifestCommitment
    tmp: Path

    def miner(self) -> Miner:
        return Miner(
            settings=self.settings,
            protocol=load_protocol_config(self.settings),
            chain=self.chain,
            hub=self.hub,
            wallet=self.miner_wallet,
        )


@pytest.fixture
def subnet(tmp_path: Path, tiny_config) -> Subnet:
    registry = load_registry(REGISTRY)
    (tmp_path / "protocol.yaml").write_text(yaml.safe_dump(PROTOCOL))
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(DATA))
    settings = load_settings(
        [
            "--network", "local",
            "--paths.work_dir", str(tmp_path / "work"),
            "--hub.local_root", str(tmp_path / "hub"),
            "--protocol.path", str(tmp_path / "protocol.yaml"),
            "--wallet.path", str(tmp_path / "wallets"),
            "--wallet.name", "miner",
            "--miner.registry", str(REGISTRY),
            "--miner.data", str(tmp_path / "data.yaml"),
            "--miner.batch_size", "2",
            "--miner.headroom_s", "1.5",
            "--miner.min_train_s", "0.5",
        ]
    )  # fmt: skip
    chain_path = local_chain_path(settings)
    chain_path.parent.mkdir(parents=True)
    # Genesis placed so the model lands 2 blocks before cycle 1: the miner need not wait long.
    genesis = time.time() - (PROTOCOL["cycle"]["length"] - 3) * BLOCK_TIME_S
    LocalChain.create(
        chain_path, [SubnetParams(netuid=1)], block_time_s=BLOCK_TIME_S, genesis_time=genesis
    )
    chain = LocalChain(chain_path, 1)
    hub = LocalHub(tmp_path / "hub")
    validator = make_wallet(tmp_path / "wallets", "validator")
    miner_wallet = make_wallet(tmp_path / "wallets", "miner")
    chain.register(validator.hotkey.ss58_address)
    chain.add_stake(validator.hotkey.ss58_address, 2000)
    chain.register(miner_wallet.hotkey.ss58_address)
    model_dir = tmp_path / "model"
    manifest = write_model_dir(model_dir, build_model(tiny_config, seed=0), registry, cycle=0)
    commitment = publish_model(
        chain=chain,
        hub=hub,
        wallet=validator,
        repo_id="validator/global",
        model_dir=model_dir,
        manifest=manifest,
    )
    return Subnet(settings, chain, hub, validator, miner_wallet, commitment, tmp_path)

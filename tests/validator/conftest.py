"""A local subnet for the validator on a hand-moved clock: the embedded chain and hub in a temp
dir, a tiny model with two expert groups (code, math), small held-out corpora, and miners whose
submission files the tests write directly (honest deltas from a few real training steps, and
every kind of cheat)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import bittensor as bt
import pytest
import torch
import yaml

from blockzero.chain.local_chain import LocalChain
from blockzero.chain.local_schema import SubnetParams
from blockzero.data.batches import train_batches
from blockzero.data.domains import DataConfig, load_domains
from blockzero.data.tokenizer import byte_tokenizer
from blockzero.delta.pseudo_gradient import pseudo_gradient
from blockzero.delta.submission import SubmissionMeta, write_submission
from blockzero.hub.local_hub import LocalHub
from blockzero.model.families import MoEAdapter
from blockzero.model.group_training import prepare_group_training
from blockzero.model.loading import build_model
from blockzero.model.shards import write_model_dir
from blockzero.model.training import InnerConfig, train
from blockzero.protocol.commitments import HashCommitment, RevealCommitment, encode
from blockzero.protocol.config import ProtocolConfig
from blockzero.protocol.cycle import Phase
from blockzero.protocol.expert_groups import contiguous_registry, save_registry
from blockzero.publish import publish_model
from blockzero.settings import Settings, load_settings
from blockzero.validator.collect import SUBMISSION_FILE
from blockzero.validator.loop import Validator

PROTOCOL = {
    "version": 1,
    "cycle": {"length": 20, "phases": {"train": 8, "commit": 4, "reveal": 4, "validate": 4}},
    "miners": {"validator_min_stake_alpha": 1000},
}
DATA = {
    "seq_len": 64,
    "domains": {
        "code": {"kind": "stdlib_code", "max_files": 12},
        "math": {"kind": "arithmetic", "num_documents": 400, "seed": 1},
        "prose": {"kind": "pydoc_prose"},
    },
}
EVAL_SEQUENCES = 16
TRAIN_STEPS = 4
# A random-init tiny model with contiguous groups: after the first merge one group's training
# measured +0.16..0.21 nats on the other domains, so the forgetting/gate tolerance is loose here;
# both checks are tested on their own in test_proof_of_loss.py and test_merge.py.
GENERAL_TOLERANCE = 0.25


class ManualClock:
    """Block n is time n (genesis 0, 1 s blocks); sleeping moves time forward."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.001)

    def to_block(self, block: int) -> None:
        self.now = max(self.now, float(block) + 0.5)


@pytest.fixture(scope="session")
def vdata(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("vdata") / "data.yaml"
    path.write_text(yaml.safe_dump(DATA))
    return path, load_domains(DataConfig.model_validate(DATA), byte_tokenizer())


@pytest.fixture(scope="session")
def vregistry(tiny_config, tmp_path_factory):
    adapter = MoEAdapter(build_model(tiny_config, seed=0))
    registry = contiguous_registry(
        num_experts=adapter.num_experts,
        top_k=adapter.top_k,
        moe_layers=adapter.moe_layer_indices,
        domains=["code", "math"],
    )
    path = tmp_path_factory.mktemp("vregistry") / "groups.yaml"
    save_registry(registry, path)
    return path, registry


def honest_delta(model_state, tiny_config, registry, corpora, group_id: int, seed: int):
    """A few real steps of full-routing group training on the group's train split."""
    model = build_model(tiny_config)
    model.load_state_dict(model_state)
    group = registry.group(group_id)
    wrapped = prepare_group_training(model, group)
    start = wrapped.group_tensors()
    batches = train_batches(corpora[group.domain].train, batch_size=8, seed=seed)
    train(
        wrapped.model,
        wrapped.trainable_parameters(),
        batches,
        InnerConfig(lr=2e-3),
        max_steps=TRAIN_STEPS,
    )
    return pseudo_gradient(start, wrapped.group_tensors())


@pytest.fixture(scope="session")
def initial_state(tiny_config) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in build_model(tiny_config, seed=0).state_dict().items()}


@pytest.fixture(scope="session")
def deltas(initial_state, tiny_config, vregistry, vdata) -> dict[tuple[int, int], dict]:
    """Honest deltas on the initial model: (group, seed) -> tensors, seeds 1 and 2 per group."""
    _, registry = vregistry
    _, corpora = vdata
    return {
        (g, s): honest_delta(initial_state, tiny_config, registry, corpora, g, s)
        for g in (0, 1)
        for s in (1, 2)
    }


@dataclass
class Net:
    tmp: Path
    clock: ManualClock
    chain: LocalChain
    hub: LocalHub
    protocol: ProtocolConfig
    registry_path: Path
    data_path: Path
    wallets: dict[str, bt.Wallet] = field(default_factory=dict)

    @property
    def schedule(self):
        return self.protocol.cycle

    def window(self, cycle: int, phase: Phase):
        return self.schedule.phase_window(cycle, phase)

    def wallet(self, name: str, *, stake: float = 0.0) -> bt.Wallet:
        w = bt.Wallet(name=name, hotkey="default", path=str(self.tmp / "wallets"))
        w.create_new_coldkey(use_password=False, overwrite=True, suppress=True)
        w.create_new_hotkey(use_password=False, overwrite=True, suppress=True)
        self.chain.register(w.hotkey.ss58_address)
        if stake:
            self.chain.add_stake(w.hotkey.ss58_address, stake)
        self.wallets[name] = w
        return w

    def settings(self, name: str, *extra: str) -> Settings:
        return load_settings(
            [
                "--network", "local",
                "--paths.work_dir", str(self.tmp / "work" / name),
                "--hub.local_root", str(self.tmp / "hub"),
                "--wallet.path", str(self.tmp / "wallets"),
                "--wallet.name", name,
                "--validator.registry", str(self.registry_path),
                "--validator.data", str(self.data_path),
                "--validator.eval_sequences", str(EVAL_SEQUENCES),
                "--validator.batch_size", "16",
                "--validator.max_submission_bytes", str(8 << 20),
                "--validator.general_tolerance", str(GENERAL_TOLERANCE),
                *extra,
            ]
        )  # fmt: skip

    def validator(self, name: str, *extra: str) -> Validator:
        return Validator(
            settings=self.settings(name, *extra),
            protocol=self.protocol,
            chain=self.chain,
            hub=self.hub,
            wallet=self.wallets[name],
        )

    def write(self, name: str, delta: dict, *, cycle: int, group: int, base: str, **meta) -> Path:
        hotkey = self.wallets[name].hotkey.ss58_address
        fields = {
            "base_revision": base,
            "cycle": cycle,
            "group": group,
            "hotkey": hotkey,
            "tokens": 1,
        }
        path = self.tmp / "files" / name / f"cycle-{cycle}.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_submission(path, delta, SubmissionMeta(**(fields | meta)))

    def commit_hash(self, name: str, path: Path, cycle: int) -> None:
        w = self.wallets[name]
        digest = hashlib.sha256(path.read_bytes()).digest()
        text = encode(
            HashCommitment.bind(file_sha256=digest, hotkey=w.hotkey.ss58_address, cycle=cycle)
        )
        self.chain.publish_commitment(w, text)

    def reveal(self, name: str, path: Path, cycle: int) -> None:
        repo = f"miners/{name}"
        self.hub.ensure_repo(repo)
        revision = self.hub.upload(repo, {SUBMISSION_FILE: path}, f"cycle {cycle}")
        text = encode(RevealCommitment(cycle=cycle, revision=revision, repo_id=repo))
        self.chain.publish_commitment(self.wallets[name], text)


@pytest.fixture
def net(tmp_path: Path, vregistry, vdata) -> Net:
    (tmp_path / "chain").mkdir()
    LocalChain.create(
        tmp_path / "chain" / "chain.db",
        [SubnetParams(netuid=1, weights_rate_limit=5)],
        block_time_s=1.0,
        genesis_time=0.0,
    )
    clock = ManualClock()
    chain = LocalChain(tmp_path / "chain" / "chain.db", 1, clock=clock, sleep=clock.sleep)
    return Net(
        tmp=tmp_path,
        clock=clock,
        chain=chain,
        hub=LocalHub(tmp_path / "hub"),
        protocol=ProtocolConfig.model_validate(PROTOCOL),
        registry_path=vregistry[0],
        data_path=vdata[0],
    )


@pytest.fixture
def publish_initial(tiny_config, vregistry):
    return lambda net, name, state: _publish_initial(net, name, state, tiny_config, vregistry[1])


@pytest.fixture
def train_delta(tiny_config, vregistry, vdata):
    return lambda state, group, seed: honest_delta(
        state, tiny_config, vregistry[1], vdata[1], group, seed
    )


def _publish_initial(net: Net, name: str, state, tiny_config, registry) -> str:
    """The owner's step: the initial model as cycle 0, published by the validator `name`."""
    model = build_model(tiny_config)
    model.load_state_dict(state)
    out = net.tmp / "initial"
    manifest = write_model_dir(out, model, registry, cycle=0)
    c = publish_model(
        chain=net.chain,
        hub=net.hub,
        wallet=net.wallets[name],
        repo_id="val/global",
        model_dir=out,
        manifest=manifest,
    )
    return c.revision

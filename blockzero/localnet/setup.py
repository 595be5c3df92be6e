"""Everything a local subnet needs before its first cycle, in one work directory:

    init/          the initial model warmed up and its expert groups chosen by activation
                   (`blockzero.owner.init_model`: the subnet owner's own tool)
    chain.db       the embedded chain, its genesis placed so cycle 1 starts `start_lead_s` after
                   the initial model is published (no idle cycle to wait through)
    hub/           the local hub; `validator-0/global` holds the model, `validator-N/evidence`
    wallets/       one unencrypted wallet per node, registered; validators staked, 0 the most,
                   so validator-0 is the publisher every node follows
    protocol.yaml  the localnet cycle (short phases), node settings in settings.yaml
    localnet.json  this layout (`.localnet` marks the directory as a localnet's, to wipe on reuse)

The model is published with validator-0's hotkey, exactly as that validator publishes every
later model, so the canonical-model rule needs no special case.
"""

import contextlib
import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import bittensor as bt
import torch
import yaml
from pydantic import BaseModel, ConfigDict

from blockzero.atomic import atomic_write_text
from blockzero.chain.local_chain import LocalChain
from blockzero.chain.local_schema import SubnetParams
from blockzero.connect import LOCAL_CHAIN_FILE
from blockzero.hub.local_hub import LocalHub
from blockzero.localnet.config import LocalnetConfig
from blockzero.miner.cheats import Strategy
from blockzero.model.loading import ModelSpec
from blockzero.owner.init_model import REGISTRY_FILE, InitConfig, init_model
from blockzero.owner.publish import publish_initial_model
from blockzero.settings import (
    HubSettings,
    MinerSettings,
    NetworkSettings,
    PathsSettings,
    ProtocolSettings,
    Settings,
    ValidatorSettings,
    WalletSettings,
)

logger = logging.getLogger(__name__)

NETUID = 1
LAYOUT_FILE = "localnet.json"
MARKER_FILE = ".localnet"
"""Written first, so a directory a crashed set-up left behind is still recognised as ours."""
MODEL_REPO = "validator-0/global"
VALIDATOR_STAKE = 10_000.0
"""Alpha per validator rank (validator-0 holds the most); well above the protocol's 1000."""


def evidence_repo(index: int) -> str:
    return f"validator-{index}/evidence"


class Node(BaseModel):
    """One process of the subnet: its wallet name, hotkey, uid and what it runs."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: Literal["validator", "miner"]
    hotkey: str
    uid: int
    strategy: Strategy | None = None
    flags: list[str]
    """Settings flags on top of `--config settings.yaml`."""


class Layout(BaseModel):
    """Where a set-up localnet lives and who is in it."""

    model_config = ConfigDict(frozen=True)

    work_dir: Path
    settings_file: Path
    registry_file: Path
    first_cycle: int
    init_seconds: float
    loss_before_warmup: dict[str, float]
    loss_after_warmup: dict[str, float]
    nodes: list[Node]

    @property
    def validators(self) -> list[Node]:
        return [n for n in self.nodes if n.role == "validator"]

    @property
    def miners(self) -> list[Node]:
        return [n for n in self.nodes if n.role == "miner"]

    def log_file(self, node: Node) -> Path:
        return self.work_dir / "logs" / f"{node.name}.log"


def prepare_work_dir(work_dir: Path) -> Path:
    """An empty work dir: a previous localnet's is wiped, anything else is refused."""
    work_dir = work_dir.expanduser().resolve()
    if work_dir.exists() and any(work_dir.iterdir()):
        if not (work_dir / MARKER_FILE).exists():
            raise FileExistsError(
                f"{work_dir} is not empty and holds no localnet; choose another --work-dir"
            )
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / MARKER_FILE).touch()
    return work_dir


def node_settings(cfg: LocalnetConfig, work_dir: Path, registry: Path) -> Settings:
    """The settings every node shares; each process adds its wallet name and role flags."""
    return Settings(
        network=NetworkSettings(backend="local", netuid=NETUID),
        wallet=WalletSettings(path=work_dir / "wallets"),
        hub=HubSettings(backend="local", local_root=work_dir / "hub"),
        paths=PathsSettings(work_dir=work_dir),
        protocol=ProtocolSettings(path=work_dir / "protocol.yaml"),
        miner=MinerSettings(
            registry=registry,
            data=cfg.data.resolve(),
            device="cpu",
            batch_size=cfg.miner_batch_size,
            lr=cfg.miner_lr,
            headroom_s=cfg.block_time_s,
            min_train_s=cfg.block_time_s * 3,
        ),
        validator=ValidatorSettings(
            registry=registry,
            data=cfg.data.resolve(),
            evidence_repo=evidence_repo(0),
            eval_sequences=cfg.eval_sequences,
            general_tolerance=cfg.general_tolerance,
            max_delta_ratio=cfg.max_delta_ratio,
            min_gain=cfg.min_gain,
        ),
    )


def _write_settings(path: Path, settings: Settings) -> None:
    data = settings.model_dump(mode="json", exclude_unset=True)
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def _wallet(work_dir: Path, name: str) -> bt.Wallet:
    wallet = bt.Wallet(name=name, hotkey="default", path=str(work_dir / "wallets"))
    wallet.create_new_coldkey(use_password=False, overwrite=True, suppress=True)
    wallet.create_new_hotkey(use_password=False, overwrite=True, suppress=True)
    return wallet


def _flags(role: str, index: int, strategy: Strategy | None) -> list[str]:
    flags = ["--wallet.name", f"{role}-{index}"]
    if role == "validator" and index == 0:
        flags += ["--validator.model_repo", MODEL_REPO]
    elif role == "validator":
        flags += ["--validator.evidence_repo", evidence_repo(index)]
    elif strategy is not Strategy.HONEST:
        flags += ["--miner.strategy", str(strategy)]
    return flags


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """One torch thread: predictable whatever else runs. With two threads on busy cores a
    warm-up step of the tiny model took 3.1 CPU-s against 0.54 with one (2-core machine, load 6)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def setup(cfg: LocalnetConfig) -> Layout:
    """Build the initial model, then the chain, wallets and registrations, then publish.

    The slow part (warm-up, profiling) runs before the chain exists, so the chain's clock only
    starts once the subnet is ready to run.
    """
    work_dir = prepare_work_dir(cfg.work_dir)
    init_cfg = InitConfig(
        model=ModelSpec(config_file=cfg.model.resolve(), seed=cfg.seed),
        data=cfg.data.resolve(),
        warmup_steps=cfg.warmup_steps,
        seed=cfg.seed,
        profile_sequences=cfg.profile_sequences,
        eval_sequences=cfg.heldout_sequences,
    )
    start = time.monotonic()
    with one_thread():
        model, result = init_model(init_cfg, work_dir / "init", device="cpu", progress=True)
    init_seconds = time.monotonic() - start
    registry_file = work_dir / "init" / REGISTRY_FILE
    atomic_write_text(
        work_dir / "protocol.yaml", yaml.safe_dump(cfg.protocol().model_dump(mode="json"))
    )
    _write_settings(work_dir / "settings.yaml", node_settings(cfg, work_dir, registry_file))

    schedule = cfg.cycle
    genesis = time.time() - (schedule.length * cfg.block_time_s - cfg.start_lead_s)
    LocalChain.create(
        work_dir / LOCAL_CHAIN_FILE,
        [SubnetParams(netuid=NETUID, weights_rate_limit=schedule.length // 2)],
        block_time_s=cfg.block_time_s,
        genesis_time=genesis,
    )
    chain = LocalChain(work_dir / LOCAL_CHAIN_FILE, NETUID)
    roles = [("validator", i, None) for i in range(cfg.validators)]
    roles += [("miner", i, s) for i, s in enumerate(cfg.strategies())]
    nodes, wallets = [], {}
    for role, index, strategy in roles:
        name = f"{role}-{index}"
        wallets[name] = _wallet(work_dir, name)
        hotkey = wallets[name].hotkey.ss58_address
        uid = chain.register(hotkey, coldkey=wallets[name].coldkeypub.ss58_address)
        if role == "validator":
            chain.add_stake(hotkey, VALIDATOR_STAKE * (cfg.validators - index))
        flags = _flags(role, index, strategy)
        nodes.append(
            Node(name=name, role=role, hotkey=hotkey, uid=uid, strategy=strategy, flags=flags)
        )
    published = publish_initial_model(
        model,
        result.selection.registry,
        shards_dir=work_dir / "init" / "shards",
        hub=LocalHub(work_dir / "hub"),
        chain=chain,
        wallet=wallets["validator-0"],
        repo_id=MODEL_REPO,
        cycle=schedule.cycle_of(chain.current_block()),
    )
    layout = Layout(
        work_dir=work_dir,
        settings_file=work_dir / "settings.yaml",
        registry_file=registry_file,
        first_cycle=published.cycle + 1,
        init_seconds=init_seconds,
        loss_before_warmup=result.loss_before,
        loss_after_warmup=result.loss_after,
        nodes=nodes,
    )
    atomic_write_text(work_dir / LAYOUT_FILE, layout.model_dump_json(indent=1))
    return layout

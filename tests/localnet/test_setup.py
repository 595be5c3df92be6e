"""The set-up step alone: a work dir any node can start from, with the initial model published
by the validator every node will follow, and cycle 1 starting `start_lead_s` later."""

import time
from pathlib import Path

import pytest
import yaml

from blockzero.chain.local_chain import LocalChain
from blockzero.connect import open_chain, open_wallet
from blockzero.global_model import canonical_model
from blockzero.localnet.config import LocalnetConfig
from blockzero.localnet.setup import MARKER_FILE, NETUID, prepare_work_dir, setup
from blockzero.miner.cheats import Strategy
from blockzero.protocol.expert_groups import load_registry
from blockzero.settings import load_protocol_config, load_settings


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    cfg = LocalnetConfig(
        miners=3,
        validators=2,
        cheaters=2,
        cheats=[Strategy.NOISE, Strategy.COPY],
        work_dir=tmp_path_factory.mktemp("net"),
        warmup_steps=2,
        profile_sequences=8,
        heldout_sequences=4,
    )
    return cfg, setup(cfg)


def test_nodes_registered_and_validators_staked(layout) -> None:
    _, net = layout
    chain = LocalChain(net.work_dir / "chain.db", NETUID)
    neurons = {n.hotkey: n for n in chain.metagraph().neurons}
    assert [n.name for n in net.nodes] == [
        "validator-0",
        "validator-1",
        "miner-0",
        "miner-1",
        "miner-2",
    ]
    assert all(neurons[n.hotkey].uid == n.uid for n in net.nodes)
    v0, v1 = (neurons[v.hotkey] for v in net.validators)
    assert v0.stake > v1.stake >= 1000 and v0.validator_permit and v1.validator_permit
    assert all(neurons[m.hotkey].stake == 0 for m in net.miners)
    assert [m.strategy for m in net.miners] == [Strategy.HONEST, Strategy.NOISE, Strategy.COPY]


def test_initial_model_is_canonical_before_cycle_one(layout) -> None:
    cfg, net = layout
    chain = LocalChain(net.work_dir / "chain.db", NETUID)
    schedule = cfg.cycle
    assert net.first_cycle == 1
    canon = canonical_model(chain, at_block=chain.current_block())
    assert canon is not None and canon.publisher == net.validators[0].hotkey
    until_cycle_one = schedule.cycle_start(1) * cfg.block_time_s + chain.genesis_time - time.time()
    assert 0 < until_cycle_one <= cfg.start_lead_s


def test_every_node_can_load_its_settings(layout) -> None:
    cfg, net = layout
    registry = load_registry(net.registry_file)
    assert [g.domain for g in registry.groups] == ["code", "prose", "math"]
    for node in net.nodes:
        settings = load_settings(["--config", str(net.settings_file), *node.flags])
        assert open_wallet(settings).hotkey.ss58_address == node.hotkey
        assert open_chain(settings).uid(node.hotkey) == node.uid
        assert load_protocol_config(settings).cycle == cfg.cycle
        assert settings.miner.registry == net.registry_file
    v0, v1 = (load_settings(["--config", str(net.settings_file), *v.flags]) for v in net.validators)
    assert v0.validator.model_repo is not None and v1.validator.model_repo is None
    assert v0.validator.evidence_repo != v1.validator.evidence_repo
    noise = load_settings(["--config", str(net.settings_file), *net.miners[1].flags])
    assert noise.miner.strategy == "noise"


def test_work_dir_reuse(tmp_path: Path) -> None:
    ours = tmp_path / "ours"
    prepare_work_dir(ours)
    (ours / "chain.db").write_text("old run")
    prepare_work_dir(ours)
    assert sorted(p.name for p in ours.iterdir()) == [MARKER_FILE]
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("keep me")
    with pytest.raises(FileExistsError, match="holds no localnet"):
        prepare_work_dir(theirs)
    assert (theirs / "thesis.tex").exists()


def test_config_rejects_more_cheaters_than_miners() -> None:
    with pytest.raises(ValueError, match="cheaters"):
        LocalnetConfig(miners=2, cheaters=3)


def test_shipped_preset_equals_the_defaults() -> None:
    preset = Path(__file__).resolve().parents[2] / "configs" / "localnet.yaml"
    assert LocalnetConfig.model_validate(yaml.safe_load(preset.read_text())) == LocalnetConfig()

"""`blockzero owner ...` on a tiny run: profile, select, and init-model published to a local
chain and hub that a node can then find, fetch, verify and assemble."""

import json
from pathlib import Path

import bittensor as bt
import pytest
import torch
from typer.testing import CliRunner

from blockzero.chain.local_chain import LocalChain
from blockzero.chain.local_schema import SubnetParams
from blockzero.cli.owner import app
from blockzero.global_model import ModelCache, canonical_model
from blockzero.hub.local_hub import LocalHub
from blockzero.model.loading import ModelSpec, load_model
from blockzero.model.shards import read_model_files
from blockzero.protocol.expert_groups import load_registry

ROOT = Path(__file__).resolve().parents[2]
TINY_MODEL = str(ROOT / "configs" / "models" / "tiny-qwen3-moe.yaml")
LOCAL_DATA = str(ROOT / "configs" / "data" / "local.yaml")

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_profile_then_select(tmp_path):
    profiles = tmp_path / "profiles"
    out = invoke(
        "profile-experts",
        "--model",
        TINY_MODEL,
        "--data",
        LOCAL_DATA,
        "--out",
        str(profiles),
        "--domain",
        "math",
        "--domain",
        "prose",
        "--num-sequences",
        "4",
        "--device",
        "cpu",
        "--json",
    )
    assert set(json.loads(out.stdout)) == {"math", "prose", "general"}
    assert {p.name for p in profiles.iterdir()} == {"math.json", "prose.json", "general.json"}

    registry = tmp_path / "groups.yaml"
    out = invoke(
        "select-experts",
        "--profiles",
        str(profiles),
        "--out",
        str(registry),
        "--num-general",
        "2",
        "--general-weight",
        "0.5",
    )
    assert "share of each domain's routing slots" in " ".join(out.output.split())
    reg = load_registry(registry)
    assert [g.name for g in reg.groups] == ["math", "prose"]
    assert all(g.size(0) == 7 for g in reg.groups)
    report = json.loads(registry.with_suffix(".selection.json").read_text())
    assert set(report["groups"][0]["coverage"]) == {"math", "prose"}
    assert registry.with_suffix(".heatmap.png").read_bytes()[:4] == b"\x89PNG"


def test_select_refuses_groups_no_larger_than_top_k(tmp_path):
    profiles = tmp_path / "profiles"
    invoke(
        "profile-experts",
        "--model",
        TINY_MODEL,
        "--data",
        LOCAL_DATA,
        "--out",
        str(profiles),
        "--domain",
        "math",
        "--num-sequences",
        "2",
        "--device",
        "cpu",
        "--json",
    )
    result = runner.invoke(
        app,
        [
            "select-experts",
            "--profiles",
            str(profiles),
            "--out",
            str(tmp_path / "r.yaml"),
            "--group-size",
            "2",
        ],
    )
    assert result.exit_code == 1
    assert "must exceed top_k=2" in result.output


@pytest.fixture
def owner_wallet(tmp_path, monkeypatch) -> bt.Wallet:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    wallet = bt.Wallet(name="owner", hotkey="default", path=str(tmp_path / "wallets"))
    wallet.create_new_coldkey(use_password=False, overwrite=True, suppress=True)
    wallet.create_new_hotkey(use_password=False, overwrite=True, suppress=True)
    return wallet


def test_init_model_writes_and_publishes_a_fetchable_model(tmp_path, owner_wallet):
    work = tmp_path / "work"
    work.mkdir()
    LocalChain.create(work / "chain.db", [SubnetParams(netuid=1)])
    chain = LocalChain(work / "chain.db", 1)
    chain.register(owner_wallet.hotkey.ss58_address, coldkey=owner_wallet.coldkeypub.ss58_address)
    chain.add_stake(owner_wallet.hotkey.ss58_address, 100.0)
    out_dir = tmp_path / "init"
    out = invoke(
        "init-model",
        "--model",
        TINY_MODEL,
        "--data",
        LOCAL_DATA,
        "--out",
        str(out_dir),
        "--warmup-steps",
        "2",
        "--batch-size",
        "4",
        "--profile-sequences",
        "4",
        "--device",
        "cpu",
        "--json",
        "--publish",
        "--repo",
        "owner/global-model",
        "--network",
        "local",
        "--paths.work_dir",
        str(work),
        "--hub.local_root",
        str(tmp_path / "hub"),
        "--wallet.name",
        "owner",
        "--wallet.path",
        str(tmp_path / "wallets"),
    )
    result = json.loads(out.stdout)
    assert result["warmup_steps"] == 2
    assert set(result["loss_after"]) == {"code", "prose", "math"}
    registry = load_registry(out_dir / "registry.yaml")
    assert {p.name for p in (out_dir / "profiles").iterdir()} == {
        "code.json",
        "prose.json",
        "math.json",
        "general.json",
    }

    canon = canonical_model(
        chain, at_block=chain.current_block(), publisher=owner_wallet.hotkey.ss58_address
    )
    assert canon is not None and canon.revision == result["published"]["revision"]
    cache = ModelCache(tmp_path / "cache")
    manifest, paths = cache.fetch_all(LocalHub(tmp_path / "hub"), canon)
    fetched = read_model_files(paths, manifest, registry)
    saved = load_model(ModelSpec(pretrained=str(out_dir / "model")))
    for name, tensor in saved.state_dict().items():
        torch.testing.assert_close(fetched.state_dict()[name], tensor, rtol=0, atol=0, msg=name)

"""Shared fixtures: the machine is isolated (no network, no user caches), the tiny model and the
local domains are built once per session, never downloaded."""

import copy
from collections.abc import Callable
from pathlib import Path

import bittensor as bt
import pytest
import torch

from blockzero.data.domains import DomainCorpus, load_data_config, load_domains
from blockzero.data.tokenizer import byte_tokenizer
from blockzero.model.families import MoEAdapter
from blockzero.model.loading import build_model, read_model_config
from blockzero.model.warmup import warm_up
from blockzero.protocol.expert_groups import ExpertGroupRegistry, contiguous_registry

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = ROOT / "configs" / "models" / "tiny-qwen3-moe.yaml"
LOCAL_DATA = ROOT / "configs" / "data" / "local.yaml"
WARMUP_STEPS = 150

torch.set_num_threads(2)


_BTCLI_FILES = {
    "BTCLI_CONFIG": "btcli.json",
    "BTCLI_TOKEN_SYMBOLS_CACHE": "btcli_token_symbols.json",
    "BTCLI_SUBNET_NAMES_CACHE": "btcli_subnet_names.json",
    "BTCLI_PROXIES_PATH": "btcli_proxies.json",
    "BTCLI_ADDRESSES_PATH": "btcli_addresses.json",
    "BTCLI_MULTISIGS_PATH": "btcli_multisigs.json",
    "BTCLI_MULTISIG_CACHE": "btcli_multisig_cache.json",
}


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Send HOME, every Hugging Face and bittensor cache and config path to a temp dir, and
    keep the Hugging Face libraries offline, for this process and its children."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(home / ".cache" / "huggingface"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(home / ".cache" / "datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    for var, name in _BTCLI_FILES.items():
        monkeypatch.setenv(var, str(home / ".bittensor" / name))
    monkeypatch.setenv("BITTENSOR_RUNTIME_CACHE_DIR", str(home / ".bittensor" / "runtime"))
    return home


@pytest.fixture
def wallet_dir(tmp_path: Path) -> Path:
    return tmp_path / "wallets"


@pytest.fixture
def make_wallet(wallet_dir: Path) -> Callable[[str], bt.Wallet]:
    """Create an unencrypted coldkey + hotkey wallet under the temp wallet dir."""

    def make(name: str) -> bt.Wallet:
        wallet = bt.Wallet(name=name, hotkey="default", path=str(wallet_dir))
        wallet.create_new_coldkey(use_password=False, overwrite=True, suppress=True)
        wallet.create_new_hotkey(use_password=False, overwrite=True, suppress=True)
        return wallet

    return make


@pytest.fixture(scope="session")
def tiny_config():
    return read_model_config(TINY_MODEL)


@pytest.fixture(scope="session")
def corpora() -> dict[str, DomainCorpus]:
    return load_domains(load_data_config(LOCAL_DATA), byte_tokenizer())


@pytest.fixture(scope="session")
def warm_state(tiny_config, corpora) -> dict[str, torch.Tensor]:
    """Weights of the tiny model after a brief centralized warm-up on all local domains."""
    model = build_model(tiny_config, seed=0)
    warm_up(model, corpora, steps=WARMUP_STEPS, batch_size=16, seed=0)
    return copy.deepcopy(model.state_dict())


@pytest.fixture
def warm_model(tiny_config, warm_state):
    """A fresh copy of the warmed-up tiny model for one test to modify."""
    model = build_model(tiny_config, seed=0)
    model.load_state_dict(warm_state)
    return model.eval()


@pytest.fixture(scope="session")
def registry(tiny_config) -> ExpertGroupRegistry:
    model = build_model(tiny_config, seed=0)
    adapter = MoEAdapter(model)
    return contiguous_registry(
        num_experts=adapter.num_experts,
        top_k=adapter.top_k,
        moe_layers=adapter.moe_layer_indices,
        domains=["code", "prose", "math", "spare"],
    )

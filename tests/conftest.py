"""Shared fixtures: the machine is isolated (no network, no user caches), the tiny model and the
local domains are built once per session, never downloaded."""

import copy
from pathlib import Path

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


@pytest.fixture(autouse=True)
def _isolated_machine(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path_factory.mktemp("hf-home")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(home / "datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


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

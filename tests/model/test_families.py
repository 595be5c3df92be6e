import pytest
from transformers import AutoConfig, AutoModelForCausalLM

from blockzero.model.families import MoEAdapter, UnsupportedModelError
from blockzero.model.loading import ModelSpec, build_model, load_model, read_model_config

SMALL = dict(
    vocab_size=64,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=2,
    num_experts_per_tok=2,
)


@pytest.mark.parametrize(
    ("family", "extra", "count_field"),
    [
        ("qwen3_moe", {"num_experts": 8, "moe_intermediate_size": 16}, "num_experts"),
        ("olmoe", {"num_experts": 8}, "num_experts"),
        ("mixtral", {"num_local_experts": 8}, "num_local_experts"),
        ("qwen2_moe", {"num_experts": 8, "moe_intermediate_size": 16}, "num_experts"),
    ],
)
def test_adapter_finds_fused_experts_and_router(family, extra, count_field):
    model = build_model(AutoConfig.for_model(family, **SMALL, **extra))
    adapter = MoEAdapter(model)
    assert adapter.family.expert_count_field == count_field
    assert adapter.num_experts == 8
    assert adapter.top_k == 2
    assert adapter.moe_layer_indices == (0, 1)
    layer = adapter.layer(1)
    assert layer.experts.gate_up_proj.shape[0] == 8
    assert layer.router.weight.shape == (8, 32)
    names = dict(model.named_parameters())
    assert layer.expert_tensor_name("down_proj") in names


def test_unsupported_family_is_a_clear_error():
    config = AutoConfig.for_model(
        "llama", **{k: v for k, v in SMALL.items() if k != "num_experts_per_tok"}
    )
    dense = AutoModelForCausalLM.from_config(config)
    with pytest.raises(UnsupportedModelError, match="'llama' is not supported"):
        MoEAdapter(dense)


def test_config_file_with_unknown_family_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("family: gpt2\nconfig: {}\n")
    with pytest.raises(UnsupportedModelError, match="gpt2"):
        read_model_config(bad)


def test_spec_needs_exactly_one_source(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        ModelSpec()
    with pytest.raises(ValueError, match="exactly one"):
        ModelSpec(config_file=tmp_path / "a.yaml", pretrained="x/y")


def test_pretrained_loads_from_a_local_directory_without_network(tmp_path, tiny_config):
    model = build_model(tiny_config, seed=3)
    model.save_pretrained(tmp_path / "ckpt")
    loaded = load_model(ModelSpec(pretrained=str(tmp_path / "ckpt")))
    for (name, a), (_, b) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert a.equal(b), name


def test_same_seed_builds_the_same_model(tiny_config):
    a = build_model(tiny_config, seed=7).state_dict()
    b = build_model(tiny_config, seed=7).state_dict()
    assert all(a[k].equal(b[k]) for k in a)

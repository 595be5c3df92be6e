"""The expert-group registry is validated on load; each problem is named."""

import pytest
import yaml

from blockzero.protocol.expert_groups import (
    RegistryError,
    contiguous_registry,
    load_registry,
    parse_registry,
    save_registry,
)

ROOT_CONFIG = "configs/groups/tiny-qwen3-moe.yaml"


def raw(**overrides) -> dict:
    base = {
        "version": 1,
        "num_experts": 8,
        "top_k": 2,
        "moe_layers": [0, 1],
        "groups": [
            {"id": 0, "name": "code", "domain": "code", "experts": {0: [0, 1, 2], 1: [0, 1, 2]}},
            {"id": 1, "name": "math", "domain": "math", "experts": {0: [3, 4, 5], 1: [5, 6, 7]}},
        ],
    }
    base.update(overrides)
    return base


def test_valid_registry_round_trips(tmp_path):
    reg = parse_registry(raw())
    save_registry(reg, tmp_path / "groups.yaml")
    assert load_registry(tmp_path / "groups.yaml") == reg
    assert reg.group(1).experts[1] == (5, 6, 7)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda r: r["groups"][1]["experts"].update({0: [2, 3, 4]}),
            "expert 2 of layer 0 is in both 'code' and 'math'",
        ),
        (lambda r: r["groups"][1]["experts"].update({1: [5, 6, 8]}), "expert 8 out of range"),
        (lambda r: r["groups"][1]["experts"].update({1: [5, 6]}), "needs more than top_k=2"),
        (lambda r: r["groups"][1]["experts"].pop(1), "has no experts for MoE layer 1"),
        (lambda r: r["groups"][1].update({"id": 5}), "group ids must be 0..1"),
        (lambda r: r["groups"][1].update({"name": "code"}), "names must be unique"),
        (lambda r: r.update({"version": 2}), "version 2"),
        (lambda r: r["groups"][0]["experts"].update({3: [0, 1, 2]}), "not MoE layers"),
    ],
)
def test_bad_registry_names_the_problem(mutate, message):
    bad = raw()
    mutate(bad)
    with pytest.raises(RegistryError, match=message):
        parse_registry(bad)


def test_unreadable_file_is_a_registry_error(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(raw(num_experts="many")))
    with pytest.raises(RegistryError, match="invalid expert-group registry"):
        load_registry(path)
    with pytest.raises(RegistryError, match="cannot read"):
        load_registry(tmp_path / "absent.yaml")


def test_registry_refuses_a_model_of_another_shape():
    reg = parse_registry(raw())
    reg.check_model(num_experts=8, top_k=2, moe_layers=(0, 1))
    with pytest.raises(RegistryError, match="model has"):
        reg.check_model(num_experts=16, top_k=2, moe_layers=(0, 1))


def test_contiguous_registry_splits_evenly():
    reg = contiguous_registry(
        num_experts=16, top_k=2, moe_layers=(0, 1), domains=["a", "b", "c", "d"]
    )
    assert [g.experts[1] for g in reg.groups] == [
        (0, 1, 2, 3),
        (4, 5, 6, 7),
        (8, 9, 10, 11),
        (12, 13, 14, 15),
    ]
    three = contiguous_registry(
        num_experts=16, top_k=2, moe_layers=(0,), domains=["a", "b", "c"], group_size=4
    )
    assert three.ungrouped(0) == (12, 13, 14, 15)
    with pytest.raises(RegistryError, match="do not split evenly"):
        contiguous_registry(num_experts=16, top_k=2, moe_layers=(0,), domains=["a", "b", "c"])


def test_shipped_registry_fits_the_tiny_model(tiny_config):
    from blockzero.model.families import MoEAdapter
    from blockzero.model.loading import build_model

    adapter = MoEAdapter(build_model(tiny_config))
    reg = load_registry(ROOT_CONFIG)
    reg.check_model(
        num_experts=adapter.num_experts, top_k=adapter.top_k, moe_layers=adapter.moe_layer_indices
    )

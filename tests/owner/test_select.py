"""Group selection on the warmed-up tiny model, and the conflict rule on hand-made numbers."""

import pytest
import torch

from blockzero.owner.heatmap import save_heatmap
from blockzero.owner.profile import GENERAL
from blockzero.owner.select import (
    SelectionConfig,
    overlap_report,
    resolve_group_size,
    select_experts,
    select_layer,
)
from blockzero.protocol.expert_groups import load_registry, parse_registry, save_registry

CFG = SelectionConfig(num_general=2, general_weight=0.5)


@pytest.fixture(scope="module")
def selection(profiles):
    domains = {d: p for d, p in profiles.items() if d != GENERAL}
    return select_experts(domains, profiles[GENERAL], CFG)


def test_each_group_is_used_most_by_its_own_domain(selection):
    for report in selection.groups:
        others = {d: c for d, c in report.coverage.items() if d != report.domain}
        assert report.own == report.coverage[report.domain]
        assert all(report.own > c for c in others.values()), report


def test_the_general_experts_are_in_no_group(selection, profiles):
    general = profiles[GENERAL]
    for layer in general.moe_layers:
        top = set(general.frequency(layer).topk(CFG.num_general).indices.tolist())
        assert set(selection.general[layer]) == top
        for group in selection.registry.groups:
            assert not top & set(group.experts[layer]), (layer, group.name)


def test_groups_are_disjoint_equal_and_larger_than_top_k(selection):
    reg = selection.registry
    for layer in reg.moe_layers:
        sets = [set(g.experts[layer]) for g in reg.groups]
        assert sum(map(len, sets)) == len(set().union(*sets))
        assert all(len(s) == selection.group_size > reg.top_k for s in sets)
    # 16 experts minus 2 general, shared by 3 domains
    assert selection.group_size == (16 - 2) // 3


def test_registry_round_trips_and_validates(selection, tmp_path):
    path = tmp_path / "selected.yaml"
    save_registry(selection.registry, path)
    loaded = load_registry(path)
    assert loaded == selection.registry
    assert parse_registry(loaded.model_dump(mode="json")) == loaded
    assert [g.domain for g in loaded.groups] == ["code", "prose", "math"]


def test_overlap_report_is_in_the_json(selection, profiles):
    raw = selection.model_dump(mode="json")
    assert {g["name"] for g in raw["groups"]} == {"code", "prose", "math"}
    assert set(raw["groups"][0]["coverage"]) == {"code", "prose", "math"}
    domains = {d: p for d, p in profiles.items() if d != GENERAL}
    assert overlap_report(selection.registry, domains) == selection.groups


def test_contested_expert_goes_to_the_relatively_heavier_domain_and_the_other_refills():
    freqs = {
        "a": torch.tensor([0.0, 0.9, 0.5, 0.3, 0.2, 0.1]),
        "b": torch.tensor([0.0, 0.6, 0.1, 0.05, 0.2, 0.8]),
    }
    general = torch.tensor([2.0, 0.75, 0.3, 0.15, 0.1, 0.45])
    excluded, groups = select_layer(freqs, general, num_general=1, general_weight=0.0, group_size=2)
    assert excluded == (0,)
    # Both want expert 1; a uses it more (0.9 vs 0.6), so b refills with its best free one, 4.
    assert groups == {"a": (1, 2), "b": (4, 5)}


def test_group_size_must_exceed_top_k_and_fit():
    with pytest.raises(ValueError, match="exceed top_k"):
        resolve_group_size(SelectionConfig(group_size=2), num_experts=16, top_k=2, num_domains=3)
    with pytest.raises(ValueError, match="do not fit"):
        resolve_group_size(SelectionConfig(group_size=5), num_experts=16, top_k=2, num_domains=3)
    with pytest.raises(ValueError, match="exceed top_k"):
        resolve_group_size(SelectionConfig(num_general=8), num_experts=16, top_k=2, num_domains=3)


def test_heatmap_is_a_png(selection, profiles, tmp_path):
    path = tmp_path / "heatmap.png"
    save_heatmap(path, profiles, registry=selection.registry, general=selection.general)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

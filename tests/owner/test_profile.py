"""Expert profiles: what the router hooks record, checked against the model's own router outputs."""

import pytest
import torch

from blockzero.model.families import MoEAdapter
from blockzero.owner.profile import (
    GENERAL,
    combine_profiles,
    load_profile,
    profile_experts,
    save_profile,
)

SEQUENCES = 8


def test_frequencies_per_layer_sum_to_top_k(profiles):
    for profile in profiles.values():
        assert profile.num_tokens > 0
        for lp in profile.layers:
            assert sum(lp.frequency) == pytest.approx(profile.top_k, abs=1e-9), lp.layer
            # Routing weights are renormalised over the top-k, so each token's weights sum to 1.
            weight_per_token = sum(f * g for f, g in zip(lp.frequency, lp.mean_gate, strict=True))
            assert weight_per_token == pytest.approx(1.0, abs=1e-5), lp.layer
            assert all(0.0 <= g <= 1.0 for g in lp.mean_gate)


def test_hook_counts_match_the_router_logits(warm_model, corpora):
    batch = corpora["code"].train[:SEQUENCES]
    adapter = MoEAdapter(warm_model)
    hooks_before = [len(layer.router._forward_hooks) for layer in adapter.layers]
    profile = profile_experts(warm_model, batch, data="code", batch_size=3)
    assert [len(layer.router._forward_hooks) for layer in adapter.layers] == hooks_before
    with torch.no_grad():
        logits = warm_model(input_ids=batch, output_router_logits=True).router_logits
    for layer, layer_logits in zip(adapter.layers, logits, strict=True):
        chosen = layer_logits.topk(adapter.top_k, dim=-1).indices.reshape(-1)
        expected = torch.bincount(chosen, minlength=adapter.num_experts).tolist()
        assert list(profile.layer(layer.index).slot_counts) == expected


def test_general_profile_is_the_sum_of_the_domains(profiles, warm_model, corpora):
    assert profiles[GENERAL].num_tokens == sum(
        p.num_tokens for name, p in profiles.items() if name != GENERAL
    )
    parts = [corpora[d].train[:4] for d in ("code", "math")]
    together = profile_experts(warm_model, torch.cat(parts), data="mix")
    combined = combine_profiles(
        [profile_experts(warm_model, p, data=str(i)) for i, p in enumerate(parts)], data="mix"
    )
    for a, b in zip(together.layers, combined.layers, strict=True):
        assert a.slot_counts == b.slot_counts
        assert a.mean_gate == pytest.approx(b.mean_gate, abs=1e-6)


def test_profile_round_trips_through_json(profiles, tmp_path):
    path = tmp_path / "p" / "math.json"
    save_profile(profiles["math"], path)
    assert load_profile(path) == profiles["math"]


def test_a_profile_whose_slots_do_not_match_its_tokens_is_refused(profiles):
    raw = profiles["math"].model_dump()
    raw["num_tokens"] += 1
    with pytest.raises(ValueError, match="slots"):
        type(profiles["math"]).model_validate(raw)

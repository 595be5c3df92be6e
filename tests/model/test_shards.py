"""Splitting the global model into shards and assembling it again is exact and verified."""

import pytest
import torch

from blockzero.model.loading import build_model
from blockzero.model.shards import ManifestMismatch, read_model_dir, split_model, write_model_dir
from blockzero.protocol.expert_groups import parse_registry
from blockzero.protocol.manifest import MANIFEST_FILE, parse_manifest


def partial_registry(registry):
    """Groups that leave some experts unowned, as activation-selected groups do."""
    raw = registry.model_dump(mode="json")
    raw["groups"] = [
        {**g, "experts": {layer: ids[:3] for layer, ids in g["experts"].items()}}
        for g in raw["groups"][:3]
    ]
    return parse_registry(raw)


@pytest.mark.parametrize("covering", [True, False])
def test_write_then_read_is_bit_exact(tmp_path, tiny_config, registry, covering):
    reg = registry if covering else partial_registry(registry)
    model = build_model(tiny_config, seed=11)
    manifest = write_model_dir(tmp_path, model, reg, cycle=3)
    assert ("ungrouped.safetensors" in manifest.files) is (not covering)
    assert parse_manifest((tmp_path / MANIFEST_FILE).read_bytes()) == manifest
    loaded = read_model_dir(tmp_path, manifest, reg)
    expected = model.state_dict()
    for name, value in loaded.state_dict().items():
        assert value.equal(expected[name]), name


def test_group_shard_holds_exactly_the_group_rows(tiny_config, registry):
    model = build_model(tiny_config, seed=11)
    shards = split_model(model, registry)
    rows = shards["group-2"]["model.layers.1.mlp.experts.down_proj"]
    full = model.state_dict()["model.layers.1.mlp.experts.down_proj"]
    assert rows.equal(full[list(registry.group(2).experts[1])])
    assert not any("experts" in k for k in shards["shared"])


def test_tampered_shard_is_refused(tmp_path, tiny_config, registry):
    manifest = write_model_dir(tmp_path, build_model(tiny_config), registry, cycle=0)
    path = tmp_path / "group-1.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ManifestMismatch, match=r"group-1\.safetensors has sha256"):
        read_model_dir(tmp_path, manifest, registry)


def test_model_split_by_another_registry_is_refused(tmp_path, tiny_config, registry):
    manifest = write_model_dir(tmp_path, build_model(tiny_config), registry, cycle=0)
    with pytest.raises(ManifestMismatch, match="another expert-group registry"):
        read_model_dir(tmp_path, manifest, partial_registry(registry))


def test_bf16_shards_halve_the_bytes(tmp_path, tiny_config, registry):
    model = build_model(tiny_config)
    fp32 = write_model_dir(tmp_path / "a", model, registry, cycle=0)
    bf16 = write_model_dir(tmp_path / "b", model, registry, cycle=0, dtype=torch.bfloat16)
    ratio = bf16.files["group-0.safetensors"].bytes / fp32.files["group-0.safetensors"].bytes
    assert 0.49 < ratio < 0.51
    assert bf16.dtype == "bfloat16"

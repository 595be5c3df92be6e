"""Split the global model into shards and put it back together.

Shards: `shared` (everything that is not a routed-expert row: embeddings, attention, norms,
routers), one `group-<id>` per expert group (its rows of every fused expert tensor, under the
full-model tensor names, in registry order: the same layout as a submission), and `ungrouped`
(rows no group owns). A miner needs `shared` once and its group's shard every cycle; the
validator rewrites only the shards whose groups moved.
"""

import json
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel

from blockzero.atomic import atomic_path, atomic_write_text
from blockzero.delta.hashing import sha256_file
from blockzero.model.families import EXPERT_TENSORS, MoEAdapter
from blockzero.model.group_rows import GroupTensors, read_group_rows
from blockzero.model.loading import build_model
from blockzero.protocol.expert_groups import ExpertGroup, ExpertGroupRegistry
from blockzero.protocol.manifest import (
    CONFIG_FILE,
    MANIFEST_FILE,
    SHARED_SHARD,
    UNGROUPED_SHARD,
    FileEntry,
    ModelManifest,
    group_shard,
    shard_file,
)

Shards = dict[str, dict[str, torch.Tensor]]


class ManifestMismatch(ValueError):
    """A model file does not match the manifest that names it."""


def _ungrouped_group(registry: ExpertGroupRegistry) -> ExpertGroup | None:
    experts = {layer: registry.ungrouped(layer) for layer in registry.moe_layers}
    if not any(experts.values()):
        return None
    return ExpertGroup(
        id=len(registry.groups), name=UNGROUPED_SHARD, domain="none", experts=experts
    )


def _expert_tensor_names(adapter: MoEAdapter) -> set[str]:
    return {layer.expert_tensor_name(t) for layer in adapter.layers for t in EXPERT_TENSORS}


def split_model(model: PreTrainedModel, registry: ExpertGroupRegistry) -> Shards:
    adapter = MoEAdapter(model)
    registry.check_model(
        num_experts=adapter.num_experts, top_k=adapter.top_k, moe_layers=adapter.moe_layer_indices
    )
    fused = _expert_tensor_names(adapter)
    shards: Shards = {
        SHARED_SHARD: {
            k: v.detach().clone() for k, v in model.state_dict().items() if k not in fused
        }
    }
    for group in registry.groups:
        shards[group_shard(group.id)] = read_group_rows(adapter, group)
    rest = _ungrouped_group(registry)
    if rest is not None:
        shards[UNGROUPED_SHARD] = read_group_rows(adapter, rest)
    return shards


def assemble_model(
    config: PretrainedConfig, shards: Shards, registry: ExpertGroupRegistry
) -> PreTrainedModel:
    """Build the model from its config and fill every tensor from the shards; strict."""
    model = build_model(config)
    adapter = MoEAdapter(model)
    state = model.state_dict()
    missing = [
        k for k in state if k not in _expert_tensor_names(adapter) and k not in shards[SHARED_SHARD]
    ]
    if missing:
        raise ManifestMismatch(f"shared shard lacks {missing[:5]}")
    with torch.no_grad():
        for name, value in shards[SHARED_SHARD].items():
            state[name].copy_(value)
        owners = list(registry.groups)
        rest = _ungrouped_group(registry)
        if rest is not None:
            owners.append(rest)
        for owner in owners:
            rows = shards[UNGROUPED_SHARD if owner is rest else group_shard(owner.id)]
            for layer in adapter.layers:
                ids = torch.tensor(owner.experts[layer.index], dtype=torch.long)
                for t in EXPERT_TENSORS:
                    state[layer.expert_tensor_name(t)].index_copy_(
                        0,
                        ids,
                        rows[layer.expert_tensor_name(t)].to(
                            state[layer.expert_tensor_name(t)].dtype
                        ),
                    )
    return model


def write_shard(
    path: Path, tensors: GroupTensors | dict[str, torch.Tensor], dtype: torch.dtype
) -> FileEntry:
    with atomic_path(path) as tmp:
        save_file({k: v.to(dtype).contiguous() for k, v in sorted(tensors.items())}, str(tmp))
    return FileEntry(sha256=sha256_file(path), bytes=path.stat().st_size)


def write_model_dir(
    out_dir: Path,
    model: PreTrainedModel,
    registry: ExpertGroupRegistry,
    *,
    cycle: int,
    parent_revision: str | None = None,
    dtype: torch.dtype = torch.float32,
) -> ModelManifest:
    """Write config, every shard and the manifest to `out_dir`, each file atomically."""
    out_dir = Path(out_dir)
    files: dict[str, FileEntry] = {}
    atomic_write_text(out_dir / CONFIG_FILE, model.config.to_json_string(use_diff=False))
    files[CONFIG_FILE] = FileEntry(
        sha256=sha256_file(out_dir / CONFIG_FILE), bytes=(out_dir / CONFIG_FILE).stat().st_size
    )
    for shard, tensors in split_model(model, registry).items():
        files[shard_file(shard)] = write_shard(out_dir / shard_file(shard), tensors, dtype)
    manifest = ModelManifest(
        cycle=cycle,
        parent_revision=parent_revision,
        registry_sha256=registry.sha256(),
        dtype=str(dtype).removeprefix("torch."),
        files=files,
    )
    atomic_write_text(out_dir / MANIFEST_FILE, manifest.canonical_json().decode())
    return manifest


def verify_file(path: Path, entry: FileEntry) -> None:
    size = path.stat().st_size
    if size != entry.bytes:
        raise ManifestMismatch(f"{path.name} is {size} bytes, manifest says {entry.bytes}")
    digest = sha256_file(path)
    if digest != entry.sha256:
        raise ManifestMismatch(f"{path.name} has sha256 {digest}, manifest says {entry.sha256}")


def read_model_files(
    paths: Mapping[str, Path], manifest: ModelManifest, registry: ExpertGroupRegistry
) -> PreTrainedModel:
    """Verify every file the manifest names against it, then assemble the model (float32).

    `paths` maps each manifest file name to where it lies (a model directory, or a cache of
    content-addressed blobs)."""
    if manifest.registry_sha256 != registry.sha256():
        raise ManifestMismatch("the model was split with another expert-group registry")
    missing = sorted(manifest.files.keys() - paths.keys())
    if missing:
        raise ManifestMismatch(f"files named by the manifest are missing: {missing}")
    for name, entry in manifest.files.items():
        verify_file(Path(paths[name]), entry)
    raw_config = json.loads(Path(paths[CONFIG_FILE]).read_text())
    config = AutoConfig.for_model(raw_config.pop("model_type"), **raw_config)
    shards = {
        name.removesuffix(".safetensors"): {
            k: v.float() for k, v in load_file(str(paths[name])).items()
        }
        for name in manifest.files
        if name.endswith(".safetensors")
    }
    return assemble_model(config, shards, registry)


def read_model_dir(
    model_dir: Path, manifest: ModelManifest, registry: ExpertGroupRegistry
) -> PreTrainedModel:
    return read_model_files(
        {name: Path(model_dir) / name for name in manifest.files}, manifest, registry
    )

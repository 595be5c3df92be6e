"""The core end to end on one machine, no chain and no hub: warm up the tiny model, train every
expert group on its domain, write and verify each submission, apply the DiLoCo outer step, and
compare held-out losses. A quick check that an installation works."""

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from blockzero.data.batches import train_batches
from blockzero.data.domains import load_data_config, load_domains
from blockzero.data.tokenizer import load_tokenizer
from blockzero.delta.outer import OuterConfig, outer_step
from blockzero.delta.pseudo_gradient import pseudo_gradient
from blockzero.delta.submission import (
    Expectation,
    SubmissionMeta,
    read_submission,
    write_submission,
)
from blockzero.model.evaluation import mean_loss
from blockzero.model.families import MoEAdapter
from blockzero.model.group_rows import group_tensor_shapes, read_group_rows, write_group_rows
from blockzero.model.group_training import prepare_group_training
from blockzero.model.loading import build_model, read_model_config
from blockzero.model.training import InnerConfig, train
from blockzero.model.warmup import warm_up
from blockzero.protocol.expert_groups import load_registry


@dataclass(frozen=True)
class SmokeReport:
    losses_before: dict[str, float]
    losses_after: dict[str, float]
    submission_bytes: dict[str, int]


def run_smoke(
    *,
    model_config: Path,
    data_config: Path,
    registry_path: Path,
    out_dir: Path,
    warmup_steps: int,
    inner_steps: int,
    num_eval: int = 64,
    log: Callable[[str], None] = print,
) -> SmokeReport:
    corpora = load_domains(
        load_data_config(data_config), load_tokenizer(load_data_config(data_config).tokenizer)
    )
    config = read_model_config(model_config)
    model = build_model(config)
    registry = load_registry(registry_path)
    adapter = MoEAdapter(model)
    registry.check_model(
        num_experts=adapter.num_experts, top_k=adapter.top_k, moe_layers=adapter.moe_layer_indices
    )
    log(f"warming up the tiny model for {warmup_steps} steps on {sorted(corpora)}")
    warm_up(model, corpora, steps=warmup_steps, progress=True)
    warm = copy.deepcopy(model.state_dict())
    held = {d: c.held_out[:num_eval] for d, c in corpora.items()}
    before = {d: mean_loss(model, s) for d, s in held.items()}
    sizes: dict[str, int] = {}
    for group in registry.groups:
        if group.domain not in corpora:
            continue
        miner = build_model(config)
        miner.load_state_dict(warm)
        wrapped = prepare_group_training(miner, group)
        start = wrapped.group_tensors()
        report = train(
            wrapped.model,
            wrapped.trainable_parameters(),
            train_batches(corpora[group.domain].train, batch_size=16, seed=group.id),
            InnerConfig(),
            max_steps=inner_steps,
            progress=True,
            description=f"group {group.name}",
        )
        meta = SubmissionMeta(
            base_revision="smoke", cycle=0, group=group.id, hotkey="smoke", tokens=report.tokens
        )
        path = write_submission(
            out_dir / f"group-{group.id}.safetensors",
            pseudo_gradient(start, wrapped.group_tensors()),
            meta,
        )
        expectation = Expectation(
            shapes=group_tensor_shapes(adapter, group), meta=meta, max_bytes=1 << 30, max_norm=1e3
        )
        delta, _ = read_submission(path, expectation)
        rows = read_group_rows(adapter, group)
        outer_step(rows, delta, {}, OuterConfig())
        write_group_rows(adapter, group, rows)
        sizes[group.name] = path.stat().st_size
        log(
            f"group {group.name}: loss {report.loss_start:.3f} -> {report.loss_end:.3f}, {path.stat().st_size} bytes"
        )
    with torch.no_grad():
        after = {d: mean_loss(model, s) for d, s in held.items()}
    return SmokeReport(losses_before=before, losses_after=after, submission_bytes=sizes)

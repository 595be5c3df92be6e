"""Create the initial global model and its expert groups in one output directory.

The model is a pretrained checkpoint or the tiny config warmed up briefly on the local domains
(a fresh MoE routes at random, so there is nothing to select until its experts specialize).
Then every domain is profiled and the groups are selected from those profiles, so the registry
always matches the weights it was chosen on. Layout of `out_dir`:

    model/           the model (`save_pretrained`, safetensors), loadable with `--model out/model`
    profiles/        one ExpertProfile JSON per domain, plus general.json (their mixture)
    registry.yaml    the selected expert-group registry
    selection.json   the selection with its coverage / overlap report
    heatmap.png      domain x expert activation per MoE layer
"""

import time
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field
from transformers import PreTrainedModel

from blockzero.atomic import atomic_write_text
from blockzero.data.domains import DomainCorpus, load_data_config, load_domains
from blockzero.data.tokenizer import load_tokenizer
from blockzero.model.evaluation import mean_loss
from blockzero.model.loading import ModelSpec, load_model
from blockzero.model.training import InnerConfig
from blockzero.model.warmup import warm_up
from blockzero.owner.heatmap import save_heatmap
from blockzero.owner.profile import GENERAL, ExpertProfile, profile_domains, save_profile
from blockzero.owner.select import Selection, SelectionConfig, select_experts
from blockzero.protocol.expert_groups import save_registry

MODEL_DIR = "model"
PROFILES_DIR = "profiles"
REGISTRY_FILE = "registry.yaml"
SELECTION_FILE = "selection.json"
HEATMAP_FILE = "heatmap.png"


class InitConfig(BaseModel):
    """`warmup_steps` of centralized AdamW on all domains (0 keeps a pretrained model as is);
    `profile_sequences` per domain decide the groups; `eval_sequences` per domain measure the
    held-out loss before and after the warm-up."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelSpec
    data: Path
    warmup_steps: int = Field(300, ge=0)
    batch_size: int = Field(16, gt=0)
    lr: float = Field(3e-3, gt=0)
    seed: int = 0
    profile_sequences: int = Field(128, gt=0)
    eval_sequences: int = Field(64, gt=0)
    selection: SelectionConfig = SelectionConfig()


class InitResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    out_dir: Path
    warmup_steps: int
    warmup_seconds: float
    loss_before: dict[str, float]
    loss_after: dict[str, float]
    selection: Selection


def held_out_losses(
    model: torch.nn.Module,
    corpora: dict[str, DomainCorpus],
    *,
    num_sequences: int,
    device: torch.device | str,
) -> dict[str, float]:
    return {
        name: mean_loss(model, c.held_out[:num_sequences], device=device)
        for name, c in corpora.items()
    }


def write_selection(
    out_dir: Path, selection: Selection, profiles: dict[str, ExpertProfile]
) -> None:
    """Registry, selection report and heatmap, side by side in `out_dir`."""
    out_dir = Path(out_dir)
    save_registry(selection.registry, out_dir / REGISTRY_FILE)
    atomic_write_text(out_dir / SELECTION_FILE, selection.model_dump_json(indent=1))
    save_heatmap(
        out_dir / HEATMAP_FILE,
        profiles,
        registry=selection.registry,
        general=selection.general,
    )


def init_model(
    cfg: InitConfig,
    out_dir: Path,
    *,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> tuple[PreTrainedModel, InitResult]:
    """Build (and warm up) the model, select its groups, write everything to `out_dir`."""
    out_dir = Path(out_dir)
    data_cfg = load_data_config(cfg.data)
    corpora = load_domains(data_cfg, load_tokenizer(data_cfg.tokenizer))
    model = load_model(cfg.model).to(device)
    before = held_out_losses(model, corpora, num_sequences=cfg.eval_sequences, device=device)
    start = time.monotonic()
    if cfg.warmup_steps:
        warm_up(
            model,
            corpora,
            steps=cfg.warmup_steps,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            cfg=InnerConfig(lr=cfg.lr),
            device=device,
            progress=progress,
        )
        model.requires_grad_(False)
    seconds = time.monotonic() - start
    after = held_out_losses(model, corpora, num_sequences=cfg.eval_sequences, device=device)
    profiles = profile_domains(
        model,
        corpora,
        num_sequences=cfg.profile_sequences,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        device=device,
        progress=progress,
    )
    domains = {name: p for name, p in profiles.items() if name != GENERAL}
    selection = select_experts(domains, profiles[GENERAL], cfg.selection)
    model.save_pretrained(out_dir / MODEL_DIR)
    for name, profile in profiles.items():
        save_profile(profile, out_dir / PROFILES_DIR / f"{name}.json")
    write_selection(out_dir, selection, profiles)
    return model, InitResult(
        out_dir=out_dir,
        warmup_steps=cfg.warmup_steps,
        warmup_seconds=seconds,
        loss_before=before,
        loss_after=after,
        selection=selection,
    )

"""The data configuration and per-domain corpora, split and packed."""

from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from pydantic import BaseModel, ConfigDict
from transformers import PreTrainedTokenizerBase

from blockzero.data.batches import pack_documents
from blockzero.data.sources import Source, load_documents
from blockzero.data.split import split_documents


class DataConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    domains: dict[str, Source]
    seq_len: int = 128
    held_out_fraction: float = 0.1
    split_salt: str = "blockzero-v1"
    tokenizer: str | None = None


@dataclass(frozen=True)
class DomainCorpus:
    name: str
    train: torch.Tensor
    held_out: torch.Tensor


def load_data_config(path: Path) -> DataConfig:
    return DataConfig.model_validate(yaml.safe_load(Path(path).read_text()))


def load_domain(name: str, cfg: DataConfig, tokenizer: PreTrainedTokenizerBase) -> DomainCorpus:
    if name not in cfg.domains:
        raise KeyError(f"no domain {name!r} in the data config (have {sorted(cfg.domains)})")
    train, held = split_documents(
        load_documents(cfg.domains[name]),
        held_out_fraction=cfg.held_out_fraction,
        salt=cfg.split_salt,
    )
    return DomainCorpus(
        name=name,
        train=pack_documents(train, tokenizer, cfg.seq_len),
        held_out=pack_documents(held, tokenizer, cfg.seq_len),
    )


def load_domains(cfg: DataConfig, tokenizer: PreTrainedTokenizerBase) -> dict[str, DomainCorpus]:
    return {name: load_domain(name, cfg, tokenizer) for name in cfg.domains}

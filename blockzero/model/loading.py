"""Build a tiny MoE from a config file, or load a pretrained one from a directory or Hub id."""

from pathlib import Path
from typing import Literal

import torch
import yaml
from pydantic import BaseModel, ConfigDict, model_validator
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

from blockzero.model.families import FAMILIES, MoEAdapter, UnsupportedModelError

DType = Literal["float32", "bfloat16", "float16"]


class ModelSpec(BaseModel):
    """Where the model comes from: exactly one of a config file (tiny, built in-process) or a
    pretrained directory / Hub id. Hub ids are only fetched when `local_files_only` is false."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    config_file: Path | None = None
    pretrained: str | None = None
    dtype: DType = "float32"
    local_files_only: bool = True
    seed: int = 0

    @model_validator(mode="after")
    def _one_source(self) -> "ModelSpec":
        if (self.config_file is None) == (self.pretrained is None):
            raise ValueError("give exactly one of `config_file` or `pretrained`")
        return self


def torch_dtype(name: DType) -> torch.dtype:
    return getattr(torch, name)


def read_model_config(path: Path):
    """Read a `configs/models/*.yaml` file into a transformers config of its family."""
    raw = yaml.safe_load(Path(path).read_text())
    family = raw.get("family")
    if family not in FAMILIES:
        raise UnsupportedModelError(
            f"{path}: family {family!r} is not supported; supported: {sorted(FAMILIES)}"
        )
    return AutoConfig.for_model(family, **raw.get("config", {}))


def build_model(config, *, seed: int = 0, dtype: DType = "float32") -> PreTrainedModel:
    """A freshly initialised model; the seed makes every node build the same weights."""
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype(dtype))
    MoEAdapter(model)
    return model


def load_model(spec: ModelSpec) -> PreTrainedModel:
    if spec.config_file is not None:
        return build_model(read_model_config(spec.config_file), seed=spec.seed, dtype=spec.dtype)
    model = AutoModelForCausalLM.from_pretrained(
        spec.pretrained, dtype=torch_dtype(spec.dtype), local_files_only=spec.local_files_only
    )
    MoEAdapter(model)
    return model

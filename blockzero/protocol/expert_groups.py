"""The expert-group registry: which experts of every MoE layer each group trains, and on what data.

Every node loads the same registry file, so it is part of the protocol. It is validated on load
because a bad registry (overlapping groups, an index past the last expert, a group no larger than
top-k) would make miners' deltas collide or make a group's router choice meaningless.
"""

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from blockzero.atomic import atomic_write_text

REGISTRY_VERSION = 1


class RegistryError(ValueError):
    """The registry is malformed or does not fit the model it is used with."""


class ExpertGroup(BaseModel):
    """One group: the expert indices it owns in each MoE layer, and the domain it trains on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int = Field(ge=0)
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    domain: str = Field(min_length=1)
    experts: dict[int, tuple[int, ...]]

    def size(self, layer: int) -> int:
        return len(self.experts[layer])


class ExpertGroupRegistry(BaseModel):
    """All groups of one model. `moe_layers` are decoder-layer indices that hold routed experts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int
    num_experts: int = Field(gt=0)
    top_k: int = Field(gt=0)
    moe_layers: tuple[int, ...]
    groups: tuple[ExpertGroup, ...]

    @model_validator(mode="after")
    def _check(self) -> "ExpertGroupRegistry":
        problems = _problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def group(self, group_id: int) -> ExpertGroup:
        for g in self.groups:
            if g.id == group_id:
                return g
        raise RegistryError(
            f"no expert group with id {group_id} (have {[g.id for g in self.groups]})"
        )

    def sha256(self) -> str:
        """Hash of the canonical JSON form: the manifest names the registry a model was split by."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def ungrouped(self, layer: int) -> tuple[int, ...]:
        """Experts of `layer` that no group owns; they stay frozen and travel in their own shard."""
        owned = {e for g in self.groups for e in g.experts[layer]}
        return tuple(e for e in range(self.num_experts) if e not in owned)

    def check_model(self, *, num_experts: int, top_k: int, moe_layers: Sequence[int]) -> None:
        """Refuse a model whose MoE shape differs from the one the registry was made for."""
        model_shape = (num_experts, top_k, tuple(moe_layers))
        mine = (self.num_experts, self.top_k, self.moe_layers)
        if model_shape != mine:
            raise RegistryError(
                f"registry is for (num_experts, top_k, moe_layers)={mine} but the model has {model_shape}"
            )


def _problems(reg: ExpertGroupRegistry) -> list[str]:
    out: list[str] = []
    if reg.version != REGISTRY_VERSION:
        out.append(f"version {reg.version} is not the supported version {REGISTRY_VERSION}")
    if not reg.groups:
        out.append("no groups")
    ids = [g.id for g in reg.groups]
    if sorted(ids) != list(range(len(ids))):
        out.append(f"group ids must be 0..{len(ids) - 1}, got {ids}")
    names = [g.name for g in reg.groups]
    if len(set(names)) != len(names):
        out.append(f"group names must be unique, got {names}")
    for layer in reg.moe_layers:
        owner: dict[int, str] = {}
        for g in reg.groups:
            experts = g.experts.get(layer)
            if experts is None:
                out.append(f"group {g.name!r} has no experts for MoE layer {layer}")
                continue
            if len(experts) <= reg.top_k:
                out.append(
                    f"group {g.name!r} layer {layer} has {len(experts)} experts; "
                    f"it needs more than top_k={reg.top_k}"
                )
            for e in experts:
                if not 0 <= e < reg.num_experts:
                    out.append(
                        f"group {g.name!r} layer {layer}: expert {e} out of range [0, {reg.num_experts})"
                    )
                elif e in owner:
                    out.append(
                        f"expert {e} of layer {layer} is in both {owner[e]!r} and {g.name!r}"
                    )
                else:
                    owner[e] = g.name
        extra = {k for g in reg.groups for k in g.experts} - set(reg.moe_layers)
        if extra:
            out.append(f"layers {sorted(extra)} are not MoE layers {list(reg.moe_layers)}")
            break
    return out


def parse_registry(raw: object, source: str = "registry") -> ExpertGroupRegistry:
    """Validate a decoded registry, turning every problem into one `RegistryError`."""
    try:
        return ExpertGroupRegistry.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(err["msg"].removeprefix("Value error, ") for err in e.errors())
        raise RegistryError(f"invalid expert-group registry ({source}): {problems}") from e


def load_registry(path: Path) -> ExpertGroupRegistry:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise RegistryError(f"cannot read expert-group registry {path}: {e}") from e
    return parse_registry(raw, str(path))


def save_registry(registry: ExpertGroupRegistry, path: Path) -> None:
    data = registry.model_dump(mode="json")
    for g in data["groups"]:
        g["experts"] = {int(k): list(v) for k, v in g["experts"].items()}
    atomic_write_text(Path(path), yaml.safe_dump(data, sort_keys=False))


def contiguous_registry(
    *,
    num_experts: int,
    top_k: int,
    moe_layers: Sequence[int],
    domains: Sequence[str],
    group_size: int | None = None,
) -> ExpertGroupRegistry:
    """Give each domain a contiguous block of `group_size` experts per layer (all experts split
    evenly when None); experts past the last block stay ungrouped.

    A baseline only: groups chosen by activation (the owner tools) forget far less.
    """
    n = len(domains)
    if group_size is None:
        if n == 0 or num_experts % n:
            raise RegistryError(f"{num_experts} experts do not split evenly into {n} groups")
        group_size = num_experts // n
    size = group_size
    groups = [
        ExpertGroup(
            id=i,
            name=d,
            domain=d,
            experts={layer: tuple(range(i * size, (i + 1) * size)) for layer in moe_layers},
        )
        for i, d in enumerate(domains)
    ]
    return parse_registry(
        {
            "version": REGISTRY_VERSION,
            "num_experts": num_experts,
            "top_k": top_k,
            "moe_layers": tuple(moe_layers),
            "groups": groups,
        },
        "contiguous split",
    )


__all__ = [
    "REGISTRY_VERSION",
    "ExpertGroup",
    "ExpertGroupRegistry",
    "RegistryError",
    "contiguous_registry",
    "load_registry",
    "parse_registry",
    "save_registry",
]

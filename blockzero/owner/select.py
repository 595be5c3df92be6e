"""Choose expert groups from activation profiles (ESFT + DES-MoE) and report their overlap.

Per MoE layer:
1. Exclude the `num_general` experts the general data uses most (DES-MoE): every domain routes
   through them, so training them for one domain moves all the others.
2. Score every other expert for each domain: `freq_domain - general_weight * freq_general`.
   With `general_weight = 0` this is ESFT's ranking by domain activation frequency; a positive
   weight (0.5 measured in `scripts/bench_group_selection.py`) also favours experts the other
   domains use little.
3. Each domain takes its best-scoring free experts. An expert claimed by several domains goes
   to the one with the highest relative frequency (its share of the expert's use summed over
   the domains); the losers refill from what is still free, until every group is full.

Groups are disjoint by construction and all the same size (> top_k), so the registry validates.
Experts no group owns (the general ones, and any left over) are trained by nobody.
"""

from collections.abc import Mapping

import torch
from pydantic import BaseModel, ConfigDict, Field

from blockzero.owner.profile import ExpertProfile
from blockzero.protocol.expert_groups import REGISTRY_VERSION, ExpertGroupRegistry, parse_registry


class SelectionConfig(BaseModel):
    """`group_size` experts per layer per group; None = as many as fit after the exclusion."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_general: int = Field(2, ge=0)
    general_weight: float = Field(0.5, ge=0)
    group_size: int | None = Field(None, gt=0)


class GroupReport(BaseModel):
    """`coverage[d]`: share of domain d's routing slots (all MoE layers) that land in this group.
    `own` is the coverage of the group's own domain; the rest is overlap that causes forgetting."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    domain: str
    own: float
    coverage: dict[str, float]


class Selection(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    config: SelectionConfig
    group_size: int
    general: dict[int, tuple[int, ...]]
    registry: ExpertGroupRegistry
    groups: tuple[GroupReport, ...]


def _check_shapes(domains: Mapping[str, ExpertProfile], general: ExpertProfile) -> None:
    shape = (general.num_experts, general.top_k, general.moe_layers)
    for name, p in domains.items():
        if (p.num_experts, p.top_k, p.moe_layers) != shape:
            raise ValueError(
                f"profile of {name!r} has (num_experts, top_k, moe_layers)="
                f"{(p.num_experts, p.top_k, p.moe_layers)}, the general profile {shape}"
            )


def resolve_group_size(
    cfg: SelectionConfig, *, num_experts: int, top_k: int, num_domains: int
) -> int:
    available = num_experts - cfg.num_general
    size = cfg.group_size if cfg.group_size is not None else available // num_domains
    if size <= top_k:
        raise ValueError(
            f"group size {size} must exceed top_k={top_k}: lower --num-general or use fewer domains"
        )
    if size * num_domains > available:
        raise ValueError(
            f"{num_domains} groups of {size} do not fit in {available} experts "
            f"({num_experts} minus {cfg.num_general} general): lower --group-size or --num-general"
        )
    return size


def select_layer(
    freqs: Mapping[str, torch.Tensor],
    general: torch.Tensor,
    *,
    num_general: int,
    general_weight: float,
    group_size: int,
) -> tuple[tuple[int, ...], dict[str, tuple[int, ...]]]:
    """One layer: (excluded general experts, disjoint experts per domain sorted by index)."""
    excluded = general.topk(num_general).indices.tolist() if num_general else []
    free = set(range(len(general))) - set(excluded)
    total = torch.stack(list(freqs.values())).sum(0)
    relative = {d: f / total.clamp(min=1e-12) for d, f in freqs.items()}
    score = {d: f - general_weight * general for d, f in freqs.items()}
    chosen: dict[str, list[int]] = {d: [] for d in freqs}
    while any(len(c) < group_size for c in chosen.values()):
        claims: dict[int, list[str]] = {}
        for d, c in chosen.items():
            ranked = sorted(free, key=lambda e, d=d: (-score[d][e].item(), e))
            for e in ranked[: group_size - len(c)]:
                claims.setdefault(e, []).append(d)
        for e, claimants in claims.items():
            winner = max(claimants, key=lambda d, e=e: relative[d][e].item())
            chosen[winner].append(e)
            free.remove(e)
    return tuple(sorted(excluded)), {d: tuple(sorted(c)) for d, c in chosen.items()}


def coverage(profile: ExpertProfile, experts: Mapping[int, tuple[int, ...]]) -> float:
    """Share of the profile's routing slots, over all MoE layers, that fall in `experts`."""
    slots = sum(sum(profile.layer(layer).slot_counts) for layer in experts)
    hit = sum(profile.layer(layer).slot_counts[e] for layer, ids in experts.items() for e in ids)
    return hit / slots if slots else 0.0


def overlap_report(
    registry: ExpertGroupRegistry, domains: Mapping[str, ExpertProfile]
) -> tuple[GroupReport, ...]:
    """Coverage of every domain by every group; works for any registry (e.g. the contiguous one)."""
    reports = []
    for g in registry.groups:
        cov = {d: coverage(p, g.experts) for d, p in domains.items()}
        reports.append(
            GroupReport(name=g.name, domain=g.domain, own=cov.get(g.domain, 0.0), coverage=cov)
        )
    return tuple(reports)


def select_experts(
    domains: Mapping[str, ExpertProfile],
    general: ExpertProfile,
    cfg: SelectionConfig | None = None,
) -> Selection:
    """One group per domain (in the mapping's order, ids 0..n-1), validated as a registry."""
    cfg = cfg or SelectionConfig()
    if not domains:
        raise ValueError("no domain profiles to select from")
    _check_shapes(domains, general)
    size = resolve_group_size(
        cfg, num_experts=general.num_experts, top_k=general.top_k, num_domains=len(domains)
    )
    excluded: dict[int, tuple[int, ...]] = {}
    per_domain: dict[str, dict[int, tuple[int, ...]]] = {d: {} for d in domains}
    for layer in general.moe_layers:
        excluded[layer], picks = select_layer(
            {d: p.frequency(layer) for d, p in domains.items()},
            general.frequency(layer),
            num_general=cfg.num_general,
            general_weight=cfg.general_weight,
            group_size=size,
        )
        for d, ids in picks.items():
            per_domain[d][layer] = ids
    registry = parse_registry(
        {
            "version": REGISTRY_VERSION,
            "num_experts": general.num_experts,
            "top_k": general.top_k,
            "moe_layers": general.moe_layers,
            "groups": [
                {"id": i, "name": d, "domain": d, "experts": per_domain[d]}
                for i, d in enumerate(domains)
            ],
        },
        "expert selection",
    )
    return Selection(
        config=cfg,
        group_size=size,
        general=excluded,
        registry=registry,
        groups=overlap_report(registry, domains),
    )

"""Heatmap of domain x expert activation frequency, one panel per MoE layer.

Each domain's selected experts are boxed and the excluded general experts are marked with a
cross, so an owner can see at a glance whether a group holds what its domain actually uses.
"""

from collections.abc import Mapping
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from blockzero.atomic import atomic_path
from blockzero.owner.profile import ExpertProfile
from blockzero.protocol.expert_groups import ExpertGroupRegistry


def save_heatmap(
    path: Path,
    profiles: Mapping[str, ExpertProfile],
    *,
    registry: ExpertGroupRegistry | None = None,
    general: Mapping[int, tuple[int, ...]] | None = None,
) -> None:
    """`profiles` are the rows (domains, then e.g. "general"); boxes mark `registry` groups."""
    names = list(profiles)
    first = next(iter(profiles.values()))
    layers = first.moe_layers
    # A bare Figure (not pyplot): no global backend state, safe in a library and in threads.
    fig = Figure(
        figsize=(max(6.0, 0.4 * first.num_experts + 2), 1.0 + 0.45 * len(names) * len(layers))
    )
    axes = fig.subplots(len(layers), 1, squeeze=False)
    vmax = max(max(p.layer(layer).frequency) for p in profiles.values() for layer in layers)
    for ax, layer in zip(axes[:, 0], layers, strict=True):
        grid = [list(profiles[n].layer(layer).frequency) for n in names]
        image = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0.0, vmax=vmax)
        ax.set_title(f"MoE layer {layer}: share of tokens routed to each expert", fontsize=9)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xticks(range(first.num_experts), range(first.num_experts), fontsize=7)
        for group in registry.groups if registry else ():
            if group.domain not in names:
                continue
            row = names.index(group.domain)
            for e in group.experts[layer]:
                ax.add_patch(
                    Rectangle((e - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", lw=1.5)
                )
        for e in (general or {}).get(layer, ()):
            ax.text(e, len(names) - 0.5, "x", ha="center", va="top", color="red", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.02)
    axes[-1, 0].set_xlabel("expert (red box: selected for the row's domain; x: excluded general)")
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=110)

"""Communication codecs: submission bytes vs merged held-out loss, all codecs side by side.

The tiny Qwen3-MoE is warmed up briefly on the local domains and its expert groups are selected
from its routing (`--groups shipped`: the shipped contiguous registry, whose groups interfere:
docs/owner.md). Per cycle, every group is trained in full-routing mode by `--miners` miners
(seeds differ), once, from
the bf16 trajectory's model; every codec then encodes those same deltas (sparse codecs with each
miner's own error feedback), writes, verifies and decodes them with `read_submission` exactly as
a validator does, merges them (mean per group) and applies the DiLoCo outer step (Nesterov, lr
0.7, momentum 0.9) to its own global model. Training once per cycle keeps the run affordable on
a CPU and holds training noise fixed, so the loss differences are the codecs' alone; it leaves
out how a codec's error would feed back through later training from its own model.
Reported per codec: measured file bytes per expert parameter and the ratio to fp32, held-out loss
per domain after each cycle, and the penalty vs bf16 (relative loss increase) after the last.

    python scripts/bench/codecs.py        # ~10 min on 2 CPU cores shared with other jobs
    python scripts/bench/codecs.py --warmup-steps 300 --inner-steps 10   # docs/benchmarks.md
"""

import argparse
import copy
import json
import os
import tempfile
import time
from pathlib import Path

import matplotlib
import torch

from blockzero.data.batches import train_batches
from blockzero.data.domains import load_data_config, load_domains
from blockzero.data.tokenizer import byte_tokenizer
from blockzero.delta.codecs import Codec, make_codec
from blockzero.delta.feedback import encode_with_feedback
from blockzero.delta.outer import OuterConfig, outer_step
from blockzero.delta.pseudo_gradient import global_norm, pseudo_gradient
from blockzero.delta.submission import Expectation, SubmissionMeta, read_submission, write_encoded
from blockzero.model.evaluation import sequence_losses
from blockzero.model.families import MoEAdapter
from blockzero.model.group_rows import (
    GroupTensors,
    group_tensor_shapes,
    read_group_rows,
    write_group_rows,
)
from blockzero.model.group_training import TrainingMode, prepare_group_training
from blockzero.model.loading import build_model, read_model_config
from blockzero.model.training import InnerConfig, train
from blockzero.model.warmup import warm_up
from blockzero.owner.profile import GENERAL, profile_domains
from blockzero.owner.select import select_experts
from blockzero.protocol.expert_groups import ExpertGroup, ExpertGroupRegistry, load_registry

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CODECS = ["bf16", "int8", "topk_int8@0.01", "topk_int8@0.03", "topk_int8@0.1"]
TARGET_RATIO, TARGET_PENALTY = 16.0, 0.01
SHIPPED_REGISTRY = ROOT / "configs/groups/tiny-qwen3-moe.yaml"


def parse_codec(spec: str) -> tuple[str, float | None]:
    name, _, density = spec.partition("@")
    return name, float(density) if density else None


class Trajectory:
    """One codec's global model, outer momentum per group and each miner's residual."""

    def __init__(self, spec: str, model: torch.nn.Module) -> None:
        name, density = parse_codec(spec)
        self.spec, self.density = spec, density
        self.codec: Codec = make_codec(name, density)
        self.model = copy.deepcopy(model)
        self.momentum: dict[int, GroupTensors] = {}
        self.residual: dict[tuple[int, int], GroupTensors] = {}
        self.bytes: list[int] = []
        self.data_bytes: list[int] = []
        self.losses: list[dict[str, float]] = []


def train_miner(
    model: torch.nn.Module, group: ExpertGroup, data: torch.Tensor, args, seed: int
) -> GroupTensors:
    wrapped = prepare_group_training(copy.deepcopy(model), group, TrainingMode.FULL_ROUTING)
    start = wrapped.group_tensors()
    train(
        wrapped.model,
        wrapped.trainable_parameters(),
        train_batches(data, batch_size=args.batch_size, seed=seed),
        InnerConfig(lr=args.inner_lr),
        max_steps=args.inner_steps,
    )
    return pseudo_gradient(start, wrapped.group_tensors())


def submit(
    t: Trajectory, delta: GroupTensors, group: ExpertGroup, miner: int, cycle: int, work: Path
) -> GroupTensors:
    """Encode (with error feedback for sparse codecs), write, verify and decode as a validator."""
    adapter = MoEAdapter(t.model)
    shapes = group_tensor_shapes(adapter, group)
    key = (group.id, miner)
    if t.codec.sparse:
        encoded, _, t.residual[key] = encode_with_feedback(t.codec, delta, t.residual.get(key, {}))
    else:
        encoded = t.codec.encode(delta)
    meta = SubmissionMeta(
        base_revision=f"{cycle:040x}",
        cycle=cycle,
        group=group.id,
        hotkey=f"miner-{miner}",
        tokens=0,
        codec=t.codec.name,
        density=t.density,
    )
    path = write_encoded(work / f"{t.spec}-{group.id}-{miner}.safetensors", encoded, meta)
    t.bytes.append(path.stat().st_size)
    t.data_bytes.append(sum(v.numel() * v.element_size() for v in encoded.values()))
    exp = Expectation(
        shapes=shapes,
        meta=meta,
        max_bytes=1 << 30,
        max_norm=0.5 * global_norm(read_group_rows(adapter, group)),
    )
    decoded, _ = read_submission(path, exp)
    return decoded


def select_groups(model: torch.nn.Module, corpora: dict) -> ExpertGroupRegistry:
    """Groups chosen from the warm model's routing, as the owner's tools choose them."""
    profiles = profile_domains(model, corpora, num_sequences=64)
    domains = {d: p for d, p in profiles.items() if d != GENERAL}
    return select_experts(domains, profiles[GENERAL]).registry


def held_out_losses(model: torch.nn.Module, held: dict[str, torch.Tensor]) -> dict[str, float]:
    return {d: sequence_losses(model, s).mean().item() for d, s in held.items()}


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    started, load_start = time.monotonic(), os.getloadavg()
    corpora = load_domains(load_data_config(ROOT / "configs/data/local.yaml"), byte_tokenizer())
    config = read_model_config(ROOT / "configs/models/tiny-qwen3-moe.yaml")
    model = build_model(config)
    warm_up(model, corpora, steps=args.warmup_steps, batch_size=16)
    registry = (
        select_groups(model, corpora)
        if args.groups == "selected"
        else load_registry(SHIPPED_REGISTRY)
    )
    warm_s = time.monotonic() - started
    held = {d: c.held_out[: args.num_eval] for d, c in corpora.items()}
    base = held_out_losses(model, held)
    params = sum(
        torch.Size(s).numel()
        for s in group_tensor_shapes(MoEAdapter(model), registry.groups[0]).values()
    )
    runs = [Trajectory(spec, model) for spec in args.codecs]
    outer = OuterConfig.from_momentum(args.outer_lr, args.outer_momentum)
    ref = next(t for t in runs if t.spec == "bf16")
    with tempfile.TemporaryDirectory() as tmp:
        for cycle in range(args.cycles):
            deltas = {
                (g.id, m): train_miner(
                    ref.model, g, corpora[g.domain].train, args, 1000 * cycle + 10 * g.id + m
                )
                for g in registry.groups
                for m in range(args.miners)
            }
            for t in runs:
                for group in registry.groups:
                    decoded = [
                        submit(t, deltas[group.id, m], group, m, cycle, Path(tmp))
                        for m in range(args.miners)
                    ]
                    merged = {k: torch.stack([d[k] for d in decoded]).mean(0) for k in decoded[0]}
                    adapter = MoEAdapter(t.model)
                    rows = read_group_rows(adapter, group)
                    outer_step(rows, merged, t.momentum.setdefault(group.id, {}), outer)
                    write_group_rows(adapter, group, rows)
                t.losses.append(held_out_losses(t.model, held))
                print(
                    f"cycle {cycle} {t.spec:16} "
                    + " ".join(f"{d} {v:.4f}" for d, v in t.losses[-1].items()),
                    flush=True,
                )
    return report(args, runs, base, params, warm_s, started, load_start)


def report(args, runs, base, params, warm_s, started, load_start) -> dict:
    ref = next(t for t in runs if t.spec == "bf16").losses[-1]
    fp32_bytes = 4 * params
    rows = []
    for t in runs:
        final = t.losses[-1]
        penalty = {d: (final[d] - ref[d]) / ref[d] for d in final}
        file_bpp = sum(t.bytes) / len(t.bytes) / params
        rows.append(
            {
                "codec": t.spec,
                "bytes_per_param": file_bpp,
                "data_bytes_per_param": sum(t.data_bytes) / len(t.data_bytes) / params,
                "ratio_vs_fp32": fp32_bytes / (file_bpp * params),
                "final_loss": final,
                "loss_per_cycle": t.losses,
                "penalty_vs_bf16": penalty,
                "max_penalty": max(penalty.values()),
                "mean_penalty": sum(penalty.values()) / len(penalty),
            }
        )
        rows[-1]["meets_target"] = (
            rows[-1]["ratio_vs_fp32"] >= TARGET_RATIO and rows[-1]["max_penalty"] <= TARGET_PENALTY
        )
    print("\nbase (warm) held-out loss: " + " ".join(f"{d} {v:.4f}" for d, v in base.items()))
    print(
        f"{'codec':16} {'B/param':>8} {'vs fp32':>8}  final loss per domain        penalty vs bf16 (max)"
    )
    for r in rows:
        losses = " ".join(f"{v:.4f}" for v in r["final_loss"].values())
        pen = " ".join(f"{100 * v:+.2f}%" for v in r["penalty_vs_bf16"].values())
        print(
            f"{r['codec']:16} {r['bytes_per_param']:8.4f} {r['ratio_vs_fp32']:7.1f}x  {losses}  {pen} ({100 * r['max_penalty']:+.2f}%)"
        )
    return {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "params_per_submission": params,
        "base_loss": base,
        "codecs": rows,
        "warmup_s": warm_s,
        "total_s": time.monotonic() - started,
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
    }


def plot(result: dict, path: Path) -> None:
    rows = result["codecs"]
    names = [r["codec"] for r in rows]
    domains = list(result["base_loss"])
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 4.5))
    ax1.bar(names, [r["ratio_vs_fp32"] for r in rows], color="tab:blue")
    ax1.axhline(TARGET_RATIO, color="red", ls="--", label=f"target {TARGET_RATIO:.0f}x")
    ax1.set_yscale("log")
    ax1.set_ylabel("fp32 bytes / submission bytes")
    ax1.legend()
    width = 0.8 / len(domains)
    for i, d in enumerate(domains):
        xs = [j + i * width for j in range(len(rows))]
        ax2.bar(xs, [100 * r["penalty_vs_bf16"][d] for r in rows], width, label=d)
    ax2.axhline(100 * TARGET_PENALTY, color="red", ls="--", label="target +1%")
    ax2.set_xticks([j + 0.4 - width / 2 for j in range(len(rows))], names)
    ax2.set_ylabel("held-out loss vs bf16 (%)")
    ax2.legend()
    for r in rows:
        mean = [sum(c.values()) / len(c) for c in r["loss_per_cycle"]]
        ax3.plot(range(1, len(mean) + 1), mean, marker="o", label=r["codec"])
    ax3.axhline(
        sum(result["base_loss"].values()) / len(domains), color="gray", ls=":", label="base"
    )
    ax3.set_xlabel("cycle")
    ax3.set_ylabel("mean held-out loss")
    ax3.legend()
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--codecs", nargs="+", default=DEFAULT_CODECS, help="name or name@density")
    p.add_argument(
        "--groups",
        choices=["selected", "shipped"],
        default="selected",
        help="activation-selected from the warm model, or the shipped contiguous registry",
    )
    p.add_argument("--warmup-steps", type=int, default=50)
    p.add_argument("--cycles", type=int, default=3)
    p.add_argument("--inner-steps", type=int, default=8)
    p.add_argument("--miners", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--inner-lr", type=float, default=3e-3)
    p.add_argument("--outer-lr", type=float, default=0.7)
    p.add_argument("--outer-momentum", type=float, default=0.9)
    p.add_argument("--num-eval", type=int, default=48)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("runs/bench/codecs.json"))
    args = p.parse_args()
    if "bf16" not in args.codecs:
        p.error("--codecs must include bf16, the reference for the penalty")
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    png = args.out.with_suffix(".png")
    plot(result, png)
    met = [r for r in result["codecs"] if r["meets_target"]]
    best = max(met, key=lambda r: r["ratio_vs_fp32"], default=None)
    base = result["base_loss"]
    ref = next(r for r in result["codecs"] if r["codec"] == "bf16")["final_loss"]
    verdict = (
        f"target met by {best['codec']}: {best['ratio_vs_fp32']:.0f}x fewer bytes than fp32 "
        f"at {100 * best['max_penalty']:+.2f}% worst-domain loss vs bf16"
        if best
        else "target (>=16x fewer bytes than fp32, <=1% loss penalty) not met"
    )
    if any(ref[d] >= base[d] for d in base):
        # A penalty vs a reference that got worse than the warm base says nothing about codecs.
        verdict = "INCONCLUSIVE, bf16 merge did not improve every domain over the base; " + verdict
    per = ", ".join(
        f"{r['codec']} {r['ratio_vs_fp32']:.1f}x {100 * r['max_penalty']:+.2f}%"
        for r in result["codecs"]
    )
    print(
        f"\nSUMMARY: {verdict}; per codec (vs fp32, worst-domain penalty vs bf16): {per}; "
        f"{result['total_s']:.0f} s, load {result['loadavg_start'][0]:.1f}->"
        f"{result['loadavg_end'][0]:.1f} (JSON: {args.out}, plot: {png})"
    )


if __name__ == "__main__":
    main()

"""Miner memory and speed: group training per mode and precision vs training the whole model.

Part `memory` uses a config where experts dominate the parameters (64 experts, top-2) split into
4, 8 or 16 groups (16, 8 or 4 experts each). Each case's peak is its own: on CPU it runs in a
fresh process (resident set), on CUDA in this one with the peak reset and the previous case
freed (`torch.cuda.max_memory_allocated`); tensor bytes
(weights and buffers, gradients, optimizer state as stored) are counted exactly; step time
leaves out the first step (torchao compiles its optimizer step there). Cases: the whole model;
full routing with frozen experts in fp32, bf16, int8; int8 + 8-bit AdamW + per-layer activation
checkpointing; int8 + bf16 rows + 8-bit AdamW, with and without checkpointing; partial. The bf16
cases run on CUDA only (on CPU bf16 matmuls are slow and allocate fp32 work buffers, and the
miner keeps fp32 there). On CUDA the miner's path is followed (frozen fp32 weights cast to
bf16, bf16 autocast), so there "frozen fp32" is bf16 and the whole model trains fp32 master
weights under autocast.
Part `quality` warms up the tiny model so experts specialize, trains one group per domain with
each recipe, applies the delta to the full model and reports the domain's gain and the other
domains' loss change.

    python scripts/bench/miner_memory.py --quick          # 8 groups only (~2 min on 2 CPU cores)
    python scripts/bench/miner_memory.py                  # 4/8/16 groups
    python scripts/bench/miner_memory.py --device cuda --part both
"""

import argparse
import copy
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from transformers import AutoConfig

from blockzero.data.batches import train_batches
from blockzero.delta.pseudo_gradient import pseudo_gradient
from blockzero.model.evaluation import sequence_losses
from blockzero.model.families import MoEAdapter
from blockzero.model.group_rows import add_to_group_rows
from blockzero.model.group_training import TrainingMode, prepare_group_training
from blockzero.model.loading import build_model, read_model_config
from blockzero.model.training import (
    InnerConfig,
    build_optimizer,
    causal_lm_loss,
    peak_memory_bytes,
    train,
)
from blockzero.protocol.expert_groups import contiguous_registry

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20
NUM_EXPERTS = 64
BIG = dict(
    vocab_size=260,
    hidden_size=256,
    intermediate_size=512,
    moe_intermediate_size=256,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=64,
    num_experts=NUM_EXPERTS,
    num_experts_per_tok=2,
    norm_topk_prob=True,
    tie_word_embeddings=False,
)
LOW = {"frozen": "int8", "group": "bfloat16", "optimizer": "adamw8bit"}
RECIPES: dict[str, dict] = {
    "full_routing_fp32": {"frozen": "float32"},
    "full_routing_bf16": {"frozen": "bfloat16"},
    "full_routing_int8": {"frozen": "int8"},
    "int8_adamw8bit_ckpt": {"frozen": "int8", "optimizer": "adamw8bit", "ckpt": True},
    "int8_bf16rows_adamw8bit": LOW,
    "int8_bf16rows_adamw8bit_ckpt": {**LOW, "ckpt": True},
    "partial": {"mode": "partial"},
}
# bf16 matmuls on CPU allocate fp32 work buffers and run several times slower (the miner keeps
# bf16 frozen experts and rows in fp32 there), so these are CUDA cases.
CUDA_ONLY = {"full_routing_bf16", "int8_bf16rows_adamw8bit", "int8_bf16rows_adamw8bit_ckpt"}
QUALITY_RECIPES = ["full_routing_fp32", "int8_adamw8bit_ckpt", "int8_bf16rows_adamw8bit_ckpt"]


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Moments as stored: torchao's 8-bit states count their uint8 codes and fp32 scales."""
    total = 0
    for state in optimizer.state.values():
        for t in state.values():
            if hasattr(t, "codes"):
                total += tensor_bytes([t.codes, t.scale])
            elif torch.is_tensor(t) and t.dim():
                total += tensor_bytes([t])
    return total


def prepare(case: str, groups: int, device: torch.device):
    """Build the model on `device` and make it trainable as `case` says: (model, params, inner)."""
    torch.manual_seed(0)
    model = build_model(AutoConfig.for_model("qwen3_moe", **BIG)).to(device)
    if case == "whole_model":
        return model, list(model.parameters()), InnerConfig(lr=1e-3)
    recipe = {"mode": "full_routing", "frozen": "float32", "group": "float32"} | RECIPES[case]
    registry = contiguous_registry(
        num_experts=NUM_EXPERTS,
        top_k=2,
        moe_layers=MoEAdapter(model).moe_layer_indices,
        domains=[f"g{i}" for i in range(groups)],
    )
    wrapped = prepare_group_training(
        model,
        registry.group(0),
        TrainingMode(recipe["mode"]),
        frozen_dtype=getattr(torch, recipe["frozen"]),
        group_dtype=getattr(torch, recipe["group"]),
        checkpointing=recipe.get("ckpt", False),
    )
    if device.type == "cuda":  # as the miner does (blockzero/miner/steps.py)
        for p in wrapped.model.parameters():
            if not p.requires_grad and p.dtype == torch.float32:
                p.data = p.data.to(torch.bfloat16)
    wrapped.model.to(device)  # a partial model is built on the host
    inner = InnerConfig(lr=1e-3, optimizer=recipe.get("optimizer", "adamw"))
    return wrapped.model, wrapped.trainable_parameters(), inner


def run_case(case: str, groups: int, steps: int, device: torch.device) -> dict:
    """One case in this process: build, a few steps, count bytes and time (first step excluded:
    it includes torchao's compile)."""
    target, params, inner = prepare(case, groups, device)
    optimizer = build_optimizer(params, inner)
    batch = torch.randint(4, 260, (8, 128), generator=torch.Generator().manual_seed(0)).to(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    target.train()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = causal_lm_loss(target, batch, aux_loss=True)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return {
        "case": case,
        "groups": groups,
        "weights_mib": tensor_bytes(list(target.parameters()) + list(target.buffers())) / MIB,
        "grads_mib": tensor_bytes([p.grad for p in params if p.grad is not None]) / MIB,
        "optimizer_mib": optimizer_state_bytes(optimizer) / MIB,
        "trainable_params": sum(p.numel() for p in params),
        "step_s": sum(times[1:]) / max(1, len(times) - 1),
        "peak_mib": peak_memory_bytes(device) / MIB,
    }


def _child(case: str, groups: int, steps: int, device: str) -> dict:
    """A case's numbers. On CUDA in this process (the peak is reset per case and every case's
    tensors are freed before the next; saves an import and a compile per case), on CPU in a
    fresh process (a resident set cannot be reset)."""
    if device == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        return run_case(case, groups, steps, torch.device(device))
    flags = ["--case", case, "--groups", str(groups), "--steps", str(steps), "--device", device]
    out = subprocess.run(
        [sys.executable, __file__, *flags],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        sys.exit(f"case {case} ({groups} groups) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def memory_part(group_counts: list[int], cases: list[str], steps: int, device: str) -> list[dict]:
    base = _child("whole_model", group_counts[0], steps, device)
    base["tensors_mib"] = base["weights_mib"] + base["grads_mib"] + base["optimizer_mib"]
    rows = [base]
    print(
        f"\nMemory and speed, {NUM_EXPERTS} experts, batch 8x128, {device} (ratios vs whole model)"
    )
    print(
        f"{'case':30} {'groups':>6} {'weights':>8} {'grads':>7} {'optim':>7} {'tensors':>8}"
        f" {'peak':>8} {'step s':>7}  ratios: tensors peak step"
    )
    for groups in group_counts:
        for case in cases:
            rows.append(_child(case, groups, steps, device))
    for r in rows:
        r["tensors_mib"] = r["weights_mib"] + r["grads_mib"] + r["optimizer_mib"]
        for key in ("tensors_mib", "peak_mib", "step_s"):
            r[f"{key.removesuffix('_mib')}_ratio"] = r[key] / base[key]
        print(
            f"{r['case']:30} {r['groups']:6d} {r['weights_mib']:8.1f} {r['grads_mib']:7.1f}"
            f" {r['optimizer_mib']:7.1f} {r['tensors_mib']:8.1f} {r['peak_mib']:8.1f}"
            f" {r['step_s']:7.3f}  {r['tensors_ratio']:.3f} {r['peak_ratio']:.3f}"
            f" {r['step_s_ratio']:.3f}",
            flush=True,
        )
    return rows


def quality_part(
    warmup_steps: int, inner_steps: int, num_eval: int, device: torch.device
) -> list[dict]:
    # Imported here: the corpora need the `datasets` library, the memory part does not.
    from blockzero.data.domains import load_data_config, load_domains
    from blockzero.data.tokenizer import byte_tokenizer
    from blockzero.model.warmup import warm_up

    corpora = load_domains(load_data_config(ROOT / "configs/data/local.yaml"), byte_tokenizer())
    config = read_model_config(ROOT / "configs/models/tiny-qwen3-moe.yaml")
    model = build_model(config)
    warm_up(model, corpora, steps=warmup_steps, batch_size=16)
    warm = copy.deepcopy(model.state_dict())
    domains = list(corpora)
    registry = contiguous_registry(
        num_experts=16,
        top_k=2,
        moe_layers=MoEAdapter(model).moe_layer_indices,
        domains=[*domains, "spare"],
    )
    held = {d: corpora[d].held_out[:num_eval] for d in domains}
    base = {d: sequence_losses(model, held[d]) for d in domains}
    rows = []
    for name in QUALITY_RECIPES:
        recipe = {"mode": "full_routing", "frozen": "float32", "group": "float32"} | RECIPES[name]
        if device.type == "cpu" and name in CUDA_ONLY:
            continue
        for gid, domain in enumerate(domains):
            fresh = build_model(config)
            fresh.load_state_dict(warm)
            wrapped = prepare_group_training(
                fresh,
                registry.group(gid),
                TrainingMode(recipe["mode"]),
                frozen_dtype=getattr(torch, recipe["frozen"]),
                group_dtype=getattr(torch, recipe["group"]),
                checkpointing=recipe.get("ckpt", False),
            )
            wrapped.model.to(device)
            start = wrapped.group_tensors()
            train(
                wrapped.model,
                wrapped.trainable_parameters(),
                train_batches(corpora[domain].train, batch_size=16, seed=1),
                InnerConfig(lr=3e-3, optimizer=recipe.get("optimizer", "adamw")),
                max_steps=inner_steps,
                device=device,
            )
            delta = {k: v.cpu() for k, v in pseudo_gradient(start, wrapped.group_tensors()).items()}
            full = build_model(config)
            full.load_state_dict(warm)
            add_to_group_rows(MoEAdapter(full), registry.group(gid), delta, alpha=-1.0)
            change = {d: (sequence_losses(full, held[d]) - base[d]).mean().item() for d in domains}
            rows.append(
                {"recipe": name, "domain": domain, "gain": -change[domain], "change": change}
            )
    print(f"\nQuality: tiny model warmed {warmup_steps} steps, {inner_steps} inner steps")
    print(f"{'recipe':30} {'domain':7} {'own gain':>9}  other domains' loss change")
    for r in rows:
        others = ", ".join(f"{d} {v:+.3f}" for d, v in r["change"].items() if d != r["domain"])
        print(f"{r['recipe']:30} {r['domain']:7} {r['gain']:+9.4f}  {others}")
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = [r for r in rows if r["case"] != "whole_model"]
    names = list(dict.fromkeys(r["case"] for r in cases))
    counts = sorted({r["groups"] for r in cases})
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    width = 0.8 / len(counts)
    for i, groups in enumerate(counts):
        by = {r["case"]: r for r in cases if r["groups"] == groups}
        xs = [j + (i - (len(counts) - 1) / 2) * width for j in range(len(names))]
        axes[0].bar(xs, [by[n]["peak_ratio"] for n in names], width, label=f"{groups} groups")
        axes[1].bar(xs, [by[n]["step_s_ratio"] for n in names], width, label=f"{groups} groups")
    for ax, title in zip(
        axes, ["peak memory / whole model", "step time / whole model"], strict=True
    ):
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--part", choices=["memory", "quality", "both"], default="memory")
    p.add_argument("--device", choices=["cuda", "cpu"], default=None)
    p.add_argument("--quick", action="store_true", help="8 groups only, 3 steps")
    p.add_argument("--groups", type=int, nargs="+", default=[4, 8, 16])
    p.add_argument("--case", choices=["whole_model", *RECIPES], help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--warmup-steps", type=int, default=300)
    p.add_argument("--inner-steps", type=int, default=30)
    p.add_argument("--num-eval", type=int, default=64)
    p.add_argument("--out", type=Path, default=ROOT / "runs/bench/miner_memory.json")
    args = p.parse_args()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(2)
    if args.case:
        print(json.dumps(run_case(args.case, args.groups[0], args.steps, torch.device(device))))
        return
    groups, steps = ([8], 3) if args.quick else (args.groups, args.steps)
    cases = [c for c in RECIPES if device == "cuda" or c not in CUDA_ONLY]
    result: dict = {"device": device, "num_experts": NUM_EXPERTS}
    if args.part in ("memory", "both"):
        result["memory"] = memory_part(groups, cases, steps, device)
    if args.part in ("quality", "both"):
        result["quality"] = quality_part(
            args.warmup_steps, args.inner_steps, args.num_eval, torch.device(device)
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    summary = []
    if "memory" in result:
        png = args.out.with_suffix(".png")
        plot(result["memory"], png)
        mid = groups[len(groups) // 2]
        m = {r["case"]: r for r in result["memory"] if r["groups"] == mid}
        summary.append(
            f"{device}, {mid} groups, peak / whole model: "
            + ", ".join(f"{c} {m[c]['peak_ratio']:.2f}" for c in cases)
            + f" (plot: {png})"
        )
    if "quality" in result:
        for name in dict.fromkeys(r["recipe"] for r in result["quality"]):
            gains = [r["gain"] for r in result["quality"] if r["recipe"] == name]
            summary.append(f"{name} mean own-domain gain {sum(gains) / len(gains):+.4f}")
    print("\nSUMMARY: " + "; ".join(summary) + f" (JSON: {args.out})")


if __name__ == "__main__":
    main()

"""Miner memory and speed: group training in each mode vs training the whole model.

Part 1 (memory, speed) uses a config where experts dominate the parameters (64 experts, 8 groups
of 8, top-2). Each case runs in a fresh process, so its peak resident memory (CPU) or peak CUDA
allocation is its own; tensor bytes (weights, gradients, optimizer state) are counted exactly.
Part 2 (quality) warms up the tiny model so experts specialize, trains one group per domain in
each mode, applies the delta to the full model and reports the domain's gain and the other
domains' loss change. Everything is measured side by side in one run; ratios are printed.

    python scripts/bench_miner_memory.py            # both parts (a few minutes on 2 CPU cores)
    python scripts/bench_miner_memory.py --part memory
"""

import argparse
import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from transformers import AutoConfig

from blockzero.data.batches import train_batches
from blockzero.data.domains import load_data_config, load_domains
from blockzero.data.tokenizer import byte_tokenizer
from blockzero.delta.pseudo_gradient import pseudo_gradient
from blockzero.model.evaluation import sequence_losses
from blockzero.model.families import MoEAdapter
from blockzero.model.group_rows import add_to_group_rows
from blockzero.model.group_training import TrainingMode, prepare_group_training
from blockzero.model.loading import build_model, read_model_config
from blockzero.model.training import InnerConfig, causal_lm_loss, peak_memory_bytes, train
from blockzero.model.warmup import warm_up
from blockzero.protocol.expert_groups import contiguous_registry

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20
CASES = ["whole_model", "full_routing_fp32", "full_routing_bf16", "partial"]
BIG = dict(
    vocab_size=260,
    hidden_size=256,
    intermediate_size=512,
    moe_intermediate_size=256,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=64,
    num_experts=64,
    num_experts_per_tok=2,
    norm_topk_prob=True,
    tie_word_embeddings=False,
)


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def run_case(case: str, steps: int, device: str) -> dict:
    """One case in this process: build, a few steps, count bytes and time."""
    torch.manual_seed(0)
    model = build_model(AutoConfig.for_model("qwen3_moe", **BIG)).to(device)
    adapter = MoEAdapter(model)
    registry = contiguous_registry(
        num_experts=64,
        top_k=2,
        moe_layers=adapter.moe_layer_indices,
        domains=[f"g{i}" for i in range(8)],
    )
    if case == "whole_model":
        target, params = model, list(model.parameters())
    else:
        mode = TrainingMode.PARTIAL if case == "partial" else TrainingMode.FULL_ROUTING
        frozen = torch.bfloat16 if case.endswith("bf16") else torch.float32
        wrapped = prepare_group_training(model, registry.group(0), mode, frozen_dtype=frozen)
        target, params = wrapped.model, wrapped.trainable_parameters()
        if mode is TrainingMode.PARTIAL:
            del model
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    batch = torch.randint(4, 260, (8, 128), generator=torch.Generator().manual_seed(0)).to(device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        loss = causal_lm_loss(target, batch, aux_loss=True)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    state = [
        t for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t) and t.dim()
    ]
    return {
        "case": case,
        "weights_mib": tensor_bytes(list(target.parameters()) + list(target.buffers())) / MIB,
        "grads_mib": tensor_bytes([p.grad for p in params if p.grad is not None]) / MIB,
        "optimizer_mib": tensor_bytes(state) / MIB,
        "trainable_params": sum(p.numel() for p in params),
        "step_s": sum(times[1:]) / max(1, len(times) - 1),
        "peak_mib": peak_memory_bytes(torch.device(device)) / MIB,
    }


def memory_part(steps: int, device: str) -> list[dict]:
    rows = []
    for case in CASES:
        out = subprocess.run(
            [sys.executable, __file__, "--case", case, "--steps", str(steps), "--device", device],
            check=True,
            capture_output=True,
            text=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = rows[0]
    print(
        f"\nMemory and speed, 64 experts / 8 groups, batch 8x128, {device} (ratios vs whole model)"
    )
    print(
        f"{'case':20} {'weights':>9} {'grads':>8} {'adam':>8} {'tensors':>9} {'peak':>9} {'step s':>8}  ratios: tensors peak step"
    )
    for r in rows:
        total = r["weights_mib"] + r["grads_mib"] + r["optimizer_mib"]
        base_total = base["weights_mib"] + base["grads_mib"] + base["optimizer_mib"]
        r["tensors_mib"] = total
        print(
            f"{r['case']:20} {r['weights_mib']:9.1f} {r['grads_mib']:8.1f} {r['optimizer_mib']:8.1f} {total:9.1f}"
            f" {r['peak_mib']:9.1f} {r['step_s']:8.3f}  {total / base_total:.3f} {r['peak_mib'] / base['peak_mib']:.3f}"
            f" {r['step_s'] / base['step_s']:.3f}"
        )
    return rows


def quality_part(warmup_steps: int, inner_steps: int, num_eval: int) -> list[dict]:
    torch.set_num_threads(2)
    corpora = load_domains(load_data_config(ROOT / "configs/data/local.yaml"), byte_tokenizer())
    config = read_model_config(ROOT / "configs/models/tiny-qwen3-moe.yaml")
    model = build_model(config)
    warm_up(model, corpora, steps=warmup_steps, batch_size=16)
    warm = copy.deepcopy(model.state_dict())
    adapter = MoEAdapter(model)
    domains = list(corpora)
    registry = contiguous_registry(
        num_experts=16, top_k=2, moe_layers=adapter.moe_layer_indices, domains=[*domains, "spare"]
    )
    held = {d: corpora[d].held_out[:num_eval] for d in domains}
    base = {d: sequence_losses(model, held[d]) for d in domains}
    rows = []
    for mode in TrainingMode:
        for gid, domain in enumerate(domains):
            fresh = build_model(config)
            fresh.load_state_dict(warm)
            wrapped = prepare_group_training(fresh, registry.group(gid), mode)
            start = wrapped.group_tensors()
            train(
                wrapped.model,
                wrapped.trainable_parameters(),
                train_batches(corpora[domain].train, batch_size=16, seed=1),
                InnerConfig(lr=3e-3),
                max_steps=inner_steps,
            )
            delta = pseudo_gradient(start, wrapped.group_tensors())
            full = build_model(config)
            full.load_state_dict(warm)
            add_to_group_rows(MoEAdapter(full), registry.group(gid), delta, alpha=-1.0)
            change = {d: (sequence_losses(full, held[d]) - base[d]).mean().item() for d in domains}
            rows.append(
                {"mode": mode.value, "domain": domain, "gain": -change[domain], "change": change}
            )
    print(
        f"\nQuality: tiny model warmed {warmup_steps} steps, {inner_steps} inner steps, contiguous groups"
    )
    print(f"{'mode':14} {'domain':7} {'own gain':>9}  other domains' loss change")
    for r in rows:
        others = ", ".join(f"{d} {v:+.3f}" for d, v in r["change"].items() if d != r["domain"])
        print(f"{r['mode']:14} {r['domain']:7} {r['gain']:+9.4f}  {others}")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--part", choices=["memory", "quality", "both"], default="both")
    p.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--warmup-steps", type=int, default=300)
    p.add_argument("--inner-steps", type=int, default=30)
    p.add_argument("--num-eval", type=int, default=64)
    p.add_argument("--out", type=Path, default=Path("runs/bench/miner_memory.json"))
    args = p.parse_args()
    if args.case:
        torch.set_num_threads(2)
        print(json.dumps(run_case(args.case, args.steps, args.device)))
        return
    result = {}
    if args.part in ("memory", "both"):
        result["memory"] = memory_part(args.steps, args.device)
    if args.part in ("quality", "both"):
        result["quality"] = quality_part(args.warmup_steps, args.inner_steps, args.num_eval)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    summary = []
    if "memory" in result:
        m = {r["case"]: r for r in result["memory"]}
        summary.append(
            "full-routing bf16 tensors/whole = "
            f"{m['full_routing_bf16']['tensors_mib'] / m['whole_model']['tensors_mib']:.2f}, "
            f"partial tensors/whole = {m['partial']['tensors_mib'] / m['whole_model']['tensors_mib']:.2f}"
        )
    if "quality" in result:
        for mode in TrainingMode:
            gains = [r["gain"] for r in result["quality"] if r["mode"] == mode.value]
            summary.append(f"{mode.value} mean own-domain gain {sum(gains) / len(gains):+.4f}")
    print("\nSUMMARY: " + "; ".join(summary) + f" (JSON: {args.out})")


if __name__ == "__main__":
    main()

"""The `--plan` memory estimate against the measured peak, for the tiny model, every miner option.

Each case runs in a fresh child process (so one case's allocations do not hide another's).
On CPU glibc's mmap threshold is lowered so freed tensors go back to the OS and the resident set
tracks live tensors; the child samples its resident set every 2 ms while it builds the model,
prepares group training and runs a few training steps, and the peak above the resident set
before the model was built is compared with the plan. torchao's optimizer step is compiled once
before that baseline (compiling is a per-process cost in host memory, not the model's). On CUDA
the peak is `torch.cuda.max_memory_allocated`, and the miner's CUDA path is followed: frozen
float32 weights cast to bf16, bf16 autocast, so the plan uses bf16 shared/compute precision.

    python scripts/bench/miner_plan.py --quick         # 3 cases (~3 min on 2 busy CPU cores)
    python scripts/bench/miner_plan.py                 # all (~10 min on 2 CPU cores busy with other jobs)
    python scripts/bench/miner_plan.py --device cuda   # on a GPU
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "models" / "tiny-qwen3-moe.yaml"
FP32 = {"frozen": "float32", "group": "float32", "optimizer": "adamw", "ckpt": False}
LOW = {"frozen": "int8", "group": "bfloat16", "optimizer": "adamw8bit"}
CASES = [
    {"name": "fp32 b8", "mode": "full_routing", **FP32, "batch": 8},
    {"name": "fp32 b32", "mode": "full_routing", **FP32, "batch": 32},
    {"name": "partial b8", "mode": "partial", **FP32, "batch": 8},
    {"name": "frozen bf16 b8", "mode": "full_routing", **FP32, "frozen": "bfloat16", "batch": 8},
    {"name": "frozen int8 b8", "mode": "full_routing", **FP32, "frozen": "int8", "batch": 8},
    {"name": "int8+bf16+8bit b8", "mode": "full_routing", **LOW, "ckpt": False, "batch": 8},
    {
        "name": "int8+fp32rows+8bit b8",
        "mode": "full_routing",
        **LOW,
        "group": "float32",
        "ckpt": False,
        "batch": 8,
    },
    {"name": "fp32+ckpt b32", "mode": "full_routing", **FP32, "ckpt": True, "batch": 32},
    {"name": "int8+bf16+8bit+ckpt b32", "mode": "full_routing", **LOW, "ckpt": True, "batch": 32},
    {
        "name": "int8+fp32rows+8bit+ckpt b32",
        "mode": "full_routing",
        **LOW,
        "group": "float32",
        "ckpt": True,
        "batch": 32,
    },
]
# On CPU bf16 matmuls (frozen experts or group rows) allocate fp32 work buffers the plan does
# not count (measured: +190 MiB at batch 8; the miner keeps both in fp32 on CPU), so the bf16
# cases are measured on CUDA only; on CPU the fp32-row cases check the 8-bit optimizer.
CUDA_ONLY = {"frozen bf16 b8", "int8+bf16+8bit b8", "int8+bf16+8bit+ckpt b32"}
QUICK = {"fp32 b8", "frozen int8 b8", "int8+fp32rows+8bit+ckpt b32", "int8+bf16+8bit+ckpt b32"}
SEQ = 128
STEPS = 4


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = _rss_bytes()
        self.running = True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(0.002)


def child(case: dict, device_name: str) -> dict:
    import torch

    from blockzero.data.batches import train_batches
    from blockzero.miner.plan import plan_memory
    from blockzero.model.group_training import TrainingMode, prepare_group_training
    from blockzero.model.loading import build_model, read_model_config
    from blockzero.model.training import InnerConfig, build_optimizer, train
    from blockzero.protocol.expert_groups import load_registry

    torch.set_num_threads(2)
    device = torch.device(device_name)
    cuda = device.type == "cuda"
    config = read_model_config(TINY)
    group = load_registry(ROOT / "configs" / "groups" / "tiny-qwen3-moe.yaml").group(0)
    inner = InnerConfig(optimizer=case["optimizer"])
    group_dtype = getattr(torch, case["group"])
    frozen = "bfloat16" if cuda and case["frozen"] == "float32" else case["frozen"]
    plan = plan_memory(
        config,
        group_size=group.size(0),
        mode=case["mode"],
        shared_precision="bfloat16" if cuda else "float32",
        frozen_precision=frozen,
        group_precision=case["group"],
        optimizer=case["optimizer"],
        checkpointing=case["ckpt"],
        batch_size=case["batch"],
        seq_len=SEQ,
        compute_bytes=2 if cuda else 4,
    )
    if case["optimizer"] != "adamw" or case["group"] != "float32":
        shapes = [(group.size(0), 2 * config.moe_intermediate_size, config.hidden_size)]
        shapes.append((group.size(0), config.hidden_size, config.moe_intermediate_size))
        warm = [
            torch.nn.Parameter(torch.zeros(s, dtype=group_dtype, device=device)) for s in shapes
        ]
        opt = build_optimizer(warm, inner)
        for p in warm:
            p.grad = torch.zeros_like(p)
        opt.step()
        del warm, opt
    data = torch.randint(4, config.vocab_size, (64, SEQ))
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
    sampler = _PeakSampler()
    base = _rss_bytes()
    sampler.start()
    model = build_model(config)
    gtm = prepare_group_training(
        model,
        group,
        TrainingMode(case["mode"]),
        frozen_dtype=getattr(torch, case["frozen"]),
        group_dtype=group_dtype,
        checkpointing=case["ckpt"],
    )
    if case["mode"] == "partial":
        del model
    if cuda:  # as the miner does (blockzero/miner/steps.py): frozen weights in bf16 on a GPU
        for p in gtm.model.parameters():
            if not p.requires_grad and p.dtype == torch.float32:
                p.data = p.data.to(torch.bfloat16)
    gtm.model.to(device)
    train(
        gtm.model,
        gtm.trainable_parameters(),
        train_batches(data, batch_size=case["batch"], seed=0),
        inner,
        max_steps=STEPS,
        device=device,
    )
    sampler.running = False
    sampler.join()
    measured = torch.cuda.max_memory_allocated(device) if cuda else sampler.peak - base
    return {**case, "device": device.type, "plan": plan.total_bytes, "measured": measured}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.5))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r["plan"] / 2**20 for r in rows], 0.4, label="plan")
    ax.bar([x + 0.2 for x in xs], [r["measured"] / 2**20 for r in rows], 0.4, label="measured")
    ax.set_xticks(list(xs), [r["name"] for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("MiB")
    ax.set_title(f"miner --plan vs measured peak, tiny model, {rows[0]['device']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    import torch

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", choices=["cuda", "cpu"], default=None)
    p.add_argument("--quick", action="store_true", help="three cases per device, not all")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=ROOT / "runs/bench/miner_plan.json")
    args = p.parse_args()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.child:
        print(json.dumps(child(json.loads(args.child), device)))
        return
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    print(f"{'case':26s} {'plan MiB':>9s} {'measured MiB':>13s} {'plan/measured':>14s}")
    rows = []
    for case in CASES:
        if (device == "cpu" and case["name"] in CUDA_ONLY) or (
            args.quick and case["name"] not in QUICK
        ):
            continue
        out = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(case), "--device", device],
            env=env,
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            sys.exit(f"case {case['name']} failed:\n{out.stderr[-3000:]}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        r["ratio"] = r["plan"] / r["measured"]
        rows.append(r)
        print(
            f"{r['name']:26s} {r['plan'] / 2**20:9.1f} {r['measured'] / 2**20:13.1f} "
            f"{r['ratio']:14.2f}",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"device": device, "seq_len": SEQ, "cases": rows}, indent=2))
    png = args.out.with_suffix(".png")
    plot(rows, png)
    worst = max(rows, key=lambda r: abs(r["ratio"] - 1))
    within = sum(abs(r["ratio"] - 1) <= 0.25 for r in rows)
    print(
        f"\nSUMMARY: {device}: plan/measured {min(r['ratio'] for r in rows):.2f}-"
        f"{max(r['ratio'] for r in rows):.2f}, {within}/{len(rows)} cases within 25% "
        f"(worst: {worst['name']} {worst['ratio']:.2f}) (JSON: {args.out}, plot: {png})"
    )


if __name__ == "__main__":
    main()

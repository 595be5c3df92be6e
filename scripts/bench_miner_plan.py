"""The `--plan` memory estimate against the measured peak, for the tiny model on this machine.

Each case runs in a fresh child process (so one case's allocations do not hide another's) with
glibc's mmap threshold lowered, so freed tensors go back to the OS and the resident set tracks
live tensors. The child samples its resident set every 2 ms while it builds the model, prepares
group training and runs a few training steps; the peak above the resident set before the model
was built is compared with the plan. On CUDA it uses `torch.cuda.max_memory_allocated` instead.

    python scripts/bench_miner_plan.py            # prints one line per case with the ratio
"""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "models" / "tiny-qwen3-moe.yaml"
CASES = [
    {"mode": "full_routing", "frozen": "float32", "batch": 8, "seq": 128},
    {"mode": "full_routing", "frozen": "float32", "batch": 32, "seq": 128},
    {"mode": "partial", "frozen": "float32", "batch": 8, "seq": 128},
    # On CPU bf16 expert matmuls allocate fp32 work buffers the plan does not count (the miner
    # holds frozen experts in fp32 on CPU); on CUDA this is the normal case.
    {"mode": "full_routing", "frozen": "bfloat16", "batch": 8, "seq": 128},
]
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


def child(case: dict) -> dict:
    import torch

    from blockzero.data.batches import train_batches
    from blockzero.miner.plan import plan_memory
    from blockzero.model.group_training import TrainingMode, prepare_group_training
    from blockzero.model.loading import build_model, read_model_config
    from blockzero.model.training import InnerConfig, train
    from blockzero.protocol.expert_groups import load_registry

    torch.set_num_threads(2)
    config = read_model_config(TINY)
    group = load_registry(ROOT / "configs" / "groups" / "tiny-qwen3-moe.yaml").group(0)
    data = torch.randint(4, config.vocab_size, (64, case["seq"]))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    plan = plan_memory(
        config,
        group_size=group.size(0),
        mode=case["mode"],
        shared_precision="bfloat16" if cuda else "float32",
        frozen_precision=case["frozen"],
        batch_size=case["batch"],
        seq_len=case["seq"],
        compute_bytes=2 if cuda else 4,
    )
    sampler = _PeakSampler()
    base = _rss_bytes()
    sampler.start()
    model = build_model(config)
    gtm = prepare_group_training(
        model, group, TrainingMode(case["mode"]), frozen_dtype=getattr(torch, case["frozen"])
    )
    if case["mode"] == "partial":
        del model
    batches = train_batches(data, batch_size=case["batch"], seed=0)
    gtm.model.to(device)
    train(
        gtm.model,
        gtm.trainable_parameters(),
        batches,
        InnerConfig(),
        max_steps=STEPS,
        device=device,
    )
    sampler.running = False
    sampler.join()
    measured = torch.cuda.max_memory_allocated() if cuda else sampler.peak - base
    return {**case, "device": device.type, "plan": plan.total_bytes, "measured": measured}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
        return
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    print(
        f"{'mode':13s} {'frozen':9s} {'batch':>5s} {'plan MiB':>9s} {'measured MiB':>13s} {'ratio':>6s}"
    )
    for case in CASES:
        out = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(case)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{r['mode']:13s} {r['frozen']:9s} {r['batch']:5d} {r['plan'] / 2**20:9.1f} "
            f"{r['measured'] / 2**20:13.1f} {r['plan'] / r['measured']:6.2f}  ({r['device']})"
        )


if __name__ == "__main__":
    main()

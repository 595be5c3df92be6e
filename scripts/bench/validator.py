"""Validator scoring throughput on the tiny model, next to the bare forward passes it is made of,
for several numbers of submissions M in one process, and what that means for the cycle's budget.

For each M, M synthetic submissions (random deltas, bf16, spread over the expert groups) are
committed to a local hub; the validator's pipeline then fetches and verifies them in its thread
pool while the main thread applies each delta in place, computes the per-sequence losses of its
group's domain and general sets, reverts and judges it. The baseline runs the same forward
passes on the same batches with nothing else. The two alternate `--repeats` times (best of each
kept), so machine load hits both alike. Reported per M: submissions scored per second, the
ratio scoring / bare (target <= 1.3), and the scoring time against the validate phase
(`validate` blocks of the protocol x `--block-time-s`), with the M that phase would hold at the
measured rate. The validate phase also holds base losses, merge, publish and weights, so the
scoring share must stay well below 100%.

    python scripts/bench/validator.py                          # M = 16 64 256, cuda if present
    python scripts/bench/validator.py --device cpu --submissions 4 8 --eval-sequences 8  # ~1 min

Writes runs/bench/validator.json and runs/bench/validator.png; the last line starts `SUMMARY:`.
"""

import argparse
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import matplotlib
import matplotlib.ticker
import torch
import yaml

from blockzero.delta.pseudo_gradient import global_norm
from blockzero.delta.submission import Expectation, SubmissionMeta, write_submission
from blockzero.hub.local_hub import LocalHub
from blockzero.model.evaluation import sequence_losses
from blockzero.model.group_rows import group_tensor_shapes, read_group_rows
from blockzero.model.loading import build_model, read_model_config
from blockzero.protocol.commitments import HashCommitment, RevealCommitment
from blockzero.protocol.config import ProtocolConfig
from blockzero.protocol.cycle import Phase
from blockzero.protocol.expert_groups import ExpertGroupRegistry, load_registry
from blockzero.validator import collect
from blockzero.validator.proof_of_loss import EvalSet, build_eval_set, judge
from blockzero.validator.scoring import ResidentScorer

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[2]
BASE = "0" * 40
BITTENSOR_BLOCK_TIME_S = 12.0
TARGET_RATIO = 1.3
T = TypeVar("T")


def _submissions(
    hub: LocalHub, scorer: ResidentScorer, registry: ExpertGroupRegistry, num: int, tmp: Path
) -> list[collect.Candidate]:
    """`num` committed and revealed random deltas; made on the CPU, as a miner's file is."""
    gen = torch.Generator().manual_seed(0)
    out = []
    for i in range(num):
        group = registry.groups[i % len(registry.groups)]
        rows = read_group_rows(scorer.adapter, group)
        delta = {k: torch.randn(v.shape, generator=gen) * 1e-3 for k, v in rows.items()}
        hotkey = f"miner-{i:03d}"
        meta = SubmissionMeta(base_revision=BASE, cycle=1, group=group.id, hotkey=hotkey, tokens=1)
        path = write_submission(tmp / "files" / f"{hotkey}.safetensors", delta, meta)
        repo = f"miners/m{i:03d}"
        hub.ensure_repo(repo)
        revision = hub.upload(repo, {collect.SUBMISSION_FILE: path}, "cycle 1")
        digest = hashlib.sha256(path.read_bytes()).digest()
        out.append(
            collect.Candidate(
                hotkey=hotkey,
                uid=i,
                group=group.id,
                hash=HashCommitment.bind(file_sha256=digest, hotkey=hotkey, cycle=1),
                hash_block=1,
                reveal=RevealCommitment(cycle=1, revision=revision, repo_id=repo),
            )
        )
    return out


class Bench:
    """The resident model, its evaluation sets and base losses, and the timed runs."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.registry = load_registry(ROOT / "configs" / "groups" / "tiny-qwen3-moe.yaml")
        model = build_model(read_model_config(ROOT / "configs" / "models" / "tiny-qwen3-moe.yaml"))
        self.scorer = ResidentScorer(model, batch_size=args.batch_size, device=args.device)
        # Token ids stay on the CPU like the validator's held-out data; `sequence_losses`
        # moves each batch to the model's device.
        gen = torch.Generator().manual_seed(1)
        held = {
            g.domain: torch.randint(4, 260, (4 * args.eval_sequences, args.seq_len), generator=gen)
            for g in self.registry.groups
        }
        self.eval_sets: dict[int, EvalSet] = {
            g.id: build_eval_set(g, held, seed=7, num_sequences=args.eval_sequences)
            for g in self.registry.groups
        }
        # The base losses are also the device's warm-up (kernels, allocator) before any timing.
        self.base = {g: self.scorer.eval_losses(s) for g, s in self.eval_sets.items()}
        adapter = self.scorer.adapter
        self.shapes = {g.id: group_tensor_shapes(adapter, g) for g in self.registry.groups}
        self.bounds = {
            g.id: 0.5 * global_norm(read_group_rows(adapter, g)) for g in self.registry.groups
        }

    def sync(self) -> None:
        if self.args.device.startswith("cuda"):
            torch.cuda.synchronize()

    def timed(self, fn: Callable[[], T]) -> tuple[float, T]:
        """Seconds of `fn` with the device's queue drained before and after."""
        self.sync()
        start = time.perf_counter()
        result = fn()
        self.sync()
        return time.perf_counter() - start, result

    def expect(self, c: collect.Candidate, codec: str) -> Expectation:
        meta = SubmissionMeta(
            base_revision=BASE, cycle=1, group=c.group, hotkey=c.hotkey, tokens=0, codec=codec
        )
        return Expectation(
            shapes=self.shapes[c.group], meta=meta, max_bytes=1 << 30, max_norm=self.bounds[c.group]
        )

    def bare(self, todo: list[collect.Candidate]) -> None:
        """The same forward passes on the same batches, and nothing else."""
        model, device, batch = self.scorer.model, self.scorer.device, self.args.batch_size
        for c in todo:
            s = self.eval_sets[c.group]
            sequence_losses(model, s.domain_seqs, batch_size=batch, device=device)
            sequence_losses(model, s.general_seqs, batch_size=batch, device=device)

    def scoring(self, hub: LocalHub, todo: list[collect.Candidate], work: Path) -> int:
        """Fetch + verify in the pool, apply + losses + revert + judge here; returns passes."""
        passed = 0
        for c, got in collect.fetch_all(
            hub,
            todo,
            work,
            self.expect,
            workers=self.args.workers,
            max_bytes=1 << 30,
            timeout_s=60,
            verify_in_pool=self.args.device != "cpu",
        ):
            assert isinstance(got, collect.Verified), got
            group = self.registry.group(c.group)
            domain, general = self.scorer.score(group, got.delta, self.eval_sets[c.group])
            b = self.base[c.group]
            j = judge(
                b[0], domain, b[1], general, significance=0.01, general_tolerance=0.01, min_gain=0
            )
            passed += j.passed
        return passed

    def run(self, hub: LocalHub, todo: list[collect.Candidate], work: Path) -> dict:
        bare, scoring, passed = [], [], 0
        for rep in range(self.args.repeats):
            bare.append(self.timed(lambda: self.bare(todo))[0])
            took, passed = self.timed(lambda rep=rep: self.scoring(hub, todo, work / f"dl{rep}"))
            scoring.append(took)
            shutil.rmtree(work / f"dl{rep}")
            print(
                f"M={len(todo)} run {rep}: bare {bare[-1]:.2f} s, scoring {scoring[-1]:.2f} s",
                flush=True,
            )
        return {"bare_s": min(bare), "scoring_s": min(scoring), "passed": passed}


def budget_s(protocol_path: Path, block_time_s: float) -> tuple[int, float]:
    """The validate phase in blocks (from the protocol file) and in seconds."""
    data = yaml.safe_load(protocol_path.read_text())
    schedule = ProtocolConfig.model_validate(data, context={"source": str(protocol_path)}).cycle
    blocks = schedule.phases[Phase.VALIDATE]
    return blocks, blocks * block_time_s


def _m_axis(ax: plt.Axes, ms: list[int]) -> None:
    """A log axis of M labelled with the measured M only."""
    ax.set_xscale("log")
    ax.set_xticks(ms, [str(m) for m in ms])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("submissions M")


def plot(result: dict, path: Path) -> None:
    runs = result["runs"]
    ms = [r["submissions"] for r in runs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(ms, [r["bare_per_s"] for r in runs], "o-", label="bare forward passes")
    left.plot(ms, [r["scoring_per_s"] for r in runs], "s-", label="validator scoring")
    _m_axis(left, ms)
    left.set_ylabel("submissions / s")
    left.set_title(f"throughput ({result['device_name']})")
    left.legend()
    right.plot(ms, [r["scoring_s"] for r in runs], "s-", label="scoring time")
    right.axhline(result["budget_s"], color="red", ls="--", label="validate phase")
    _m_axis(right, ms)
    right.set(yscale="log", ylabel="seconds")
    right.set_title(
        f"validate phase: {result['validate_blocks']} blocks x {result['block_time_s']:g} s"
    )
    right.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--eval-sequences", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu"
    )
    parser.add_argument(
        "--cpu-threads",
        type=int,
        default=1,
        help="torch threads on --device cpu; on shared, busy cores 2 threads measured 7x slower "
        "per forward than 1 (OpenMP threads spin waiting for each other)",
    )
    parser.add_argument("--protocol", type=Path, default=ROOT / "configs" / "protocol.yaml")
    parser.add_argument("--block-time-s", type=float, default=BITTENSOR_BLOCK_TIME_S)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench" / "validator.json")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device visible to torch; use --device cpu")
    if args.device == "cpu":
        torch.set_num_threads(args.cpu_threads)

    blocks, budget = budget_s(args.protocol, args.block_time_s)
    bench = Bench(args)
    device_name = (
        torch.cuda.get_device_name() if args.device == "cuda" else f"cpu x{torch.get_num_threads()}"
    )
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        hub = LocalHub(Path(tmp) / "hub")
        # One set of files for the largest M; each M scores its first M (the same mix of groups).
        every = _submissions(hub, bench.scorer, bench.registry, max(args.submissions), Path(tmp))
        for m in args.submissions:
            r = bench.run(hub, every[:m], Path(tmp) / f"m{m}")
            per_submission = r["scoring_s"] / m
            runs.append(
                {
                    "submissions": m,
                    **r,
                    "bare_per_s": m / r["bare_s"],
                    "scoring_per_s": m / r["scoring_s"],
                    "ratio": r["scoring_s"] / r["bare_s"],
                    "budget_fraction": r["scoring_s"] / budget,
                    "max_submissions_in_budget": int(budget / per_submission),
                }
            )
    result = {
        "device": args.device,
        "device_name": device_name,
        "eval_sequences": args.eval_sequences,
        "sequences_per_submission": 2 * args.eval_sequences,
        "seq_len": args.seq_len,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "repeats": args.repeats,
        "validate_blocks": blocks,
        "block_time_s": args.block_time_s,
        "budget_s": budget,
        "target_ratio": TARGET_RATIO,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    plot(result, args.out.with_suffix(".png"))

    tokens = 2 * args.eval_sequences * args.seq_len
    print(
        f"\n{device_name}: {2 * args.eval_sequences} sequences x {args.seq_len} tokens "
        f"({tokens} tokens) per submission, best of {args.repeats} alternating runs; "
        f"validate phase {blocks} blocks x {args.block_time_s:g} s = {budget:g} s"
    )
    print(
        f"{'M':>5} {'bare s':>8} {'scoring s':>9} {'bare/s':>8} {'scored/s':>8} "
        f"{'ratio':>6} {'phase':>6} {'M in phase':>10} {'passed':>6}"
    )
    for r in runs:
        print(
            f"{r['submissions']:>5} {r['bare_s']:>8.2f} {r['scoring_s']:>9.2f} "
            f"{r['bare_per_s']:>8.1f} {r['scoring_per_s']:>8.1f} {r['ratio']:>6.3f} "
            f"{100 * r['budget_fraction']:>5.1f}% {r['max_submissions_in_budget']:>10} "
            f"{r['passed']:>6}"
        )
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    cells = " ".join(
        f"M={r['submissions']}: {r['scoring_per_s']:.1f}/s ratio {r['ratio']:.2f} "
        f"{100 * r['budget_fraction']:.1f}% of phase;"
        for r in runs
    )
    print(
        f"SUMMARY: validator scoring on {device_name}, {2 * args.eval_sequences} x "
        f"{args.seq_len}-token sequences per submission: {cells} "
        f"validate phase {budget:g} s holds ~{runs[-1]['max_submissions_in_budget']} "
        f"submissions at the M={runs[-1]['submissions']} rate (target ratio <= {TARGET_RATIO})"
    )


if __name__ == "__main__":
    main()

"""Model staleness: what stale other-group experts cost in Proof-of-Loss acceptance, vs bytes.

A full-routing miner may hold the OTHER groups' expert shards up to S = `miner.max_stale_cycles`
cycles old (docs/miner.md "Model freshness"); its own group and the shared weights are exact.
This measures both sides of that trade on the tiny Qwen3-MoE, in one run:

* Trajectory: warm-up, then `--cycles` honest cycles. Each cycle every group is trained in
  full-routing mode by `--miners` miners from the current global model G_k; each delta goes
  through the bf16 codec and is judged by `judge` on that cycle's eval sets (`build_eval_set`
  from the held-out split, a fresh seed per cycle); accepted deltas are combined, stepped and
  gated exactly as `validator/loop.py` merges (`combine`, `step_group`, `gate`). Every G_k is kept.
* Probes (never merged): at cycle k, per group and `--probe-seeds` seeds, a miner trains from G_k
  with every other group's expert rows taken from an older model and its delta is judged against
  G_k like any submission. "worst S": all other groups from G_max(0,k-S), the bound itself.
  "policy S": each other group from the cycle the real fetch policy last refreshed it (below).
  A probe's data order depends on (k, group, seed) only, so S=0 and S>0 are paired.
* Bytes: each G_k is written with `write_model_dir` (bf16 and fp32 shards), uploaded to a local
  hub, and one miner per (group, S) runs the miner's own `update_model` (content-addressed cache,
  `files_to_fetch` refresh policy, `prune_cache`) every cycle; its `bytes_fetched` is reported.

Acceptance, gain and t are over cycles k >= 1 (at k = 0 nothing can be stale yet). A stale
probe can only differ from S=0 if other groups moved: the SUMMARY counts merged group steps and
says INCONCLUSIVE when none was. `--merge all` steps every honest delta without the gate, so
every group moves every cycle (on the shipped registry that trajectory degrades; see docs).

    python scripts/bench/staleness.py --device cuda            # defaults: ~85 s on one H200
    python scripts/bench/staleness.py --device cuda --merge all
    python scripts/bench/staleness.py --quick --device cpu     # small; 2 CPU cores, see docs
"""

import argparse
import copy
import hashlib
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import torch

from blockzero.data.batches import train_batches
from blockzero.data.domains import DomainCorpus, load_data_config, load_domains
from blockzero.data.tokenizer import byte_tokenizer
from blockzero.delta.codecs import make_codec
from blockzero.delta.outer import OuterConfig
from blockzero.delta.pseudo_gradient import global_norm, pseudo_gradient
from blockzero.global_model import CanonicalModel, ModelCache
from blockzero.hub.local_hub import LocalHub
from blockzero.miner.fetch import prune_cache, update_model
from blockzero.miner.state import HeldShard
from blockzero.model.families import MoEAdapter
from blockzero.model.group_rows import (
    GroupTensors,
    group_tensor_shapes,
    read_group_rows,
    write_group_rows,
)
from blockzero.model.group_training import TrainingMode, prepare_group_training
from blockzero.model.loading import build_model, read_model_config
from blockzero.model.shards import write_model_dir
from blockzero.model.training import InnerConfig, train
from blockzero.model.warmup import warm_up
from blockzero.protocol.commitments import ManifestCommitment
from blockzero.protocol.expert_groups import ExpertGroup, ExpertGroupRegistry, load_registry
from blockzero.protocol.manifest import MANIFEST_FILE, ModelManifest, group_shard, shard_file
from blockzero.publish import upload_model
from blockzero.settings import MinerSettings, ValidatorSettings
from blockzero.validator.evidence import Judgement, SubmissionRecord
from blockzero.validator.merge import Accepted, combine, gate, step_group
from blockzero.validator.proof_of_loss import (
    EvalSet,
    below_peers,
    build_eval_set,
    judge,
    sub_seed,
)
from blockzero.validator.records import accepted
from blockzero.validator.scoring import ResidentScorer

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[2]
REPO_ID = "bench/staleness"
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


@dataclass
class Bench:
    """Everything a cycle needs: data, registry, the validator's resident model and settings."""

    args: argparse.Namespace
    device: torch.device
    corpora: dict[str, DomainCorpus]
    registry: ExpertGroupRegistry
    scorer: ResidentScorer
    val: ValidatorSettings
    momentum: dict[str, torch.Tensor] = field(default_factory=dict)
    models: list[torch.nn.Module] = field(default_factory=list)


def train_miner(b: Bench, model: torch.nn.Module, group: ExpertGroup, seed: int) -> GroupTensors:
    """One miner's cycle as `miner.steps.train_group` runs it, for a step budget instead of a
    deadline (so CPU and GPU runs train the same amount): full routing, frozen experts at
    `--frozen-dtype`, delta = start - end sent through the miner's default codec (bf16)."""
    frozen = getattr(torch, b.args.frozen_dtype)
    gtm = prepare_group_training(
        copy.deepcopy(model), group, TrainingMode.FULL_ROUTING, frozen_dtype=frozen
    )
    start = {k: v.cpu() for k, v in gtm.group_tensors().items()}
    if b.device.type == "cuda":  # as train_group: the frozen shared weights in bf16 on a GPU
        for p in gtm.model.parameters():
            if not p.requires_grad and p.dtype == torch.float32:
                p.data = p.data.to(torch.bfloat16)
    gtm.model.to(b.device)
    train(
        gtm.model,
        gtm.trainable_parameters(),
        train_batches(
            b.corpora[group.domain].train, batch_size=b.args.batch_size, seed=seed % 2**63
        ),
        InnerConfig(lr=b.args.inner_lr),
        max_steps=b.args.inner_steps,
        device=b.device,
    )
    delta = pseudo_gradient(start, {k: v.cpu() for k, v in gtm.group_tensors().items()})
    codec = make_codec(MinerSettings().codec)
    return codec.decode(codec.encode(delta), group_tensor_shapes(MoEAdapter(model), group))


def judged(b: Bench, group: ExpertGroup, delta: GroupTensors, eval_set: EvalSet, base) -> Judgement:
    """The validator's verdict on `delta` against the resident model (G_k), as `loop.score`."""
    domain, general = b.scorer.score(group, delta, eval_set)
    return judge(
        base[0],
        domain,
        base[1],
        general,
        significance=b.val.significance,
        general_tolerance=b.val.general_tolerance,
        min_gain=b.val.min_gain,
    )


def record(hotkey: str, group: int, j: Judgement) -> SubmissionRecord:
    return SubmissionRecord(
        hotkey=hotkey, uid=None, group=group, reason=j.reason, detail=j.detail, judgement=j,
        score=j.score if j.passed else 0.0,
    )  # fmt: skip


def mixed_model(b: Bench, k: int, group: ExpertGroup, sources: dict[int, int]) -> torch.nn.Module:
    """G_k with each other group's expert rows from G_sources[id]; own group and shared exact."""
    model = copy.deepcopy(b.models[k])
    adapter = MoEAdapter(model)
    for other in b.registry.groups:
        src = sources.get(other.id, k)
        if other.id != group.id and src != k:
            write_group_rows(adapter, other, read_group_rows(MoEAdapter(b.models[src]), other))
    return model


def merge(b: Bench, deltas, records: list[SubmissionRecord], eval_sets, base) -> dict[int, str]:
    """`validator.loop.merge`: score-weighted, norm-clipped combine, outer step, then the gate.
    `--merge all` steps every honest delta (equal weights) and skips the gate, so every group
    moves every cycle whatever the forgetting rule and the gate say."""
    by_group: dict[int, list[Accepted]] = {}
    if b.args.merge == "all":
        chosen = [r.model_copy(update={"score": 1.0}) for r in records]
    else:
        chosen = accepted(below_peers(records, min_relative_gain=b.val.min_relative_gain)[0])
    for r in chosen:
        d = deltas[r.group, int(r.hotkey.removeprefix("miner-"))]
        by_group.setdefault(r.group, []).append(Accepted(r.hotkey, r.score, global_norm(d), d))
    outer = OuterConfig.from_momentum(b.val.outer_lr, b.val.outer_momentum)
    undo = {
        g: step_group(b.scorer, b.registry.group(g), combine(acc), b.momentum, outer)
        for g, acc in sorted(by_group.items())
    }
    if b.args.merge == "all":
        return {g: "kept: every honest delta, no gate" for g in undo}
    domain_base = {g: base[g][0] for g in eval_sets}
    return gate(
        b.scorer, undo, eval_sets, domain_base, b.momentum, tolerance=b.val.general_tolerance
    )


class FetchSim:
    """The miner's real fetch: local hub, content-addressed cache and held shards per miner."""

    def __init__(self, b: Bench, work: Path) -> None:
        self.b, self.work = b, work
        self.hub = LocalHub(work / "hub")
        self.held: dict[tuple[str, int, int], dict[str, HeldShard]] = {}
        self.bytes: dict[tuple[str, int, int], list[int]] = {}
        self.file_bytes: dict[str, dict[str, int]] = {}

    def publish(self, k: int, dtype: str) -> tuple[CanonicalModel, ModelManifest]:
        """Write G_k as the validator publishes it (`publish_model` minus the chain commit)."""
        out = self.work / f"model-{dtype}-{k}"
        manifest = write_model_dir(
            out, self.b.scorer.model, self.b.registry, cycle=k, dtype=DTYPES[dtype]
        )
        revision = upload_model(self.hub, f"{REPO_ID}-{dtype}", out, manifest)
        raw = (out / MANIFEST_FILE).read_bytes()
        commitment = ManifestCommitment(
            cycle=k,
            revision=revision,
            manifest_sha256=hashlib.sha256(raw).digest(),
            repo_id=f"{REPO_ID}-{dtype}",
        )
        self.file_bytes[dtype] = {n: e.bytes for n, e in manifest.files.items()}
        return CanonicalModel(publisher="bench", commitment=commitment, block=k), manifest

    def cycle(self, k: int) -> dict[tuple[int, int], dict[int, int]]:
        """Every simulated miner fetches G_k; returns (S, group) -> source cycle per other group."""
        sources: dict[tuple[int, int], dict[int, int]] = {}
        for dtype in DTYPES:
            canon, manifest = self.publish(k, dtype)
            for s in self.b.args.staleness:
                for g in self.b.registry.groups:
                    key = (dtype, s, g.id)
                    cache = ModelCache(self.work / "miners" / f"{dtype}-{s}-{g.id}")
                    held = self.held.setdefault(key, {})
                    local = update_model(
                        cache, self.hub, canon, manifest, held,
                        group_id=g.id, cycle=k, max_stale_cycles=s,
                    )  # fmt: skip
                    prune_cache(cache, held)
                    self.bytes.setdefault(key, []).append(local.bytes_fetched)
                    if dtype == "fp32":
                        sources[s, g.id] = {
                            o.id: held[shard_file(group_shard(o.id))].cycle
                            for o in self.b.registry.groups
                        }
        return sources


def setup(args: argparse.Namespace) -> Bench:
    device, t0 = torch.device(args.device), time.monotonic()
    corpora = load_domains(load_data_config(ROOT / "configs/data/local.yaml"), byte_tokenizer())
    registry = load_registry(ROOT / "configs/groups/tiny-qwen3-moe.yaml")
    model = build_model(read_model_config(ROOT / "configs/models/tiny-qwen3-moe.yaml")).to(device)
    t1 = time.monotonic()
    warm = warm_up(model, corpora, steps=args.warmup_steps, batch_size=16, device=device)
    print(
        f"data {t1 - t0:.0f} s; warm-up {args.warmup_steps} steps {warm.seconds:.0f} s, "
        f"loss {warm.loss_start:.3f} -> {warm.loss_end:.3f} on {device}",
        flush=True,
    )
    model.requires_grad_(False)
    val = ValidatorSettings(eval_sequences=args.eval_sequences)
    scorer = ResidentScorer(model, batch_size=val.batch_size, device=str(device))
    return Bench(args, device, corpora, registry, scorer, val)


def run_cycle(b: Bench, k: int, fetch: FetchSim) -> tuple[dict, list[dict]]:
    args, groups = b.args, b.registry.groups
    b.models.append(copy.deepcopy(b.scorer.model))
    policy = fetch.cycle(k)
    held_out = {d: c.held_out for d, c in b.corpora.items()}
    seed = sub_seed(args.seed, "eval", k)
    eval_sets = {
        g.id: build_eval_set(g, held_out, seed=seed, num_sequences=b.val.eval_sequences)
        for g in groups
    }
    base = {g: b.scorer.eval_losses(s) for g, s in eval_sets.items()}
    deltas = {
        (g.id, m): train_miner(b, b.models[k], g, sub_seed(args.seed, "honest", k, g.id, m))
        for g in groups
        for m in range(args.miners)
    }
    records = [
        record(f"miner-{m}", g, judged(b, b.registry.group(g), d, eval_sets[g], base[g]))
        for (g, m), d in deltas.items()
    ]
    probes = run_probes(b, k, policy, eval_sets, base, records)
    outcome = merge(b, deltas, records, eval_sets, base)
    peers, _ = below_peers(records, min_relative_gain=b.val.min_relative_gain)
    mean_base = {g: statistics.fmean(v[0]) for g, v in base.items()}
    honest = {
        "cycle": k,
        "domain_loss_before": mean_base,
        "accepted": len(accepted(peers)),
        "submitted": len(records),
        "gains": [r.judgement.domain_gain for r in records],
        "t": [r.judgement.t for r in records],
        "gate": outcome,
    }
    print(
        f"cycle {k}: honest accepted {honest['accepted']}/{honest['submitted']}, "
        f"mean gain {statistics.fmean(g or 0.0 for g in honest['gains']):.4f}; domain loss "
        + " ".join(f"{g}:{v:.4f}" for g, v in mean_base.items())
        + f"; {sum(o.startswith('kept') for o in outcome.values())} groups merged",
        flush=True,
    )
    return honest, probes


def probe_row(b: Bench, j: Judgement, group: int, honest: list[SubmissionRecord]) -> dict:
    """The probe's verdict as one more submission of its group: judge, then `below_peers`."""
    mine = record("probe", group, j)
    final = below_peers([*honest, mine], min_relative_gain=b.val.min_relative_gain)[0][-1]
    return {
        "passed_judge": j.passed,
        "accepted": final.reason is None and final.score > 0,
        "significant": j.t is not None and j.t > j.t_critical,
        "gain": j.domain_gain if j.domain_gain is not None else float("nan"),
        "t": j.t if j.t is not None else float("nan"),
        "general_change": j.general_change,
        "reason": final.reason.value if final.reason else None,
    }


def run_probes(b: Bench, k: int, policy, eval_sets, base, honest) -> list[dict]:
    """Every probe of cycle k; identical (group, sources, seed) are trained once."""
    done: dict[tuple, Judgement] = {}
    rows = []
    for g in b.registry.groups:
        peers = [r for r in honest if r.group == g.id]
        for s in b.args.staleness:
            variants = {"worst": {o.id: max(0, k - s) for o in b.registry.groups}}
            if b.args.policy:
                variants["policy"] = policy[s, g.id]
            for variant, sources in variants.items():
                others = {o: c for o, c in sources.items() if o != g.id}
                for p in range(b.args.probe_seeds):
                    key = (g.id, tuple(sorted(others.items())), p)
                    if key not in done:
                        model = mixed_model(b, k, g, others)
                        delta = train_miner(b, model, g, sub_seed(b.args.seed, "probe", k, g.id, p))
                        done[key] = judged(b, g, delta, eval_sets[g.id], base[g.id])
                    rows.append(
                        {
                            "cycle": k, "group": g.id, "S": s, "variant": variant, "seed": p,
                            "age": statistics.fmean(k - c for c in others.values()),
                            **probe_row(b, done[key], g.id, peers),
                        }
                    )  # fmt: skip
    print(f"cycle {k}: {len(done)} probe trainings, {len(rows)} probe verdicts", flush=True)
    return rows


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def summarize(args, probes: list[dict], fetch: FetchSim) -> dict:
    """Per (variant, S): acceptance, gain and t over cycles >= 1, paired vs S=0 of that variant."""
    steady = [r for r in probes if r["cycle"] >= 1] or probes
    ref = {(r["variant"], r["cycle"], r["group"], r["seed"]): r for r in steady if r["S"] == 0}
    out: dict[str, list[dict]] = {}
    for variant in sorted({r["variant"] for r in steady}):
        for s in args.staleness:
            rs = [r for r in steady if r["variant"] == variant and r["S"] == s]
            pairs = [(r, ref[variant, r["cycle"], r["group"], r["seed"]]) for r in rs]
            diff = [r["gain"] - z["gain"] for r, z in pairs]
            out.setdefault(variant, []).append(
                {
                    "S": s,
                    "num_probes": len(rs),
                    "mean_age": statistics.fmean(r["age"] for r in rs),
                    "acceptance": statistics.fmean(r["accepted"] for r in rs),
                    "pass_judge": statistics.fmean(r["passed_judge"] for r in rs),
                    "significant": statistics.fmean(r["significant"] for r in rs),
                    "general_change_mean": statistics.fmean(r["general_change"] for r in rs),
                    "gain_mean": statistics.fmean(r["gain"] for r in rs),
                    "gain_std": statistics.pstdev(r["gain"] for r in rs),
                    "t_mean": statistics.fmean(r["t"] for r in rs),
                    "t_std": statistics.pstdev(r["t"] for r in rs),
                    "paired_gain_diff": statistics.fmean(diff),
                    "paired_gain_diff_sem": statistics.stdev(diff) / len(diff) ** 0.5
                    if len(diff) > 1
                    else 0.0,
                }
            )
        zero = next(r for r in out[variant] if r["S"] == 0)
        for r in out[variant]:
            r["acceptance_vs_s0"] = ratio(r["acceptance"], zero["acceptance"])
            r["gain_ratio"] = ratio(r["gain_mean"], zero["gain_mean"])
            r["t_ratio"] = ratio(r["t_mean"], zero["t_mean"])
    return {"probes": out, "bytes": bytes_table(args, fetch)}


def bytes_table(args, fetch: FetchSim) -> dict[str, list[dict]]:
    """Measured `update_model` bytes per cycle (mean over groups), next to the docs' formula."""
    table: dict[str, list[dict]] = {}
    groups = sorted({g for _, _, g in fetch.bytes})
    for dtype, sizes in fetch.file_bytes.items():
        experts = sum(v for n, v in sizes.items() if n.startswith("group-"))
        own = experts / len(groups)
        for s in args.staleness:
            per = [
                statistics.fmean(fetch.bytes[dtype, s, g][k] for g in groups)
                for k in range(args.cycles)
            ]
            later = per[1:] or per
            table.setdefault(dtype, []).append(
                {
                    "S": s,
                    "first_cycle": per[0],
                    "per_cycle": per,
                    "steady_mean": statistics.fmean(later),
                    "formula": own + (experts - own) / (s + 1),
                    "file_bytes": sizes,
                }
            )  # fmt: skip
        zero = table[dtype][0]["steady_mean"]
        for r in table[dtype]:
            r["vs_s0"] = ratio(r["steady_mean"], zero)
    return table


def report(result: dict) -> None:
    print(f"\n{'variant':8} {'S':>2} {'age':>5} {'n':>4} {'accept':>7} {'t>crit':>7} "
          f"{'gain (std)':>18} {'t (std)':>14} {'gain/S0':>8} {'paired dgain (sem)':>20} "
          f"{'general':>8}")  # fmt: skip
    for variant, rows in result["summary"]["probes"].items():
        for r in rows:
            print(
                f"{variant:8} {r['S']:2d} {r['mean_age']:5.2f} {r['num_probes']:4d} "
                f"{100 * r['acceptance']:6.1f}% {100 * r['significant']:6.1f}% "
                f"{r['gain_mean']:8.4f} ({r['gain_std']:.4f}) "
                f"{r['t_mean']:6.2f} ({r['t_std']:.2f}) {r['gain_ratio']:8.3f} "
                f"{r['paired_gain_diff']:+9.4f} ({r['paired_gain_diff_sem']:.4f}) "
                f"{r['general_change_mean']:+8.4f}"
            )
    print(
        f"\n{'shards':6} {'S':>2} {'first cycle':>12} {'later (mean)':>13} {'vs S=0':>7} {'formula':>10}"
    )
    for dtype, rows in result["summary"]["bytes"].items():
        for r in rows:
            print(
                f"{dtype:6} {r['S']:2d} {r['first_cycle'] / 1e6:10.2f}MB "
                f"{r['steady_mean'] / 1e6:11.2f}MB {100 * r['vs_s0']:6.1f}% "
                f"{r['formula'] / 1e6:8.2f}MB"
            )


def plot(result: dict, path: Path) -> None:
    probes, nbytes = result["summary"]["probes"], result["summary"]["bytes"]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 4.5))
    for variant, rows in probes.items():
        s = [r["S"] for r in rows]
        ax1.plot(s, [100 * r["acceptance"] for r in rows], marker="o", label=f"{variant}")
        ax2.errorbar(
            s, [r["gain_mean"] for r in rows], yerr=[r["gain_std"] for r in rows],
            marker="o", capsize=3, label=f"{variant} (std over probes)",
        )  # fmt: skip
    ax1.set_ylim(0, 105)
    ax1.set_ylabel("probe deltas accepted (%)")
    ax2.set_ylabel("mean domain gain (nats)")
    for dtype, rows in nbytes.items():
        s = [r["S"] for r in rows]
        ax3.plot(s, [r["steady_mean"] / 1e6 for r in rows], marker="o", label=f"{dtype} measured")
        ax3.plot(s, [r["formula"] / 1e6 for r in rows], ls=":", label=f"{dtype} formula")
    ax3.set_ylabel("MB fetched per cycle (cycles >= 1)")
    for ax in (ax1, ax2, ax3):
        ax.set_xlabel("max_stale_cycles S")
        ax.legend()
    fig.suptitle("staleness of other groups' experts: Proof-of-Loss acceptance vs download bytes")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def summary_line(result: dict) -> str:
    probes, bf16 = result["summary"]["probes"], result["summary"]["bytes"]["bf16"]
    worst = {r["S"]: r for r in probes["worst"]}
    parts = [
        f"S={s} keeps {100 * r['acceptance_vs_s0']:.0f}% of S=0's acceptance "
        f"({100 * r['acceptance']:.0f}% vs {100 * worst[0]['acceptance']:.0f}%), "
        f"{100 * r['gain_ratio']:.0f}% of its gain (t {r['t_mean']:.1f} vs "
        f"{worst[0]['t_mean']:.1f}) at {100 * b['vs_s0']:.0f}% of the bytes"
        for (s, r), b in zip(sorted(worst.items()), bf16, strict=True)
        if s > 0
    ]
    line = "worst case (all other groups S cycles old): " + "; ".join(parts)
    if "policy" in probes:
        line += "; real fetch policy: " + ", ".join(
            f"S={r['S']} (mean age {r['mean_age']:.2f}) {100 * r['acceptance_vs_s0']:.0f}% "
            f"acceptance, {100 * r['gain_ratio']:.0f}% gain"
            for r in probes["policy"]
            if r["S"] > 0
        )
    # Only merges before the last cycle can make a probe's other groups stale.
    moved = sum(o.startswith("kept") for h in result["honest"][:-1] for o in h["gate"].values())
    possible = (len(result["honest"]) - 1) * len(result["honest"][0]["domain_loss_before"])
    head = f"{moved} of {possible} group steps merged before the last cycle"
    if moved == 0:
        head = f"INCONCLUSIVE, {head}: no other group moved, so nothing was stale"
    return f"{head}; {line}"


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--warmup-steps", type=int, default=600)
    p.add_argument("--cycles", type=int, default=4)
    p.add_argument("--staleness", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--miners", type=int, default=2, help="honest miners per group per cycle")
    p.add_argument("--probe-seeds", type=int, default=4, help="probe miners per group and S")
    p.add_argument(
        "--merge",
        choices=["validator", "all"],
        default="validator",
        help="validator: accepted deltas, gated (loop.merge); all: every honest delta, no gate",
    )
    p.add_argument("--no-policy", dest="policy", action="store_false", help="worst-case S only")
    p.add_argument("--inner-steps", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--inner-lr", type=float, default=3e-3)
    p.add_argument(
        "--frozen-dtype",
        default=None,
        help="frozen experts' dtype; default: the miner's (bfloat16) on cuda, float32 on cpu "
        "(bf16 matmuls are ~30%% slower than fp32 on a CPU)",
    )
    p.add_argument("--eval-sequences", type=int, default=ValidatorSettings().eval_sequences)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--quick",
        action="store_true",
        help="CPU preset: 3 cycles, 2 probe seeds, 20 warm-up, 4 inner steps of batch 4, "
        "16 eval sequences",
    )
    p.add_argument("--out", type=Path, default=Path("runs/bench/staleness.json"))
    args = p.parse_args()
    if 0 not in args.staleness:
        p.error("--staleness must include 0, the reference")
    if args.quick:
        args.cycles, args.probe_seeds, args.warmup_steps = 3, 2, 20
        args.inner_steps, args.batch_size, args.eval_sequences = 4, 4, 16
    if args.frozen_dtype is None:
        args.frozen_dtype = MinerSettings().frozen_dtype if "cuda" in args.device else "float32"
    args.staleness = sorted(set(args.staleness))
    torch.set_num_threads(args.threads)
    started, load_start = time.monotonic(), os.getloadavg()
    b = setup(args)
    warm_s = time.monotonic() - started
    honest, probes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        fetch = FetchSim(b, Path(tmp))
        for k in range(args.cycles):
            h, pr = run_cycle(b, k, fetch)
            honest.append(h)
            probes.extend(pr)
        summary = summarize(args, probes, fetch)
    result = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "device": str(b.device),
        "validator": {"significance": b.val.significance, "eval_sequences": b.val.eval_sequences,
                      "general_tolerance": b.val.general_tolerance},
        "honest": honest,
        "probes": probes,
        "summary": summary,
        "warmup_s": warm_s,
        "total_s": time.monotonic() - started,
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
    }  # fmt: skip
    report(result)
    n_steady = sum(r["cycle"] >= 1 for r in probes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    png = args.out.with_suffix(".png")
    plot(result, png)
    print(
        f"\nSUMMARY: {summary_line(result)} (bytes: bf16 shards, miner's update_model; {n_steady} probe verdicts over cycles >= 1 of "
        f"{args.cycles}; {result['total_s']:.0f} s on {b.device}; JSON: {args.out}, plot: {png})"
    )


if __name__ == "__main__":
    main()

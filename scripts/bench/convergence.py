"""Quality: BlockZero against centralized and data-parallel anchors at equal training tokens.

Per seed, the tiny Qwen3-MoE is warmed up on the local domains (code, prose, math), expert groups
are selected from its routing (`blockzero.owner`), and every arm starts from that warm model:

  base       the warm model itself (e)
  fft        centralized full fine-tuning of all parameters, one run per domain (a)
  fft_mix    the same on the mixture of domains, one model
  esft       centralized expert-specialized fine-tuning: each domain's group trained alone
             (full routing) for the tokens its miners get, the groups' rows then combined (b)
  blockzero  M miners per group, K cycles of H inner steps, each delta judged by Proof-of-Loss,
             accepted ones combined and stepped with the DiLoCo outer step, then the merge gate:
             the validator's own functions (`blockzero.validator`) (c)
  diloco_dp  data-parallel DiLoCo: G x M workers each train the whole model on the mixture (d)
  sync       synchronous training with G x M times the batch for the same K x H steps

Equal tokens: every arm trains on M x K x H x batch sequences per domain. Reported per arm and
domain: held-out loss, gain (base - loss), and forgetting: the mean loss change on the other
domains caused by the update aimed at one domain (for esft and blockzero, that group's rows alone
applied to the base; for fft, that domain's model). Bytes sent per worker per cycle are compared
with per-step gradient synchronization. The sweep varies one recipe setting at a time (H at
constant K x H, inner lr, outer lr and momentum, miners per group, group selection, the
validators' forgetting tolerance), BlockZero only, on every seed.

Results are appended as JSON lines (one per job) under --out-dir, so several processes (one per
seed, say) can run at once and a killed run keeps what it finished; the report reads them all:

    python scripts/bench/convergence.py                          # all seeds, all jobs, report
    python scripts/bench/convergence.py --seeds 1 --jobs sweep   # one shard, no report
    python scripts/bench/convergence.py --report-only            # report what is there
    python scripts/bench/convergence.py --quick                  # a CPU smoke run
"""

import argparse
import copy
import json
import math
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import torch
from pydantic import BaseModel, ConfigDict

from blockzero.data.batches import train_batches
from blockzero.data.domains import DomainCorpus, load_data_config, load_domains
from blockzero.data.tokenizer import byte_tokenizer
from blockzero.delta.outer import OuterConfig, outer_step
from blockzero.delta.pseudo_gradient import global_norm, pseudo_gradient
from blockzero.model.evaluation import sequence_losses
from blockzero.model.families import MoEAdapter
from blockzero.model.group_rows import (
    GroupTensors,
    add_to_group_rows,
    group_tensor_shapes,
    read_group_rows,
)
from blockzero.model.group_training import prepare_group_training
from blockzero.model.loading import build_model, read_model_config
from blockzero.model.training import InnerConfig, train
from blockzero.model.warmup import mixed_batches, warm_up
from blockzero.owner.profile import GENERAL, profile_domains
from blockzero.owner.select import select_experts
from blockzero.protocol.expert_groups import ExpertGroup, ExpertGroupRegistry, contiguous_registry
from blockzero.settings import ValidatorSettings
from blockzero.validator.merge import Accepted, combine, gate, step_group
from blockzero.validator.proof_of_loss import build_eval_set, judge
from blockzero.validator.proof_of_loss import sub_seed as _sub_seed
from blockzero.validator.scoring import ResidentScorer

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[2]
ARMS = ["base", "esft", "blockzero", "fft", "fft_mix", "diloco_dp", "sync"]
GAIN_TARGET = 0.9  # BlockZero's gain per domain vs ESFT's
BYTES_TARGET = 100.0  # fewer bytes per worker than per-step synchronization
VALIDATOR = ValidatorSettings.model_fields


class Recipe(BaseModel):
    """One BlockZero training recipe; the defaults are the issue's starting point."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cycles: int = 3
    inner_steps: int = 30
    miners: int = 2
    batch_size: int = 8
    inner_lr: float = 3e-3
    outer_lr: float = 0.7
    outer_momentum: float = 0.9
    groups: str = "selected"
    general_tolerance: float = VALIDATOR["general_tolerance"].default

    @property
    def steps_per_domain(self) -> int:
        return self.miners * self.cycles * self.inner_steps

    def outer(self) -> OuterConfig:
        return OuterConfig.from_momentum(self.outer_lr, self.outer_momentum)


def sweep(base: Recipe) -> dict[str, Recipe]:
    """One setting changed at a time; H keeps K x H (the tokens) constant where it divides."""
    k_h = base.cycles * base.inner_steps
    h_values = sorted(
        {h for h in (base.inner_steps // 3, base.inner_steps * 3) if h and not k_h % h}
    )
    variants: dict[str, dict] = {f"H={h}": {"inner_steps": h, "cycles": k_h // h} for h in h_values}
    variants |= {
        f"inner_lr={lr:g}": {"inner_lr": lr} for lr in (base.inner_lr / 3, base.inner_lr * 3)
    }
    for lr, mu in ((1.0, 0.0), (0.4, 0.9), (0.8, 0.5)):
        variants[f"outer={lr:g}/{mu:g}"] = {"outer_lr": lr, "outer_momentum": mu}
    variants |= {f"miners={m}": {"miners": m} for m in (1, 2 * base.miners)}
    variants["groups=contiguous"] = {"groups": "contiguous"}
    variants["tolerance=0.03"] = {"general_tolerance": 0.03}
    return {name: base.model_copy(update=v) for name, v in variants.items()}


class Setting:
    """Everything one seed's jobs share: data, the warm model, its groups, the held-out splits."""

    def __init__(self, args: argparse.Namespace, seed: int, corpora: dict[str, DomainCorpus]):
        self.seed, self.device, self.corpora = seed, torch.device(args.device), corpora
        self.warm = warm_model(args, seed, corpora, self.device)
        adapter = MoEAdapter(self.warm)
        self.params_total = sum(p.numel() for p in self.warm.parameters())
        profiles = profile_domains(
            self.warm, corpora, num_sequences=args.profile_sequences, seed=seed, device=self.device
        )
        selection = select_experts(
            {d: p for d, p in profiles.items() if d != GENERAL}, profiles[GENERAL]
        )
        self.registries: dict[str, ExpertGroupRegistry] = {
            "selected": selection.registry,
            "contiguous": contiguous_registry(
                num_experts=adapter.num_experts,
                top_k=adapter.top_k,
                moe_layers=adapter.moe_layer_indices,
                domains=list(corpora),
                group_size=selection.group_size,
            ),
        }
        # Held-out data split in two: a fixed report set per domain, and the pool Proof-of-Loss
        # draws its per-cycle samples from, so the gate never sees the sequences we report on.
        self.report: dict[str, torch.Tensor] = {}
        self.pol_pool: dict[str, torch.Tensor] = {}
        for d, c in corpora.items():
            order = torch.randperm(len(c.held_out), generator=torch.Generator().manual_seed(seed))
            n = min(args.report_sequences, len(order) // 2)
            self.report[d], self.pol_pool[d] = c.held_out[order[:n]], c.held_out[order[n:]]
        self.base = self.losses(self.warm)

    def losses(self, model: torch.nn.Module) -> dict[str, float]:
        return {
            d: sequence_losses(model, s, batch_size=64, device=self.device).mean().item()
            for d, s in self.report.items()
        }

    def groups(self, recipe: Recipe) -> list[ExpertGroup]:
        return [g for g in self.registries[recipe.groups].groups if g.domain in self.corpora]

    def copy(self) -> torch.nn.Module:
        return copy.deepcopy(self.warm).requires_grad_(True)


def warm_model(
    args: argparse.Namespace, seed: int, corpora: dict[str, DomainCorpus], device: torch.device
) -> torch.nn.Module:
    """Warm once per seed and device; cached so parallel shards of one seed share a base."""
    model = build_model(read_model_config(ROOT / args.model), seed=seed).to(device)
    cache = (
        args.cache_dir or args.out_dir
    ) / f"warm-seed{seed}-steps{args.warmup_steps}-{device.type}.pt"
    if cache.exists():
        model.load_state_dict(torch.load(cache, map_location=device))
    else:
        warm_up(model, corpora, steps=args.warmup_steps, batch_size=16, seed=seed, device=device)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        torch.save(model.state_dict(), tmp)
        tmp.replace(cache)
    return model.requires_grad_(False).eval()


def sub_seed(*parts: object) -> int:
    """Proof-of-Loss's seed derivation, kept small enough for `seed + i` in torch generators."""
    return _sub_seed(*parts) % 2**62


def inner(recipe: Recipe) -> InnerConfig:
    return InnerConfig(lr=recipe.inner_lr)


def train_whole(
    s: Setting, model: torch.nn.Module, batches: Iterator[torch.Tensor], recipe: Recipe, steps: int
) -> torch.nn.Module:
    model.requires_grad_(True)
    train(model, list(model.parameters()), batches, inner(recipe), max_steps=steps, device=s.device)
    return model.requires_grad_(False).eval()


def train_group(
    s: Setting, start: torch.nn.Module, group: ExpertGroup, recipe: Recipe, steps: int, seed: int
) -> GroupTensors:
    """A miner's work: the group's pseudo-gradient (start - end) after `steps` inner steps."""
    wrapped = prepare_group_training(copy.deepcopy(start), group)
    before = wrapped.group_tensors()
    batches = train_batches(s.corpora[group.domain].train, batch_size=recipe.batch_size, seed=seed)
    train(
        wrapped.model,
        wrapped.trainable_parameters(),
        batches,
        inner(recipe),
        max_steps=steps,
        device=s.device,
    )
    return pseudo_gradient(before, wrapped.group_tensors())


def isolated(s: Setting, group: ExpertGroup, delta: GroupTensors) -> dict[str, float]:
    """Each domain's loss change from one group's update alone, applied to the base."""
    model = copy.deepcopy(s.warm)
    add_to_group_rows(MoEAdapter(model), group, delta, alpha=-1.0)
    after = s.losses(model)
    return {d: after[d] - s.base[d] for d in after}


def forgetting(changes: dict[str, dict[str, float]]) -> dict[str, float]:
    """Per trained domain: mean loss change on the other domains (positive = forgot)."""
    return {
        d: statistics.fmean(v for o, v in change.items() if o != d) for d, change in changes.items()
    }


def job_fft(s: Setting, recipe: Recipe) -> dict:
    changes, own = {}, {}
    for i, (d, c) in enumerate(s.corpora.items()):
        batches = train_batches(
            c.train, batch_size=recipe.batch_size, seed=sub_seed(s.seed, "fft", i)
        )
        after = s.losses(train_whole(s, s.copy(), batches, recipe, recipe.steps_per_domain))
        changes[d] = {o: after[o] - s.base[o] for o in after}
        own[d] = after[d]
    return {"losses": own, "forgetting": forgetting(changes), "changes": changes}


def job_fft_mix(s: Setting, recipe: Recipe) -> dict:
    steps = recipe.steps_per_domain * len(s.corpora)
    batches = mixed_batches(s.corpora, batch_size=recipe.batch_size, seed=sub_seed(s.seed, "mix"))
    return {"losses": s.losses(train_whole(s, s.copy(), batches, recipe, steps))}


def job_esft(s: Setting, recipe: Recipe) -> dict:
    model, changes = copy.deepcopy(s.warm), {}
    for g in s.groups(recipe):
        delta = train_group(
            s, s.warm, g, recipe, recipe.steps_per_domain, sub_seed(s.seed, "esft", g.id)
        )
        changes[g.domain] = isolated(s, g, delta)
        add_to_group_rows(MoEAdapter(model), g, delta, alpha=-1.0)
    return {"losses": s.losses(model), "forgetting": forgetting(changes), "changes": changes}


def job_blockzero(s: Setting, recipe: Recipe, args: argparse.Namespace) -> dict:
    """K cycles of the real miner/validator path: train, judge, combine, outer step, gate."""
    groups = s.groups(recipe)
    registry = s.registries[recipe.groups]
    scorer = ResidentScorer(copy.deepcopy(s.warm), batch_size=64, device=str(s.device))
    momentum: dict[str, torch.Tensor] = {}
    significance = VALIDATOR["significance"].default
    tolerance = recipe.general_tolerance
    cycles, judged = [], []
    for cycle in range(recipe.cycles):
        seed = sub_seed(s.seed, "cycle", cycle)
        eval_sets = {
            g.id: build_eval_set(g, s.pol_pool, seed=seed, num_sequences=args.eval_sequences)
            for g in groups
        }
        base = {g: scorer.eval_losses(e) for g, e in eval_sets.items()}
        accepted: dict[int, list[Accepted]] = {}
        for g in groups:
            for m in range(recipe.miners):
                delta = train_group(
                    s, scorer.model, g, recipe, recipe.inner_steps, sub_seed(seed, g.id, m)
                )
                domain, general = scorer.score(g, delta, eval_sets[g.id])
                j = judge(
                    base[g.id][0],
                    domain,
                    base[g.id][1],
                    general,
                    significance=significance,
                    general_tolerance=tolerance,
                )
                judged.append(
                    {
                        "cycle": cycle,
                        "group": g.id,
                        "passed": j.passed,
                        "gain": j.domain_gain,
                        "t": j.t,
                    }
                )
                if j.passed:
                    accepted.setdefault(g.id, []).append(
                        Accepted(f"miner-{m}", j.score, global_norm(delta), delta)
                    )
        stepped = {
            g: step_group(scorer, registry.group(g), combine(acc), momentum, recipe.outer())
            for g, acc in sorted(accepted.items())
        }
        outcome = gate(
            scorer,
            stepped,
            eval_sets,
            {g: b[0] for g, b in base.items()},
            momentum,
            tolerance=tolerance,
        )
        cycles.append(
            {"losses": s.losses(scorer.model), "gate": {str(g): o for g, o in outcome.items()}}
        )
    changes = {
        g.domain: isolated(
            s,
            g,
            pseudo_gradient(
                read_group_rows(MoEAdapter(s.warm), g), read_group_rows(scorer.adapter, g)
            ),
        )
        for g in groups
    }
    return {
        "losses": s.losses(scorer.model),
        "forgetting": forgetting(changes),
        "changes": changes,
        "per_cycle": cycles,
        "judgements": judged,
        "acceptance": statistics.fmean(j["passed"] for j in judged),
    }


def job_diloco_dp(s: Setting, recipe: Recipe) -> dict:
    """Every worker trains the whole model on the mixture; mean delta, Nesterov outer step."""
    workers = recipe.miners * len(s.corpora)
    model = copy.deepcopy(s.warm)
    params = dict(model.named_parameters())
    momentum: GroupTensors = {}
    cycles = []
    for cycle in range(recipe.cycles):
        deltas = []
        for w in range(workers):
            batches = mixed_batches(
                s.corpora, batch_size=recipe.batch_size, seed=sub_seed(s.seed, "dp", cycle, w)
            )
            worker = train_whole(s, copy.deepcopy(model), batches, recipe, recipe.inner_steps)
            end = dict(worker.named_parameters())
            deltas.append({n: (p - end[n]).detach() for n, p in params.items()})
        mean = {n: torch.stack([d[n] for d in deltas]).mean(0) for n in params}
        outer_step({n: p.data for n, p in params.items()}, mean, momentum, recipe.outer())
        cycles.append({"losses": s.losses(model)})
    return {"losses": s.losses(model), "per_cycle": cycles}


def job_sync(s: Setting, recipe: Recipe) -> dict:
    workers = recipe.miners * len(s.corpora)
    batches = mixed_batches(
        s.corpora, batch_size=workers * recipe.batch_size, seed=sub_seed(s.seed, "sync")
    )
    steps = recipe.cycles * recipe.inner_steps
    return {"losses": s.losses(train_whole(s, s.copy(), batches, recipe, steps))}


def communication(s: Setting, recipe: Recipe) -> dict:
    """Bytes per worker per cycle (bf16 deltas) vs per-step fp32 gradient synchronization."""
    group_params = statistics.fmean(
        sum(math.prod(shape) for shape in group_tensor_shapes(MoEAdapter(s.warm), g).values())
        for g in s.groups(recipe)
    )
    return {
        "group_params": group_params,
        "total_params": s.params_total,
        "blockzero_bytes": 2 * group_params,
        "diloco_dp_bytes": 2 * s.params_total,
        "sync_same_params_bytes": 4 * group_params * recipe.inner_steps,
        "sync_full_model_bytes": 4 * s.params_total * recipe.inner_steps,
    }


def run_job(s: Setting, name: str, recipe: Recipe, args: argparse.Namespace) -> dict:
    arm = name.split(":")[0]
    began = time.monotonic()
    if arm == "base":
        out = {"losses": dict(s.base)}
    elif arm == "blockzero":
        out = job_blockzero(s, recipe, args)
    else:
        out = {
            "fft": job_fft,
            "fft_mix": job_fft_mix,
            "esft": job_esft,
            "diloco_dp": job_diloco_dp,
            "sync": job_sync,
        }[arm](s, recipe)
    out["gain"] = {d: s.base[d] - out["losses"][d] for d in s.base}
    return {
        "job": name,
        "arm": arm,
        "seed": s.seed,
        "recipe": recipe.model_dump(),
        "base": s.base,
        "comm": communication(s, recipe),
        "seconds": time.monotonic() - began,
        "device": torch.cuda.get_device_name() if s.device.type == "cuda" else "cpu",
        **out,
    }


def jobs_for(selection: list[str], base: Recipe) -> list[tuple[str, Recipe]]:
    variants = sweep(base)
    named = {arm: base for arm in ARMS} | {f"blockzero:{k}": r for k, r in variants.items()}
    picked: list[str] = []
    for item in selection:
        if item == "all":
            picked += list(named)
        elif item == "arms":
            picked += ARMS
        elif item == "sweep":
            picked += [f"blockzero:{k}" for k in variants]
        elif item in named or item == "warm":
            picked.append(item)
        else:
            raise SystemExit(
                f"unknown job {item!r}; choose from all, arms, sweep, warm, {', '.join(named)}"
            )
    return [(n, named[n]) for n in dict.fromkeys(picked) if n != "warm"]


def run(args: argparse.Namespace, base: Recipe) -> None:
    args.out_dir.mkdir(parents=True, exist_ok=True)
    corpora = load_domains(load_data_config(ROOT / args.data), byte_tokenizer())
    todo = jobs_for(args.jobs, base)
    for seed in args.seeds:
        s = Setting(args, seed, corpora)
        out = args.out_dir / f"seed{seed}-{os.getpid()}.jsonl"
        for name, recipe in todo:
            record = run_job(s, name, recipe, args)
            with out.open("a") as f:
                f.write(json.dumps(record) + "\n")
            gains = " ".join(f"{d} {v:+.4f}" for d, v in record["gain"].items())
            print(f"seed {seed} {name:24} gain {gains} ({record['seconds']:.0f} s)", flush=True)


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def load_records(out_dir: Path) -> list[dict]:
    return [
        json.loads(line)
        for p in sorted(out_dir.glob("seed*.jsonl"))
        for line in p.read_text().splitlines()
        if line
    ]


def summarize(records: list[dict]) -> dict:
    """Per job, mean and spread over seeds of each domain's: loss and gain of the final model;
    `own`, the gain from the update aimed at that domain alone; and forgetting."""
    by_job: dict[str, list[dict]] = {}
    for r in records:
        by_job.setdefault(r["job"], []).append(r)
    domains = list(records[0]["base"])
    table = {}
    for job, rs in by_job.items():
        row = {
            "seeds": sorted(r["seed"] for r in rs),
            "recipe": rs[0]["recipe"],
            "comm": rs[0]["comm"],
            "seconds": statistics.fmean(r["seconds"] for r in rs),
        }
        for key in ("losses", "gain", "forgetting"):
            if all(key in r for r in rs):
                row[key] = {d: mean_std([r[key][d] for r in rs]) for d in domains}
        if all("changes" in r for r in rs):
            row["own"] = {d: mean_std([-r["changes"][d][d] for r in rs]) for d in domains}
        if job.startswith("blockzero"):
            row["acceptance"] = mean_std([r["acceptance"] for r in rs])
        table[job] = row
    per_seed = {job: {r["seed"]: r for r in rs} for job, rs in by_job.items()}
    return {"domains": domains, "jobs": table, "per_seed": per_seed}


def ratio_to_esft(summary: dict, job: str, key: str = "own") -> dict[str, float] | None:
    """A BlockZero job's gain as a share of ESFT's per domain, over the seeds both ran (None
    where they share none; NaN where ESFT gained nothing: a share of a loss means nothing)."""
    per_seed = summary["per_seed"]
    if "esft" not in per_seed or job not in per_seed:
        return None
    seeds = sorted(per_seed["esft"].keys() & per_seed[job].keys())
    field = "changes" if key == "own" else key
    if not seeds or any(field not in per_seed[j][s] for j in (job, "esft") for s in seeds):
        return None
    out = {}
    for d in summary["domains"]:
        esft = statistics.fmean(gain(per_seed["esft"][s], key, d) for s in seeds)
        ours = statistics.fmean(gain(per_seed[job][s], key, d) for s in seeds)
        out[d] = ours / esft if esft > 0 else math.nan
    return out


def gain(record: dict, key: str, domain: str) -> float:
    return -record["changes"][domain][domain] if key == "own" else record["gain"][domain]


def mean_forgetting(row: dict) -> float:
    return statistics.fmean(v[0] for v in row["forgetting"].values())


def verdict(summary: dict, job: str) -> str:
    """The issue's target: every domain's gain >= 90% of ESFT's, forgetting no worse than FFT's."""
    jobs = summary["jobs"]
    own, merged = ratio_to_esft(summary, job), ratio_to_esft(summary, job, "gain")
    fft = mean_forgetting(jobs["fft"])
    ok = all(v >= GAIN_TARGET for v in own.values()) and mean_forgetting(jobs[job]) <= fft

    def shares(r: dict[str, float]) -> str:
        return "/".join("n/a" if math.isnan(v) else f"{v:.0%}" for v in r.values())

    return (
        f"{job}: own-group gain vs ESFT {shares(own)} (final model {shares(merged)}), "
        f"forgetting {mean_forgetting(jobs[job]):+.4f} vs FFT {fft:+.4f} -> "
        + ("target met" if ok else "target missed")
    )


def improvement(summary: dict, job: str) -> float:
    """Mean final loss of the default recipe minus `job`'s, over the seeds both ran."""
    per_seed = summary["per_seed"]
    seeds = per_seed["blockzero"].keys() & per_seed[job].keys()

    def loss(j: str, s: int) -> float:
        return statistics.fmean(per_seed[j][s]["losses"].values())

    diffs = [loss("blockzero", s) - loss(job, s) for s in seeds]
    return statistics.fmean(diffs) if diffs else -math.inf


def best_recipe(summary: dict) -> str | None:
    """The BlockZero recipe that most lowers the default's mean final loss (paired by seed),
    among those trained on the default's tokens whose forgetting is no worse than FFT's."""
    jobs = summary["jobs"]
    if "blockzero" not in jobs or "fft" not in jobs:
        return None
    tokens = Recipe(**jobs["blockzero"]["recipe"]).steps_per_domain
    fair = [
        j
        for j, row in jobs.items()
        if j.startswith("blockzero")
        and Recipe(**row["recipe"]).steps_per_domain == tokens
        and mean_forgetting(row) <= mean_forgetting(jobs["fft"])
    ]
    return max(fair, key=lambda j: improvement(summary, j), default=None)


def print_table(summary: dict) -> None:
    domains = summary["domains"]
    print(f"\n{'job':26} {'seeds':>5} {'s':>5}  " + "  ".join(f"{d:^34}" for d in domains))
    print(
        f"{'':38}"
        + "  ".join(f"{'loss':>10} {'gain':>7} {'own':>7} {'forget':>7}" for _ in domains)
    )
    for job, row in summary["jobs"].items():
        cells = []
        for d in domains:
            own = f"{row['own'][d][0]:+7.4f}" if "own" in row else f"{'-':>7}"
            forg = f"{row['forgetting'][d][0]:+7.4f}" if "forgetting" in row else f"{'-':>7}"
            cells.append(f"{row['losses'][d][0]:10.4f} {row['gain'][d][0]:+7.4f} {own} {forg}")
        print(f"{job:26} {len(row['seeds']):5} {row['seconds']:5.0f}  " + "  ".join(cells))


def report(args: argparse.Namespace) -> None:
    records = load_records(args.out_dir)
    if not records:
        raise SystemExit(f"no results under {args.out_dir}")
    summary = summarize(records)
    jobs = summary["jobs"]
    print_table(summary)
    verdicts = []
    if {"blockzero", "esft", "fft"} <= jobs.keys():
        best = best_recipe(summary)
        summary["best"] = (
            {
                "job": best,
                "recipe": jobs[best]["recipe"],
                "loss_improvement_vs_default": improvement(summary, best),
            }
            if best
            else None
        )
        verdicts = [verdict(summary, j) for j in dict.fromkeys(["blockzero", best]) if j]
    comm = jobs.get("blockzero", next(iter(jobs.values())))["comm"]
    ratios = (
        comm["sync_full_model_bytes"] / comm["blockzero_bytes"],
        comm["sync_same_params_bytes"] / comm["blockzero_bytes"],
    )
    summary["bytes_ratio"] = {"vs_full_model_sync": ratios[0], "vs_same_params_sync": ratios[1]}
    stored = {k: v for k, v in summary.items() if k != "per_seed"}
    args.out_dir.joinpath("summary.json").write_text(json.dumps(stored, indent=2))
    png = args.out_dir / "convergence.png"
    plot(summary, records, png)
    best_job = (summary.get("best") or {}).get("job", "-")
    print(
        f"\nSUMMARY: {'; '.join(verdicts) or 'no blockzero/esft/fft triple to compare'}; "
        f"bytes per worker per cycle {ratios[0]:.0f}x fewer than per-step full-model sync "
        f"({ratios[1]:.0f}x vs syncing the same expert rows each step, target {BYTES_TARGET:.0f}x); "
        f"best recipe {best_job}; {len(records)} records "
        f"(JSON: {args.out_dir / 'summary.json'}, plot: {png})"
    )


def plot(summary: dict, records: list[dict], path: Path) -> None:
    jobs, domains = summary["jobs"], summary["domains"]
    arms = [a for a in ARMS if a in jobs and a != "base"]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(18, 5))
    width = 0.8 / max(len(arms), 1)
    for i, arm in enumerate(arms):
        xs = [j + i * width for j in range(len(domains))]
        ax1.bar(
            xs,
            [jobs[arm]["gain"][d][0] for d in domains],
            width,
            yerr=[jobs[arm]["gain"][d][1] for d in domains],
            label=arm,
        )
    ax1.axhline(0, color="gray", lw=0.8)
    ax1.set_xticks([j + 0.4 - width / 2 for j in range(len(domains))], domains)
    ax1.set_ylabel("held-out loss gain of the final model (nats)")
    ax1.set_title("arms at equal tokens (mean ± sd over seeds)")
    ax1.legend()
    sweeps = [j for j in jobs if j.startswith("blockzero")]
    ratios = [ratio_to_esft(summary, j) or {} for j in sweeps]
    for i, d in enumerate(domains):
        ax2.barh(
            [k + i * 0.25 for k in range(len(sweeps))],
            [r.get(d, 0.0) for r in ratios],
            0.25,
            label=d,
        )
    ax2.axvline(GAIN_TARGET, color="red", ls="--", label=f"target {GAIN_TARGET:.0%}")
    ax2.set_yticks([k + 0.25 for k in range(len(sweeps))], sweeps)
    ax2.set_xlabel("own-group gain, BlockZero / ESFT")
    ax2.legend()
    for r in records:
        if r["job"] == "blockzero":
            curve = [statistics.fmean(c["losses"].values()) for c in r["per_cycle"]]
            ax3.plot(
                range(len(curve) + 1),
                [statistics.fmean(r["base"].values()), *curve],
                marker="o",
                label=f"seed {r['seed']}",
            )
    ax3.set_xlabel("cycle")
    ax3.set_ylabel("mean held-out loss (BlockZero)")
    ax3.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--jobs", nargs="+", default=["all"], help="all, arms, sweep, warm, or job names"
    )
    p.add_argument("--warmup-steps", type=int, default=600)
    p.add_argument("--cycles", type=int, default=3)
    p.add_argument("--inner-steps", type=int, default=30)
    p.add_argument("--miners", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--inner-lr", type=float, default=3e-3)
    p.add_argument("--outer-lr", type=float, default=0.7)
    p.add_argument("--outer-momentum", type=float, default=0.9)
    p.add_argument("--eval-sequences", type=int, default=64, help="Proof-of-Loss sample per group")
    p.add_argument(
        "--report-sequences", type=int, default=128, help="held-out report set per domain"
    )
    p.add_argument("--profile-sequences", type=int, default=64)
    p.add_argument("--model", default="configs/models/tiny-qwen3-moe.yaml")
    p.add_argument("--data", default="configs/data/local.yaml")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out-dir", type=Path, default=Path("runs/bench/convergence"))
    p.add_argument("--cache-dir", type=Path, help="where warm models are kept (default --out-dir)")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--quick", action="store_true", help="tiny settings for a CPU smoke run")
    args = p.parse_args()
    if args.quick:
        args.warmup_steps, args.cycles, args.inner_steps, args.seeds = 60, 2, 3, args.seeds[:1]
        args.eval_sequences, args.report_sequences, args.profile_sequences = 16, 32, 16
    torch.set_num_threads(args.threads)
    base = Recipe(
        cycles=args.cycles,
        inner_steps=args.inner_steps,
        miners=args.miners,
        batch_size=args.batch_size,
        inner_lr=args.inner_lr,
        outer_lr=args.outer_lr,
        outer_momentum=args.outer_momentum,
    )
    if not args.report_only:
        run(args, base)
    if args.report_only or args.jobs == ["all"]:
        report(args)


if __name__ == "__main__":
    main()

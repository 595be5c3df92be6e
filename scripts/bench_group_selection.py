"""Activation-selected expert groups vs contiguous index blocks: own-domain gain and forgetting.

Warms up the tiny Qwen3-MoE on the local domains, selects groups from its routing profiles
(`blockzero.owner.select`), then for each registry and each domain trains that domain's group
in full-routing mode, applies the pseudo-gradient to a fresh copy of the warm model (as the
validator would) and measures every domain's held-out loss change. Negative = better.

    python scripts/bench_group_selection.py [--warmup-steps 400 --train-steps 30 ...]
"""

import argparse
import copy
import time

import torch
from rich.console import Console
from rich.table import Table

from blockzero.data.batches import train_batches
from blockzero.data.domains import DomainCorpus, load_data_config, load_domains
from blockzero.data.tokenizer import byte_tokenizer
from blockzero.delta.pseudo_gradient import pseudo_gradient
from blockzero.model.evaluation import mean_loss
from blockzero.model.families import MoEAdapter
from blockzero.model.group_rows import add_to_group_rows
from blockzero.model.group_training import prepare_group_training
from blockzero.model.loading import build_model, read_model_config
from blockzero.model.training import InnerConfig, train
from blockzero.model.warmup import warm_up
from blockzero.owner.profile import GENERAL, profile_domains
from blockzero.owner.select import SelectionConfig, overlap_report, select_experts
from blockzero.protocol.expert_groups import ExpertGroupRegistry, contiguous_registry

MODEL = "configs/models/tiny-qwen3-moe.yaml"
DATA = "configs/data/local.yaml"


def losses(model: torch.nn.Module, eval_sets: dict[str, torch.Tensor]) -> dict[str, float]:
    return {d: mean_loss(model, seqs) for d, seqs in eval_sets.items()}


def train_and_apply(
    warm: torch.nn.Module,
    registry: ExpertGroupRegistry,
    domain: str,
    corpus: DomainCorpus,
    args: argparse.Namespace,
) -> torch.nn.Module:
    """Train the domain's group on a copy, apply delta = start - end to another fresh copy."""
    group = next(g for g in registry.groups if g.domain == domain)
    wrapped = prepare_group_training(copy.deepcopy(warm), group)
    start = wrapped.group_tensors()
    train(
        wrapped.model,
        wrapped.trainable_parameters(),
        train_batches(corpus.train, batch_size=args.batch_size, seed=args.seed + 1),
        InnerConfig(lr=args.lr),
        max_steps=args.train_steps,
    )
    delta = pseudo_gradient(start, wrapped.group_tensors())
    merged = copy.deepcopy(warm)
    add_to_group_rows(MoEAdapter(merged), group, delta, alpha=-1.0)
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup-steps", type=int, default=400)
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--eval-sequences", type=int, default=96)
    parser.add_argument("--profile-sequences", type=int, default=128)
    parser.add_argument("--num-general", type=int, default=2)
    parser.add_argument("--general-weight", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console()
    began = time.monotonic()

    corpora = load_domains(load_data_config(DATA), byte_tokenizer())
    warm = build_model(read_model_config(MODEL), seed=args.seed)
    warm_up(warm, corpora, steps=args.warmup_steps, batch_size=16, seed=args.seed, progress=True)
    warm.requires_grad_(False).eval()
    eval_sets = {d: c.held_out[: args.eval_sequences] for d, c in corpora.items()}
    base = losses(warm, eval_sets)

    profiles = profile_domains(warm, corpora, num_sequences=args.profile_sequences, seed=args.seed)
    domains = {d: p for d, p in profiles.items() if d != GENERAL}
    selection = select_experts(
        domains,
        profiles[GENERAL],
        SelectionConfig(num_general=args.num_general, general_weight=args.general_weight),
    )
    adapter = MoEAdapter(warm)
    registries = {
        "contiguous": contiguous_registry(
            num_experts=adapter.num_experts,
            top_k=adapter.top_k,
            moe_layers=adapter.moe_layer_indices,
            domains=[*corpora, "spare"],
        ),
        "selected": selection.registry,
    }

    table = Table(title=f"held-out loss change after {args.train_steps} group steps (- = better)")
    for col in ("groups", "trained", "own cov.", *(f"d {d}" for d in corpora), "own", "others"):
        table.add_column(col, justify="right")
    summary: dict[str, tuple[list[float], list[float]]] = {}
    for kind, registry in registries.items():
        coverage = {r.domain: r.coverage for r in overlap_report(registry, domains)}
        own_changes, other_changes = summary.setdefault(kind, ([], []))
        for domain, corpus in corpora.items():
            after = losses(train_and_apply(warm, registry, domain, corpus, args), eval_sets)
            change = {d: after[d] - base[d] for d in corpora}
            others = [v for d, v in change.items() if d != domain]
            own_changes.append(change[domain])
            other_changes.extend(others)
            table.add_row(
                kind,
                domain,
                f"{coverage[domain][domain]:.0%}",
                *(f"{change[d]:+.3f}" for d in corpora),
                f"{change[domain]:+.3f}",
                f"{max(others):+.3f}",
            )
    console.print("base held-out loss: " + ", ".join(f"{d} {v:.3f}" for d, v in base.items()))
    console.print(table)

    def line(kind: str) -> str:
        own, other = summary[kind]
        return (
            f"{kind}: own gain {-sum(own) / len(own):.3f}, other-domain change mean "
            f"{sum(other) / len(other):+.3f} max {max(other):+.3f}"
        )

    console.print(
        f"SUMMARY warmup={args.warmup_steps} steps={args.train_steps} "
        f"k'={args.num_general} w={args.general_weight} | {line('selected')} | "
        f"{line('contiguous')} | {time.monotonic() - began:.0f}s"
    )


if __name__ == "__main__":
    main()

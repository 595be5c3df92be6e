"""`blockzero owner ...`: the subnet owner's tools. Thin: parse, call `blockzero.owner`, print."""

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import torch
import typer
from rich.console import Console
from rich.table import Table

from blockzero.model.loading import DType, ModelSpec
from blockzero.owner.profile import GENERAL, ExpertProfile, load_profile
from blockzero.owner.select import GroupReport, SelectionConfig

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from blockzero.owner.init_model import InitResult
    from blockzero.owner.publish import Published

app = typer.Typer(
    help="Subnet owner: profile expert routing, choose expert groups, create the initial model.",
    no_args_is_help=True,
)

ModelOpt = Annotated[
    str,
    typer.Option(
        "--model", help="A model config YAML (tiny, built in-process) or a pretrained directory."
    ),
]
DataOpt = Annotated[Path, typer.Option("--data", help="Data config YAML (domains).")]
DeviceOpt = Annotated[str, typer.Option(help="'auto', 'cpu', 'cuda' or 'cuda:N'.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
NumGeneral = Annotated[
    int, typer.Option(help="k': the general data's top experts per layer that no group gets.")
]
GeneralWeight = Annotated[
    float, typer.Option(help="Score = domain freq - this x general freq (0: plain ESFT ranking).")
]
GroupSize = Annotated[
    int | None, typer.Option(help="Experts per group per layer; default: as many as fit.")
]


@contextmanager
def _errors() -> Iterator[None]:
    """One line per known failure instead of a traceback."""
    try:
        yield
    except (ValueError, KeyError, FileNotFoundError, FileExistsError) as e:
        typer.echo(f"error: {type(e).__name__}: {e}", err=True)
        raise typer.Exit(1) from e


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _model_spec(model: str, *, dtype: DType, seed: int) -> ModelSpec:
    if model.endswith((".yaml", ".yml")):
        return ModelSpec(config_file=Path(model), dtype=dtype, seed=seed)
    return ModelSpec(pretrained=model, dtype=dtype, seed=seed)


def _profile_table(profiles: Mapping[str, ExpertProfile], top: int = 3) -> Table:
    first = next(iter(profiles.values()))
    table = Table(
        title=f"most used experts per MoE layer (share of tokens; sums to top_k={first.top_k})"
    )
    table.add_column("data")
    table.add_column("tokens", justify="right")
    for layer in first.moe_layers:
        table.add_column(f"layer {layer}")
    for name, p in profiles.items():
        cells = []
        for layer in p.moe_layers:
            freq = p.layer(layer).frequency
            best = sorted(range(len(freq)), key=lambda e, f=freq: -f[e])[:top]
            cells.append(" ".join(f"{e}:{freq[e]:.2f}" for e in best))
        table.add_row(name, str(p.num_tokens), *cells)
    return table


def _overlap_table(groups: Sequence[GroupReport]) -> Table:
    domains = list(groups[0].coverage)
    table = Table(title="share of each domain's routing slots that land in each group")
    table.add_column("group")
    for d in domains:
        table.add_column(d, justify="right")
    for g in groups:
        cells = [
            f"[bold]{g.coverage[d]:.1%}[/bold]" if d == g.domain else f"{g.coverage[d]:.1%}"
            for d in domains
        ]
        table.add_row(g.name, *cells)
    return table


def _emit(as_json: bool, payload: Any, *tables: Table) -> None:
    if as_json:
        typer.echo(json.dumps(payload, indent=1))
        return
    console = Console()
    for t in tables:
        console.print(t)


@app.command("profile-experts")
def profile_experts_cmd(
    model: ModelOpt,
    data: DataOpt,
    out: Annotated[Path, typer.Option(help="Directory for <domain>.json and general.json.")],
    domain: Annotated[
        list[str] | None, typer.Option(help="Domain to profile (repeatable); default: all.")
    ] = None,
    num_sequences: Annotated[int, typer.Option(help="Training sequences per domain.")] = 128,
    batch_size: int = 16,
    seed: Annotated[int, typer.Option(help="Sample seed (and init seed of a config model).")] = 0,
    dtype: Annotated[str, typer.Option(help="float32, bfloat16 or float16.")] = "float32",
    device: DeviceOpt = "auto",
    as_json: Json = False,
) -> None:
    """Route each domain's data through the model and record every expert's activation
    frequency and mean gate weight per MoE layer."""
    from blockzero.data.domains import load_data_config, load_domains
    from blockzero.data.tokenizer import load_tokenizer
    from blockzero.model.loading import load_model
    from blockzero.owner.profile import profile_domains, save_profile

    with _errors():
        data_cfg = load_data_config(data)
        if domain:
            data_cfg = data_cfg.model_copy(
                update={"domains": {d: data_cfg.domains[d] for d in domain}}
            )
        corpora = load_domains(data_cfg, load_tokenizer(data_cfg.tokenizer))
        profiles = profile_domains(
            load_model(_model_spec(model, dtype=dtype, seed=seed)),
            corpora,
            num_sequences=num_sequences,
            batch_size=batch_size,
            seed=seed,
            device=_device(device),
            progress=not as_json,
        )
        for name, p in profiles.items():
            save_profile(p, out / f"{name}.json")
    _emit(
        as_json,
        {name: p.model_dump(mode="json") for name, p in profiles.items()},
        _profile_table(profiles),
    )


@app.command("select-experts")
def select_experts_cmd(
    profiles: Annotated[Path, typer.Option(help="Directory written by profile-experts.")],
    out: Annotated[Path, typer.Option(help="Where to write the registry YAML.")],
    domain: Annotated[
        list[str] | None,
        typer.Option(
            help="Domain (repeatable), in group-id order; default: every profile, sorted."
        ),
    ] = None,
    general: Annotated[
        Path | None, typer.Option(help="General-data profile; default: <profiles>/general.json.")
    ] = None,
    num_general: NumGeneral = 2,
    general_weight: GeneralWeight = 0.5,
    group_size: GroupSize = None,
    report: Annotated[
        Path | None, typer.Option(help="Selection JSON; default: <out>.selection.json.")
    ] = None,
    heatmap: Annotated[
        Path | None, typer.Option(help="Heatmap PNG; default: <out>.heatmap.png.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Pick each domain's experts (ESFT), leave out the general ones (DES-MoE), make the groups
    disjoint, and write a validated registry with its overlap report and heatmap."""
    from blockzero.atomic import atomic_write_text
    from blockzero.owner.heatmap import save_heatmap
    from blockzero.owner.select import select_experts
    from blockzero.protocol.expert_groups import save_registry

    with _errors():
        general_profile = load_profile(general or profiles / f"{GENERAL}.json")
        names = domain or sorted(p.stem for p in profiles.glob("*.json") if p.stem != GENERAL)
        domains = {name: load_profile(profiles / f"{name}.json") for name in names}
        selection = select_experts(
            domains,
            general_profile,
            SelectionConfig(
                num_general=num_general, general_weight=general_weight, group_size=group_size
            ),
        )
        save_registry(selection.registry, out)
        report = report or out.with_suffix(".selection.json")
        heatmap = heatmap or out.with_suffix(".heatmap.png")
        atomic_write_text(report, selection.model_dump_json(indent=1))
        save_heatmap(
            heatmap,
            {**domains, GENERAL: general_profile},
            registry=selection.registry,
            general=selection.general,
        )
    _emit(as_json, selection.model_dump(mode="json"), _overlap_table(selection.groups))
    if not as_json:
        typer.echo(f"wrote {out}, {report}, {heatmap}")


@app.command(
    "init-model",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def init_model_cmd(
    ctx: typer.Context,
    model: ModelOpt,
    data: DataOpt,
    out: Annotated[Path, typer.Option(help="Output directory (model/, registry.yaml, ...).")],
    warmup_steps: Annotated[
        int, typer.Option(help="Centralized warm-up steps on all domains (0: keep as is).")
    ] = 300,
    batch_size: int = 16,
    lr: float = 3e-3,
    seed: int = 0,
    profile_sequences: Annotated[int, typer.Option(help="Sequences per domain to profile.")] = 128,
    num_general: NumGeneral = 2,
    general_weight: GeneralWeight = 0.5,
    group_size: GroupSize = None,
    device: DeviceOpt = "auto",
    publish: Annotated[
        bool,
        typer.Option(
            help="Split into shards, upload to the hub, commit the manifest on chain. "
            "Chain, hub and wallet come from the usual settings flags "
            "(--network local, --wallet.name, --config ...)."
        ),
    ] = False,
    repo: Annotated[
        str | None, typer.Option(help="Hub repo for the model (namespace/name); with --publish.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Create the initial global model (pretrained, or the tiny config warmed up), select its
    expert groups, write both to --out, and optionally publish them."""
    from blockzero.owner.init_model import InitConfig, init_model

    with _errors():
        if publish and repo is None:
            raise ValueError("--publish needs --repo namespace/name")
        cfg = InitConfig(
            model=_model_spec(model, dtype="float32", seed=seed),
            data=data,
            warmup_steps=warmup_steps,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            profile_sequences=profile_sequences,
            selection=SelectionConfig(
                num_general=num_general, general_weight=general_weight, group_size=group_size
            ),
        )
        built, result = init_model(cfg, out, device=_device(device), progress=not as_json)
        published = _publish(built, result, ctx.args, repo) if publish else None
    payload = result.model_dump(mode="json") | {
        "published": published.model_dump() if published else None
    }
    losses = Table(
        title=f"held-out loss, {result.warmup_steps} warm-up steps in {result.warmup_seconds:.0f}s"
    )
    for col in ("domain", "before", "after"):
        losses.add_column(col)
    for name, before in result.loss_before.items():
        losses.add_row(name, f"{before:.3f}", f"{result.loss_after[name]:.3f}")
    _emit(as_json, payload, losses, _overlap_table(result.selection.groups))
    if not as_json:
        typer.echo(f"wrote {out}")
        if published:
            typer.echo(
                f"published {published.repo_id}@{published.revision[:10]} for cycle "
                f"{published.cycle}, manifest {published.manifest_sha256[:16]} committed on chain"
            )


def _publish(
    model: "PreTrainedModel", result: "InitResult", settings_args: list[str], repo: str
) -> "Published":
    """Open the chain, hub and wallet the settings name and publish for the current cycle."""
    from blockzero.connect import open_chain, open_hub, open_wallet
    from blockzero.owner.publish import publish_initial_model
    from blockzero.settings import load_protocol_config, load_settings

    settings = load_settings(settings_args)
    chain = open_chain(settings)
    cycle = load_protocol_config(settings).cycle.cycle_of(chain.current_block())
    return publish_initial_model(
        model,
        result.selection.registry,
        shards_dir=result.out_dir / "shards",
        hub=open_hub(settings),
        chain=chain,
        wallet=open_wallet(settings),
        repo_id=repo,
        cycle=cycle,
    )

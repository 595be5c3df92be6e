"""`blockzero miner`: run the miner, or `--plan` its memory. Settings come as Bittensor-style
flags (`--netuid 7 --wallet.name miner`), `BLOCKZERO_*` variables and `--config FILE`."""

import logging
import os
import sys

import typer

from blockzero.connect import open_chain, open_hub, open_wallet
from blockzero.data.domains import load_data_config
from blockzero.miner.loop import ConfigError, Miner
from blockzero.miner.plan import plan_memory
from blockzero.miner.steps import MinerOutOfMemory, NotRegisteredError
from blockzero.model.loading import read_model_config
from blockzero.protocol.expert_groups import load_registry
from blockzero.settings import Settings, SettingsError, load_protocol_config, load_settings

logger = logging.getLogger(__name__)


def print_plan(settings: Settings, model_config: str) -> None:
    """The memory arithmetic for the configured model, group size, mode and batch."""
    cfg = settings.miner
    registry = load_registry(cfg.registry)
    group = registry.groups[0]
    plan = plan_memory(
        read_model_config(model_config),
        group_size={layer: len(ids) for layer, ids in group.experts.items()},
        mode=cfg.mode,
        frozen_precision=cfg.frozen_dtype,
        group_precision=cfg.group_dtype,
        optimizer=cfg.optimizer,
        checkpointing=cfg.activation_checkpointing,
        batch_size=cfg.batch_size,
        seq_len=load_data_config(cfg.data).seq_len,
    )
    for line in plan.lines(cfg.gpu_memory_gib):
        typer.echo(line)


def miner(
    ctx: typer.Context,
    plan: bool = typer.Option(False, "--plan", help="Print the memory plan and exit."),
    model: str = typer.Option(
        "configs/models/tiny-qwen3-moe.yaml", "--model", help="Model config for --plan."
    ),
    cycles: int | None = typer.Option(None, "--cycles", help="Stop after N submitted cycles."),
) -> None:
    """Train the assigned expert group every cycle and submit it (docs/miner.md)."""
    try:
        settings = load_settings(ctx.args, os.environ)
        logging.basicConfig(
            level=logging.DEBUG if settings.logging.debug else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        if plan:
            print_plan(settings, model)
            return
        Miner(
            settings=settings,
            protocol=load_protocol_config(settings),
            chain=open_chain(settings),
            hub=open_hub(settings),
            wallet=open_wallet(settings),
        ).run(cycles=cycles)
    except (SettingsError, ConfigError, NotRegisteredError, MinerOutOfMemory) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("stopped; restart to resume where the last step left off", err=True)
        sys.exit(130)


app = typer.Typer(pretty_exceptions_enable=False)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(miner)

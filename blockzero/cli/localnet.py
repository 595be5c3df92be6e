"""`blockzero localnet`: run a whole subnet on this machine (docs/localnet.md). Thin: build the
config from `--config FILE` and flags, run, print the outcome, point at the report."""

import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console

from blockzero.localnet.config import LocalnetConfig


def localnet(
    config: Annotated[
        Path | None, typer.Option("--config", help="A localnet YAML (configs/localnet.yaml).")
    ] = None,
    miners: Annotated[int | None, typer.Option(help="Miner processes, cheaters included.")] = None,
    validators: Annotated[int | None, typer.Option(help="Validator processes.")] = None,
    cycles: Annotated[int | None, typer.Option(help="Cycles to run.")] = None,
    cheaters: Annotated[int | None, typer.Option(help="How many miners cheat.")] = None,
    cheat: Annotated[
        str | None,
        typer.Option(help="Cheating strategies, comma-separated, dealt to the cheaters in turn."),
    ] = None,
    work_dir: Annotated[
        Path | None, typer.Option(help="Work directory; a previous localnet's is wiped.")
    ] = None,
    block_time: Annotated[
        float | None, typer.Option(help="Seconds per block; raise it on a slow machine.")
    ] = None,
    warmup_steps: Annotated[
        int | None, typer.Option(help="Warm-up steps of the initial model.")
    ] = None,
) -> None:
    """Set up a chain, hub, initial model and wallets, run validators and miners (some cheating)
    as processes for a few cycles, show each cycle, and write a report."""
    from blockzero.localnet.report import outcome, write_report
    from blockzero.localnet.run import NodeDied, run

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    flags = {
        "miners": miners,
        "validators": validators,
        "cycles": cycles,
        "cheaters": cheaters,
        "cheats": None if cheat is None else [c.strip() for c in cheat.split(",") if c.strip()],
        "work_dir": work_dir,
        "block_time_s": block_time,
        "warmup_steps": warmup_steps,
    }
    try:
        base: dict[str, Any] = yaml.safe_load(config.read_text()) or {} if config else {}
        cfg = LocalnetConfig.model_validate(
            base | {k: v for k, v in flags.items() if v is not None}
        )
    except (OSError, yaml.YAMLError, ValidationError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    # Wide enough for the cycle table when the output is a log file rather than a terminal.
    console = Console(width=None if sys.stdout.isatty() else 150)
    start = time.monotonic()
    try:
        record = run(cfg, console)
    except KeyboardInterrupt:
        typer.echo("stopped: every node was shut down", err=True)
        raise typer.Exit(130) from None
    except (NodeDied, FileExistsError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    report = write_report(record)
    for line in outcome(record).lines():
        console.print(line)
    console.print(f"report in {report} ({time.monotonic() - start:.0f} s in all)")

"""`blockzero smoke`: the core end to end on this machine, no network."""

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from blockzero.smoke import run_smoke

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def smoke(
    warmup_steps: int = typer.Option(200, help="Centralized warm-up steps of the tiny model."),
    inner_steps: int = typer.Option(30, help="Inner AdamW steps per expert group."),
    out_dir: Path = typer.Option(Path("runs/smoke"), help="Where submission files are written."),
    model_config: Path = typer.Option(CONFIGS / "models/tiny-qwen3-moe.yaml"),
    data_config: Path = typer.Option(CONFIGS / "data/local.yaml"),
    registry: Path = typer.Option(CONFIGS / "groups/tiny-qwen3-moe.yaml"),
) -> None:
    """Warm up a tiny MoE, train each expert group, verify the submissions, apply the outer step."""
    console = Console()
    report = run_smoke(
        model_config=model_config,
        data_config=data_config,
        registry_path=registry,
        out_dir=out_dir,
        warmup_steps=warmup_steps,
        inner_steps=inner_steps,
        log=console.print,
    )
    table = Table(title="held-out loss per domain")
    for column in ("domain", "before", "after", "change"):
        table.add_column(column)
    for domain, before in report.losses_before.items():
        after = report.losses_after[domain]
        table.add_row(domain, f"{before:.4f}", f"{after:.4f}", f"{after - before:+.4f}")
    console.print(table)

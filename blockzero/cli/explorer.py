"""`blockzero explorer` (a web page) and `blockzero weights` (a terminal table) for one netuid.

Both read the chain and hub named by the usual settings flags, passed through to
`load_settings`: `--network local|finney|test`, `--netuid N`, `--config FILE`, `--paths.work_dir`,
`--validator.evidence_repo owner/name`, ... Errors print one line and exit 1.
"""

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from blockzero.chain.errors import ChainError
from blockzero.connect import open_chain, open_hub
from blockzero.explorer.evidence import EvidenceSource, HubEvidence, NoEvidence
from blockzero.explorer.server import ExplorerServer, SnapshotFn
from blockzero.explorer.snapshot import ExplorerSnapshot, WeightsView, build_snapshot, read_weights
from blockzero.hub.errors import HubError
from blockzero.protocol.expert_groups import ExpertGroupRegistry, load_registry
from blockzero.settings import Settings, load_protocol_config, load_settings

SETTINGS_FLAGS = {"allow_extra_args": True, "ignore_unknown_options": True}
"""Unknown flags reach `ctx.args` and from there `load_settings`, which names any it rejects."""


@contextmanager
def _errors() -> Iterator[None]:
    """One line per known failure instead of a traceback."""
    try:
        yield
    except (ChainError, HubError, FileNotFoundError, ValueError) as e:
        typer.echo(f"error: {type(e).__name__}: {e}", err=True)
        raise typer.Exit(1) from e


def _settings(ctx: typer.Context) -> Settings:
    return load_settings(ctx.args, env=os.environ)


def network_label(settings: Settings) -> str:
    """`local`, or the Bittensor network name or endpoint: what the explorer links are built for."""
    net = settings.network
    return "local" if net.backend == "local" else net.endpoint or net.name


def snapshot_builder(settings: Settings) -> SnapshotFn:
    """Open the chain and hub once; return a function that reads a fresh snapshot."""
    chain = open_chain(settings)
    hub = open_hub(settings)
    protocol = load_protocol_config(settings)
    path = settings.validator.registry
    registry: ExpertGroupRegistry | None = load_registry(path) if path.is_file() else None
    repo = settings.validator.evidence_repo
    evidence: EvidenceSource = NoEvidence() if repo is None else HubEvidence(hub, repo)

    def build() -> ExplorerSnapshot:
        return build_snapshot(
            chain,
            hub,
            network=network_label(settings),
            protocol=protocol,
            registry=registry,
            evidence=evidence,
            publisher=settings.validator.publisher,
        )

    return build


def explorer(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port to serve on (0: any free port).")] = 8765,
    host: Annotated[str, typer.Option(help="Address to bind; keep it local.")] = "127.0.0.1",
) -> None:
    """Serve a web page of the subnet: metagraph, weights, Proof-of-Loss evidence, loss chart,
    expert groups. Settings flags (--network, --netuid, --config, ...) choose the chain and hub."""
    with _errors():
        build = snapshot_builder(_settings(ctx))
        build()
        server = ExplorerServer(build, host=host, port=port).start()
    typer.echo(f"explorer on {server.url} (Ctrl-C to stop)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def weights(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show the weight each validator gives each miner, and the incentive that results.
    Settings flags (--network, --netuid, --config, ...) choose the chain."""
    with _errors():
        settings = _settings(ctx)
        view = read_weights(
            open_chain(settings),
            network=network_label(settings),
            rule=load_protocol_config(settings).miners,
        )
    if as_json:
        typer.echo(json.dumps(view.model_dump(mode="json"), indent=2))
    else:
        Console().print(weights_table(view))


def weights_table(view: WeightsView) -> Table:
    """One row per miner, one column per validator: rows stay readable on a 256-uid subnet."""
    table = Table(title=f"weights on netuid {view.netuid} ({view.network}) at block {view.block}")
    for col in ("uid", "hotkey", "incentive", *(f"v{v}" for v in view.validator_uids)):
        table.add_column(col, justify="left" if col == "hotkey" else "right")
    neurons = {n.uid: n for n in view.neurons}
    for m in view.miner_uids:
        n = neurons.get(m)
        row = [view.weights[v].get(m, 0.0) for v in view.validator_uids]
        table.add_row(
            str(m),
            Text(n.hotkey if n else ""),
            f"{n.incentive:.4f}" if n else "",
            *(f"{w:.4f}" for w in row),
        )
    return table


def register(app: typer.Typer) -> None:
    """Add `explorer` and `weights` to `app`, letting settings flags through."""
    app.command(context_settings=SETTINGS_FLAGS)(explorer)
    app.command(context_settings=SETTINGS_FLAGS)(weights)

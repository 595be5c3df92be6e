"""`blockzero chain ...`: create and inspect a chain (the embedded local one or a subtensor).

Thin: every command builds a Chain adapter and calls it. Errors print one line and exit 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from blockzero.chain.errors import ChainError
from blockzero.chain.local_chain import DEFAULT_BLOCK_TIME_S, LocalChain
from blockzero.chain.local_schema import SubnetParams
from blockzero.chain.port import Chain

app = typer.Typer(
    help="Create a local chain, register and stake hotkeys on it, and inspect any chain.",
    no_args_is_help=True,
)

DEFAULT_WALLET_PATH = "~/.bittensor/wallets"

ChainPath = Annotated[Path, typer.Option("--chain", help="Local chain file.")]
Netuid = Annotated[int, typer.Option("--netuid", help="Subnet id.")]
Network = Annotated[
    str,
    typer.Option(
        "--network",
        "--subtensor.network",
        help="'local' for the --chain file, else a subtensor network or ws:// URL.",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
WalletName = Annotated[str, typer.Option("--wallet.name", help="Wallet (coldkey) name.")]
WalletHotkey = Annotated[str, typer.Option("--wallet.hotkey", help="Hotkey name.")]
WalletPath = Annotated[str, typer.Option("--wallet.path", help="Wallets directory.")]


@contextmanager
def _errors() -> Iterator[None]:
    """One line per known failure instead of a traceback."""
    try:
        yield
    except (ChainError, FileNotFoundError, FileExistsError, ValueError) as e:
        typer.echo(f"error: {type(e).__name__}: {e}", err=True)
        raise typer.Exit(1) from e


def _open(network: str, chain: Path, netuid: int) -> Chain:
    if network == "local":
        return LocalChain(chain, netuid)
    from blockzero.chain.bittensor_chain import BittensorChain

    return BittensorChain(netuid, network=network)


def _hotkey_and_coldkey(name: str, hotkey: str, path: str) -> tuple[str, str]:
    import bittensor as bt

    wallet = bt.Wallet(name=name, hotkey=hotkey, path=str(Path(path).expanduser()))
    return wallet.hotkey.ss58_address, wallet.coldkeypub.ss58_address


def _emit(as_json: bool, payload: Any, table: Callable[[], Table]) -> None:
    if as_json:
        typer.echo(json.dumps(payload, indent=2))
    else:
        Console().print(table())


@app.command()
def create(
    path: Annotated[Path, typer.Argument(help="Where to write the chain file.")],
    netuid: Annotated[list[int], typer.Option("--netuid", help="Subnet id (repeatable).")] = [1],  # noqa: B006
    block_time: Annotated[float, typer.Option(help="Seconds per block.")] = DEFAULT_BLOCK_TIME_S,
    tempo: Annotated[int, typer.Option(help="Blocks per epoch.")] = 360,
    weights_rate_limit: Annotated[int, typer.Option(help="Blocks between weight sets.")] = 100,
    max_validators: Annotated[int, typer.Option(help="Permits for the top-N stakes.")] = 64,
) -> None:
    """Create a local chain file whose genesis is now."""
    subnets = [
        SubnetParams(
            netuid=n,
            tempo=tempo,
            weights_rate_limit=weights_rate_limit,
            max_validators=max_validators,
        )
        for n in netuid
    ]
    with _errors():
        LocalChain.create(path, subnets, block_time_s=block_time)
    typer.echo(f"created {path}: netuids {netuid}, {block_time}s blocks")


@app.command()
def register(
    chain: ChainPath = Path("chain.db"),
    netuid: Netuid = 1,
    wallet_name: WalletName = "default",
    wallet_hotkey: WalletHotkey = "default",
    wallet_path: WalletPath = DEFAULT_WALLET_PATH,
    stake: Annotated[float, typer.Option(help="Stake to add after registering.")] = 0.0,
) -> None:
    """Register a wallet's hotkey on the local chain (and optionally stake to it)."""
    with _errors():
        hotkey, coldkey = _hotkey_and_coldkey(wallet_name, wallet_hotkey, wallet_path)
        local = LocalChain(chain, netuid)
        uid = local.register(hotkey, coldkey=coldkey)
        if stake > 0:
            local.add_stake(hotkey, stake)
    typer.echo(f"registered {hotkey} as uid {uid} on netuid {netuid}")


@app.command("stake")
def add_stake(
    amount: Annotated[float, typer.Argument(help="Stake to add, in whole units.")],
    chain: ChainPath = Path("chain.db"),
    netuid: Netuid = 1,
    wallet_name: WalletName = "default",
    wallet_hotkey: WalletHotkey = "default",
    wallet_path: WalletPath = DEFAULT_WALLET_PATH,
) -> None:
    """Add stake to a registered hotkey on the local chain."""
    with _errors():
        hotkey, _ = _hotkey_and_coldkey(wallet_name, wallet_hotkey, wallet_path)
        total = LocalChain(chain, netuid).add_stake(hotkey, amount)
    typer.echo(f"{hotkey} now has stake {total:g}")


@app.command()
def block(
    network: Network = "local",
    chain: ChainPath = Path("chain.db"),
    netuid: Netuid = 1,
    as_json: Json = False,
) -> None:
    """Print the head block and its hash."""
    with _errors():
        port = _open(network, chain, netuid)
        head = port.current_block()
        payload = {"block": head, "hash": port.block_hash(head)}
    if as_json:
        typer.echo(json.dumps(payload))
    else:
        typer.echo(f"block {payload['block']} {payload['hash']}")


@app.command()
def metagraph(
    network: Network = "local",
    chain: ChainPath = Path("chain.db"),
    netuid: Netuid = 1,
    as_json: Json = False,
) -> None:
    """Show every uid: hotkey, stake, permit, incentive, last update."""
    with _errors():
        mg = _open(network, chain, netuid).metagraph()

    def table() -> Table:
        t = Table(title=f"netuid {mg.netuid} at block {mg.block}")
        for col in ("uid", "hotkey", "stake", "permit", "incentive", "last_update"):
            t.add_column(col)
        for n in mg.neurons:
            t.add_row(
                str(n.uid),
                n.hotkey,
                f"{n.stake:g}",
                "yes" if n.validator_permit else "",
                f"{n.incentive:.4f}",
                str(n.last_update),
            )
        return t

    _emit(as_json, mg.model_dump(), table)


@app.command()
def commitments(
    network: Network = "local",
    chain: ChainPath = Path("chain.db"),
    netuid: Netuid = 1,
    as_json: Json = False,
    at_block: Annotated[
        int | None,
        typer.Option("--at-block", min=0, help="Show the commitments as of this past block."),
    ] = None,
) -> None:
    """Show each hotkey's latest commitment (or the one it held at --at-block) and its block."""
    with _errors():
        found = _open(network, chain, netuid).commitments(at_block=at_block)

    def table() -> Table:
        at = "" if at_block is None else f" at block {at_block}"
        t = Table(title=f"commitments on netuid {netuid}{at}")
        for col in ("hotkey", "block", "data"):
            t.add_column(col)
        for hotkey, c in found.items():
            t.add_row(hotkey, str(c.block), c.data)
        return t

    _emit(as_json, {hk: c.model_dump() for hk, c in found.items()}, table)


@app.command()
def weights(
    network: Network = "local",
    chain: ChainPath = Path("chain.db"),
    netuid: Netuid = 1,
    as_json: Json = False,
) -> None:
    """Show each validator's weight row as fractions."""
    with _errors():
        rows = _open(network, chain, netuid).weights()

    def table() -> Table:
        t = Table(title=f"weights on netuid {netuid}")
        for col in ("validator uid", "miner uid", "weight"):
            t.add_column(col)
        for validator, row in rows.items():
            for miner, w in row.items():
                t.add_row(str(validator), str(miner), f"{w:.4f}")
        return t

    _emit(as_json, {str(v): {str(m): w for m, w in row.items()} for v, row in rows.items()}, table)

"""The `blockzero` command. Each command group lives in its own module and is registered here."""

import typer

from blockzero import __version__
from blockzero.cli.chain import app as chain_app
from blockzero.cli.explorer import register as register_explorer
from blockzero.cli.localnet import localnet
from blockzero.cli.miner import miner
from blockzero.cli.owner import app as owner_app
from blockzero.cli.smoke import smoke
from blockzero.cli.validator import audit, validator

app = typer.Typer(
    name="blockzero",
    help="BlockZero: train a Mixture-of-Experts model on a Bittensor subnet.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(chain_app, name="chain")
app.add_typer(owner_app, name="owner")
app.command()(smoke)
app.command()(localnet)
register_explorer(app)
PASS_FLAGS = {"allow_extra_args": True, "ignore_unknown_options": True}
"""Neuron commands take Bittensor-style flags and hand them to `load_settings`."""
app.command(context_settings=PASS_FLAGS)(miner)
app.command(context_settings=PASS_FLAGS)(validator)
app.command(context_settings=PASS_FLAGS)(audit)


@app.command()
def version() -> None:
    """Print the package version."""
    typer.echo(__version__)

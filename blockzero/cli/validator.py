"""`blockzero validator` (the neuron) and `blockzero audit --cycle N` (re-score a published
cycle). Settings come as Bittensor-style flags (`--netuid 7 --wallet.name val`), `BLOCKZERO_*`
variables and `--config FILE`; docs/validator.md lists the validator's own."""

import logging
import os
import sys
import tempfile
from pathlib import Path

import typer

from blockzero.chain.errors import ChainError
from blockzero.connect import open_chain, open_hub, open_wallet
from blockzero.data.domains import load_data_config, load_domain
from blockzero.data.tokenizer import load_tokenizer
from blockzero.global_model import ModelCache
from blockzero.hub.errors import HubError
from blockzero.model.shards import ManifestMismatch
from blockzero.protocol.expert_groups import load_registry
from blockzero.settings import Settings, SettingsError, load_protocol_config, load_settings
from blockzero.validator.audit import EvidenceNotFound, audit_cycle, fetch_evidence
from blockzero.validator.evidence import read_evidence
from blockzero.validator.loop import Validator

EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


def _settings(ctx: typer.Context) -> Settings:
    settings = load_settings(ctx.args, os.environ)
    logging.basicConfig(
        level=logging.DEBUG if settings.logging.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return settings


def validator(
    ctx: typer.Context,
    cycles: int | None = typer.Option(None, "--cycles", help="Stop after N cycles."),
) -> None:
    """Score every cycle's submissions, merge, publish the model and set weights."""
    try:
        settings = _settings(ctx)
        v = Validator(
            settings=settings,
            protocol=load_protocol_config(settings),
            chain=open_chain(settings),
            hub=open_hub(settings),
            wallet=open_wallet(settings),
        )
        v.resume()
        v.run(cycles=cycles)
    except (SettingsError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("stopped; restart to resume from the last completed cycle", err=True)
        sys.exit(130)


def audit(
    ctx: typer.Context,
    cycle: int = typer.Option(..., "--cycle", help="The cycle to re-score."),
    evidence: Path | None = typer.Option(
        None, "--evidence", help="A local evidence file instead of validator.evidence_repo."
    ),
) -> None:
    """Re-score a published cycle from its evidence; exit 1 if any number differs."""
    try:
        settings = _settings(ctx)
        cfg = settings.validator
        hub = open_hub(settings)
        work = Path(tempfile.mkdtemp(prefix=f"audit-{cycle}-"))
        if evidence is not None:
            ev = read_evidence(evidence)
        elif cfg.evidence_repo is not None:
            ev = fetch_evidence(hub, cfg.evidence_repo, cycle, work)
        else:
            raise SettingsError("give --evidence FILE or --validator.evidence_repo OWNER/NAME")
        chain = open_chain(settings)
        if chain.block_hash(ev.evaluation_block) != ev.block_hash:
            typer.echo(f"block hash of {ev.evaluation_block} differs from the chain's", err=True)
            raise typer.Exit(1)
        data = load_data_config(cfg.data)
        tokenizer = load_tokenizer(data.tokenizer)
        held = {d: load_domain(d, data, tokenizer).held_out for d in sorted(data.domains)}
        report = audit_cycle(
            ev,
            hub=hub,
            registry=load_registry(cfg.registry),
            held_out=held,
            cache=ModelCache(settings.paths.work_dir.expanduser() / "audit" / "models"),
            work_dir=work,
            max_bytes=cfg.max_submission_bytes,
            batch_size=cfg.batch_size,
            device=cfg.device,
        )
    except (SettingsError, EvidenceNotFound, ChainError, HubError, ManifestMismatch) as e:
        typer.echo(f"error: {type(e).__name__}: {e}", err=True)
        raise typer.Exit(1) from None
    for line in report.mismatches:
        typer.echo(f"MISMATCH {line}")
    typer.echo(
        f"cycle {report.cycle}: re-scored {report.rescored} submissions, "
        f"{len(report.mismatches)} mismatches"
    )
    if report.mismatches:
        raise typer.Exit(1)


app = typer.Typer(pretty_exceptions_enable=False)
app.command(context_settings=EXTRA)(validator)
audit_app = typer.Typer(pretty_exceptions_enable=False)
audit_app.command(context_settings=EXTRA)(audit)

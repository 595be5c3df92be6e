"""The end-of-run report in `<work_dir>/report/`: `loss.png`, `weights.png`, `summary.md` and
`records.json` (everything they were drawn from), plus the verdict the demo exists to show:
did the held-out loss fall, do honest miners hold the weight, do validators agree."""

from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from pydantic import BaseModel, ConfigDict

from blockzero.atomic import atomic_write_text
from blockzero.localnet.records import RunRecord
from blockzero.miner.cheats import Strategy

SCORE_TOLERANCE = 1e-6
"""Nats. Validators score the same model on the same seeded sample with one thread each, so on
one machine their scores agree to float rounding; anything larger is a disagreement."""
REPORT_DIR = "report"


class Outcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    loss_start: float
    loss_end: float
    honest_incentive: float
    cheater_incentive: float
    honest_without_weight: list[str]
    max_score_difference: float
    verdicts_agree: bool

    @property
    def loss_fell(self) -> bool:
        return self.loss_end < self.loss_start

    @property
    def validators_agree(self) -> bool:
        return self.verdicts_agree and self.max_score_difference <= SCORE_TOLERANCE

    def lines(self) -> list[str]:
        return [
            f"mean held-out loss {self.loss_start:.4f} -> {self.loss_end:.4f} "
            f"({'fell' if self.loss_fell else 'did NOT fall'})",
            f"incentive: honest miners {self.honest_incentive:.1%}, "
            f"cheaters {self.cheater_incentive:.1%}"
            + (
                f"; no weight: {', '.join(self.honest_without_weight)}"
                if self.honest_without_weight
                else ""
            ),
            f"validators: verdicts {'identical' if self.verdicts_agree else 'DIFFER'}, "
            f"largest score difference {self.max_score_difference:.2e} nats "
            f"(tolerance {SCORE_TOLERANCE:g})",
        ]


def outcome(record: RunRecord) -> Outcome:
    final = record.cycles[-1].incentive if record.cycles else {}
    honest = [m for m in record.layout.miners if m.strategy is Strategy.HONEST]
    cheaters = [m for m in record.layout.miners if m.strategy is not Strategy.HONEST]
    diff, agree = 0.0, True
    for c in record.cycles:
        views = [{s.hotkey: s for s in e.submissions} for e in c.evidence.values()]
        for a in views[1:]:
            for hotkey, s in a.items():
                ref = views[0].get(hotkey)
                if ref is None or ref.passed != s.passed:
                    agree = False
                    continue
                diff = max(diff, abs(ref.score - s.score))
    return Outcome(
        loss_start=record.held_out[0].mean,
        loss_end=record.held_out[-1].mean,
        honest_incentive=sum(final.get(m.uid, 0.0) for m in honest),
        cheater_incentive=sum(final.get(m.uid, 0.0) for m in cheaters),
        honest_without_weight=[m.name for m in honest if final.get(m.uid, 0.0) <= 0],
        max_score_difference=diff,
        verdicts_agree=agree,
    )


def _figure() -> tuple[Figure, Axes]:
    # A bare Figure on the Agg canvas (not pyplot): no global backend state, no display needed.
    fig = Figure(figsize=(7, 4))
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def plot_loss(record: RunRecord, path: Path) -> None:
    points = record.held_out
    xs = [p.cycle for p in points]
    fig, ax = _figure()
    for domain in sorted(points[0].losses):
        ax.plot(xs, [p.losses[domain] for p in points], marker="o", label=domain)
    ax.plot(xs, [p.mean for p in points], marker="o", color="black", linewidth=2.5, label="mean")
    ax.set_xlabel("after cycle (first point: the initial model)")
    ax.set_ylabel("held-out loss (nats)")
    ax.set_title(
        f"global model, {record.config.heldout_sequences} fixed held-out sequences per domain"
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_weights(record: RunRecord, path: Path) -> None:
    xs = [c.cycle for c in record.cycles]
    fig, ax = _figure()
    for m in record.layout.miners:
        honest = m.strategy is Strategy.HONEST
        ax.plot(
            xs,
            [c.incentive.get(m.uid, 0.0) for c in record.cycles],
            marker="o",
            linestyle="-" if honest else "--",
            label=f"{m.name} ({m.strategy})",
        )
    ax.set_xlabel("cycle")
    ax.set_ylabel("incentive (share of the subnet)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("weight per miner: stake-weighted consensus of the validators")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def summary_markdown(record: RunRecord, result: Outcome) -> str:
    cfg, layout = record.config, record.layout
    cheats = sorted({str(m.strategy) for m in layout.miners if m.strategy is not Strategy.HONEST})
    lines = [
        "# Local subnet run",
        "",
        f"{cfg.miners} miners ({cfg.miners - cfg.cheaters} honest, {cfg.cheaters} cheating: "
        f"{', '.join(cheats) or 'none'}), {cfg.validators} validators, "
        f"{len(record.cycles)} cycles of {cfg.cycle.length} blocks x {cfg.block_time_s:g} s.",
        f"Wall time {record.wall_seconds:.0f} s (set-up {record.setup_seconds:.0f} s, of which "
        f"initial model {layout.init_seconds:.0f} s with {cfg.warmup_steps} warm-up steps); "
        f"1-min load average at start, after set-up, at end: "
        f"{', '.join(f'{x:.1f}' for x in record.load_average)}.",
        "",
        *[f"- {line}" for line in result.lines()],
        "",
        "## Held-out loss of the global model",
        "",
        "![loss](loss.png)",
        "",
    ]
    domains = sorted(record.held_out[0].losses)
    lines += [
        "| after cycle | " + " | ".join(domains) + " | mean |",
        "|---" * (len(domains) + 2) + "|",
    ]
    for p in record.held_out:
        cells = " | ".join(f"{p.losses[d]:.4f}" for d in domains)
        lines.append(f"| {p.cycle} | {cells} | {p.mean:.4f} |")
    lines += ["", "## Weights", "", "![weights](weights.png)", ""]
    validators = layout.validators
    final = record.cycles[-1] if record.cycles else None
    lines += [
        "| uid | miner | plays | passed | incentive | "
        + " | ".join(f"{v.name} weight" for v in validators)
        + " |",
        "|---" * (5 + len(validators)) + "|",
    ]
    for m in layout.miners:
        passed = sum(
            1
            for c in record.cycles
            for e in c.evidence.values()
            if e.validator == validators[0].hotkey
            for s in e.submissions
            if s.hotkey == m.hotkey and s.passed
        )
        rows = [] if final is None else [final.weights.get(v.uid, {}) for v in validators]
        weights = " | ".join(f"{row.get(m.uid, 0.0):.3f}" for row in rows)
        share = 0.0 if final is None else final.incentive.get(m.uid, 0.0)
        lines.append(
            f"| {m.uid} | {m.name} | {m.strategy} | {passed}/{len(record.cycles)} | "
            f"{share:.1%} | {weights} |"
        )
    lines += [
        "",
        "`passed`: cycles in which validator-0 accepted the miner's submission.",
        "",
        "## Files",
        "",
        f"- node logs: `{layout.work_dir / 'logs'}`",
        f"- evidence: `{layout.work_dir / 'hub'}/validator-*/evidence`",
        f"- explore it: `blockzero explorer --config {layout.settings_file}` or "
        f"`blockzero weights --config {layout.settings_file}`",
        "",
    ]
    return "\n".join(lines)


def write_report(record: RunRecord) -> Path:
    """Write the report into `<work_dir>/report/` and return that directory."""
    out = record.layout.work_dir / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "records.json", record.model_dump_json(indent=1))
    plot_loss(record, out / "loss.png")
    plot_weights(record, out / "weights.png")
    atomic_write_text(out / "summary.md", summary_markdown(record, outcome(record)))
    return out

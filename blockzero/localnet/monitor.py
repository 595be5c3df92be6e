"""Follow the running subnet from the outside, as the explorer does: the chain (block, weights,
incentive) and each validator's published evidence. A cycle is recorded once every validator's
evidence for it is in, or when its validate phase closed `grace_blocks` ago (a validator that
overran or failed is then shown as missing rather than holding up the run)."""

from rich.console import Group
from rich.table import Table
from rich.text import Text

from blockzero.chain.port import Chain
from blockzero.explorer.evidence import HubEvidence, SubmissionSummary
from blockzero.hub.port import Hub
from blockzero.localnet.records import CycleRecord, HeldOut
from blockzero.localnet.setup import Layout, evidence_repo
from blockzero.protocol.cycle import CycleSchedule, Phase
from blockzero.protocol.expert_groups import ExpertGroupRegistry


class Monitor:
    def __init__(
        self,
        layout: Layout,
        chain: Chain,
        hub: Hub,
        schedule: CycleSchedule,
        *,
        grace_blocks: int,
    ) -> None:
        self.layout, self.chain, self.schedule = layout, chain, schedule
        self.grace_blocks = grace_blocks
        self.sources = {
            v.name: HubEvidence(hub, evidence_repo(i)) for i, v in enumerate(layout.validators)
        }
        self.next_cycle = layout.first_cycle

    def poll(self) -> list[CycleRecord]:
        """The cycles completed since the last call, oldest first."""
        head = self.chain.current_block()
        published = {
            name: {s.cycle: s for s in source.cycles()} for name, source in self.sources.items()
        }
        done = []
        while True:
            cycle = self.next_cycle
            got = {name: by[cycle] for name, by in published.items() if cycle in by}
            closed = self.schedule.phase_window(cycle, Phase.VALIDATE).stop + self.grace_blocks
            if len(got) < len(self.sources) and head < closed:
                return done
            done.append(
                CycleRecord(
                    cycle=cycle,
                    evidence=got,
                    weights=self.chain.weights(),
                    incentive={n.uid: n.incentive for n in self.chain.metagraph().neurons},
                )
            )
            self.next_cycle += 1

    def status(self, nodes_up: int) -> Text:
        head = self.chain.current_block()
        cycle, phase = self.schedule.cycle_of(head), self.schedule.phase_of(head)
        left = self.schedule.blocks_left_in_phase(head)
        return Text(
            f"block {head} · cycle {cycle} {phase.value} ({left} blocks left) · "
            f"{nodes_up}/{len(self.layout.nodes)} nodes up",
            style="dim",
        )


def _verdict(s: SubmissionSummary | None) -> str:
    if s is None:
        return "-"
    if s.passed:
        return f"[green]pass[/green] {s.score:.4f}"
    return f"[red]fail[/red] {s.reason or ''}"


def cycle_table(record: CycleRecord, layout: Layout, registry: ExpertGroupRegistry) -> Table:
    """Each miner's group, every validator's verdict, its improvement and its weight."""
    table = Table(title=f"cycle {record.cycle}", title_justify="left")
    for col in ("uid", "miner", "plays", "group"):
        table.add_column(col)
    for v in layout.validators:
        table.add_column(v.name)
    table.add_column("improvement", justify="right")
    table.add_column("incentive", justify="right")
    by_hotkey = {
        name: {s.hotkey: s for s in summary.submissions}
        for name, summary in record.evidence.items()
    }
    for m in layout.miners:
        seen = [by[m.hotkey] for by in by_hotkey.values() if m.hotkey in by]
        first = seen[0] if seen else None
        group = "-" if first is None or first.group is None else registry.group(first.group).name
        gain = "-" if first is None or first.improvement is None else f"{first.improvement:+.4f}"
        verdicts = [_verdict(by_hotkey.get(v.name, {}).get(m.hotkey)) for v in layout.validators]
        share = record.incentive.get(m.uid, 0.0)
        table.add_row(str(m.uid), m.name, str(m.strategy), group, *verdicts, gain, f"{share:.1%}")
    return table


def loss_table(points: list[HeldOut]) -> Table:
    """The global model after each cycle on a fixed held-out sample, per domain."""
    table = Table(title="global held-out loss (fixed sample)", title_justify="left")
    table.add_column("after cycle")
    domains = sorted(points[0].losses) if points else []
    for d in [*domains, "mean"]:
        table.add_column(d, justify="right")
    for p in points:
        cells = [f"{p.losses[d]:.4f}" for d in domains]
        table.add_row(str(p.cycle), *cells, f"{p.mean:.4f}")
    return table


def cycle_view(
    record: CycleRecord, points: list[HeldOut], layout: Layout, registry: ExpertGroupRegistry
) -> Group:
    return Group(cycle_table(record, layout, registry), loss_table(points))

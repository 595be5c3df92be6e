"""A whole subnet on one machine, top to bottom:

setup    initial model + groups, chain, hub, wallets, registrations, stake, publish
start    the miners now, the validators once the first cycle begins (they have nothing to
         do before its validate phase, and staying out of the start-up rush helps the miners)
follow   print each cycle as it completes, until `cycles` cycles are recorded
stop     every node, also on Ctrl-C, SIGTERM or a node that died
report   the loss curve on a fixed sample, the weights, summary.md
"""

import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterator

from rich.console import Console
from rich.live import Live

from blockzero.chain.local_chain import LocalChain
from blockzero.connect import LOCAL_CHAIN_FILE
from blockzero.hub.local_hub import LocalHub
from blockzero.localnet.config import LocalnetConfig
from blockzero.localnet.evaluate import HeldOutCurve
from blockzero.localnet.monitor import Monitor, cycle_view
from blockzero.localnet.processes import Fleet
from blockzero.localnet.records import CycleRecord, RunRecord
from blockzero.localnet.setup import NETUID, Layout, one_thread, setup
from blockzero.protocol.cycle import Phase
from blockzero.protocol.expert_groups import load_registry

logger = logging.getLogger(__name__)

POLL_S = 1.0


class NodeDied(RuntimeError):
    """A node process ended by itself; nodes run until stopped, so its log says what went wrong."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the run the way Ctrl-C does, through the same cleanup."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_alive(fleet: Fleet) -> None:
    for r in fleet.exited():
        tail = r.log.read_text(errors="replace").splitlines()[-15:]
        raise NodeDied(
            f"{r.node.name} exited with code {r.popen.returncode}; last lines of {r.log}:\n"
            + "\n".join(tail)
        )


def follow(
    cfg: LocalnetConfig,
    layout: Layout,
    fleet: Fleet,
    monitor: Monitor,
    curve: HeldOutCurve,
    console: Console,
) -> list[CycleRecord]:
    """Start the validators when the first cycle begins, then record cycles until done."""
    schedule, chain = cfg.cycle, monitor.chain
    registry = load_registry(layout.registry_file)
    records: list[CycleRecord] = []
    with Live(monitor.status(len(fleet.running)), console=console, transient=True) as live:
        while len(records) < cfg.cycles:
            _check_alive(fleet)
            if len(fleet.running) < len(layout.nodes) and chain.current_block() >= (
                schedule.cycle_start(layout.first_cycle)
            ):
                for v in layout.validators:
                    fleet.start(v)
            for record in monitor.poll()[: cfg.cycles - len(records)]:
                records.append(record)
                curve.measure_latest()
                live.console.print(cycle_view(record, curve.points, layout, registry))
            live.update(monitor.status(len(fleet.running) - len(fleet.exited())))
            time.sleep(POLL_S)
    return records


def run(cfg: LocalnetConfig, console: Console) -> RunRecord:
    """Set up, run `cfg.cycles` cycles, and stop every node, whatever happens."""
    start = time.monotonic()
    load = [os.getloadavg()[0]]
    layout = setup(cfg)
    setup_s = time.monotonic() - start
    load.append(os.getloadavg()[0])
    console.print(
        f"set up {layout.work_dir} in {setup_s:.0f} s; first cycle {layout.first_cycle}, "
        f"{cfg.cycle.length} blocks x {cfg.block_time_s:g} s; logs in {layout.work_dir / 'logs'}"
    )
    chain = LocalChain(layout.work_dir / LOCAL_CHAIN_FILE, NETUID)
    hub = LocalHub(layout.work_dir / "hub")
    monitor = Monitor(layout, chain, hub, cfg.cycle, grace_blocks=cfg.cycle.phases[Phase.VALIDATE])
    # This process only watches and measures: one thread, the cores are the nodes'.
    with sigterm_as_interrupt(), one_thread(), Fleet(layout) as fleet:
        curve = HeldOutCurve(
            chain,
            hub,
            registry_file=layout.registry_file,
            data_file=cfg.data,
            cache_dir=layout.work_dir / "localnet" / "models",
            num_sequences=cfg.heldout_sequences,
        )
        curve.measure_latest()
        for miner in layout.miners:
            fleet.start(miner)
        records = follow(cfg, layout, fleet, monitor, curve, console)
    load.append(os.getloadavg()[0])
    return RunRecord(
        config=cfg,
        layout=layout,
        cycles=records,
        held_out=curve.points,
        setup_seconds=setup_s,
        wall_seconds=time.monotonic() - start,
        load_average=load,
    )

"""Each node as its own OS process, as an operator runs it, and none outliving the localnet.

A node is `python neurons/<role>.py --config settings.yaml --wallet.name NAME ...`, the
Bittensor-style entry point, with its output in `logs/<name>.log`. Every node gets its own
process group (a Ctrl-C in the terminal reaches only the localnet, which then stops the nodes
in order) and, on Linux, a parent-death signal, so even a localnet killed with SIGKILL takes its
nodes with it. Stopping is terminate, wait, kill, per process group.
"""

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import blockzero
from blockzero.localnet.setup import Layout, Node

logger = logging.getLogger(__name__)

NEURONS_DIR = Path(blockzero.__file__).resolve().parents[1] / "neurons"
PR_SET_PDEATHSIG = 1
NODE_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
"""One compute thread per node: many nodes share few cores, and oversubscribed torch threads
made a forward pass slower than one thread did (measured, 2 cores)."""


def node_command(layout: Layout, node: Node) -> list[str]:
    script = NEURONS_DIR / f"{node.role}.py"
    return [sys.executable, str(script), "--config", str(layout.settings_file), *node.flags]


def _die_with_parent(parent: int) -> Callable[[], None]:
    """Runs in the child before exec: ask the kernel for SIGTERM when the parent dies."""

    def preexec() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


@dataclass
class Running:
    node: Node
    popen: subprocess.Popen[bytes]
    log: Path


class Fleet:
    """The running nodes. Use as a context manager: leaving it, however, stops them all."""

    def __init__(
        self,
        layout: Layout,
        *,
        stop_timeout_s: float = 10.0,
        command: Callable[[Layout, Node], list[str]] = node_command,
    ) -> None:
        self.layout = layout
        self.stop_timeout_s = stop_timeout_s
        self.command = command
        self.running: list[Running] = []

    def __enter__(self) -> "Fleet":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, node: Node) -> Running:
        log = self.layout.log_file(node)
        log.parent.mkdir(parents=True, exist_ok=True)
        linux = sys.platform.startswith("linux")
        with log.open("ab") as out:
            popen = subprocess.Popen(
                self.command(self.layout, node),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=os.environ | NODE_ENV,
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()) if linux else None,
            )
        logger.info("started %s (pid %d), log %s", node.name, popen.pid, log)
        self.running.append(Running(node, popen, log))
        return self.running[-1]

    def exited(self) -> list[Running]:
        """Nodes that ended on their own (a node runs until stopped, so this is a failure)."""
        return [r for r in self.running if r.popen.poll() is not None]

    @property
    def pids(self) -> list[int]:
        return [r.popen.pid for r in self.running]

    def stop(self) -> None:
        """SIGTERM every process group, wait up to `stop_timeout_s`, SIGKILL what is left.

        Ctrl-C and SIGTERM are ignored meanwhile, so a second Ctrl-C cannot leave nodes behind.
        """
        with _signals_ignored():
            for r in self.running:
                _signal_group(r.popen.pid, signal.SIGTERM)
            deadline = time.monotonic() + self.stop_timeout_s
            for r in self.running:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    r.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            for r in self.running:
                # Also sweeps anything a node started in its group after the leader exited.
                _signal_group(r.popen.pid, signal.SIGKILL)
                r.popen.wait()
        if self.running:
            codes = {r.node.name: r.popen.returncode for r in self.running}
            logger.info("stopped %d nodes: %s", len(codes), codes)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # only it may set handlers
        yield
        return
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)

"""Nodes never outlive the localnet: stopped in order, stubborn ones killed, and a localnet that
is itself killed takes its nodes with it. Fake nodes (shell loops) stand in for the neurons."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from blockzero.localnet.processes import Fleet
from blockzero.localnet.setup import Layout, Node


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def layout(tmp_path: Path, n: int) -> Layout:
    nodes = [
        Node(name=f"miner-{i}", role="miner", hotkey=f"hk{i}", uid=i, flags=[]) for i in range(n)
    ]
    return Layout(
        work_dir=tmp_path,
        settings_file=tmp_path / "settings.yaml",
        registry_file=tmp_path / "registry.yaml",
        first_cycle=1,
        init_seconds=0.0,
        loss_before_warmup={},
        loss_after_warmup={},
        nodes=nodes,
    )


STUBBORN = """
trap '' TERM
sleep 300 &
echo "child $!" > {pidfile}
while true; do sleep 0.1; done
"""
"""A node that ignores SIGTERM and has a child of its own in its process group."""


def stubborn(tmp_path: Path):
    def command(layout: Layout, node: Node) -> list[str]:
        return ["bash", "-c", STUBBORN.format(pidfile=tmp_path / f"{node.name}.pid")]

    return command


def wait_for(path: Path, timeout_s: float = 10.0) -> str:
    deadline = time.monotonic() + timeout_s
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
    return path.read_text()


def test_stop_kills_stubborn_nodes_and_their_children(tmp_path: Path) -> None:
    net = layout(tmp_path, 2)
    with Fleet(net, stop_timeout_s=0.5, command=stubborn(tmp_path)) as fleet:
        for node in net.nodes:
            fleet.start(node)
        children = [int(wait_for(tmp_path / f"{n.name}.pid").split()[1]) for n in net.nodes]
        assert fleet.exited() == []
    for pid in [*fleet.pids, *children]:
        assert not alive(pid), pid
    assert all(r.popen.returncode == -signal.SIGKILL for r in fleet.running)
    assert (tmp_path / "logs" / "miner-0.log").exists()


def test_exited_reports_a_node_that_died(tmp_path: Path) -> None:
    net = layout(tmp_path, 1)
    with Fleet(net, command=lambda _, __: ["bash", "-c", "exit 3"]) as fleet:
        fleet.start(net.nodes[0])
        fleet.running[0].popen.wait(timeout=10)
        assert [r.node.name for r in fleet.exited()] == ["miner-0"]


LOCALNET = """
import sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_processes import layout
from blockzero.localnet.processes import Fleet
from blockzero.localnet.run import sigterm_as_interrupt
net = layout(Path({tmp!r}), 2)
try:
    with sigterm_as_interrupt(), Fleet(net, command=lambda _, n: ["sleep", "300"]) as fleet:
        pids = [fleet.start(n).popen.pid for n in net.nodes]
        Path({tmp!r}, "pids").write_text(" ".join(map(str, pids)))
        time.sleep(300)
except KeyboardInterrupt:
    sys.exit(130)
"""
"""A stand-in localnet: the run's signal handling and fleet around two sleeping nodes."""


@pytest.mark.parametrize(
    "sig",
    [
        signal.SIGINT,
        signal.SIGTERM,
        pytest.param(
            signal.SIGKILL,
            marks=pytest.mark.skipif(
                not sys.platform.startswith("linux"), reason="parent-death signal is Linux"
            ),
        ),
    ],
)
def test_nodes_end_with_the_localnet(tmp_path: Path, sig: signal.Signals) -> None:
    """Ctrl-C and SIGTERM stop the nodes through the cleanup; SIGKILL leaves the localnet no
    chance, and the kernel's parent-death signal ends them instead."""
    script = LOCALNET.format(tests=str(Path(__file__).parent), tmp=str(tmp_path))
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        pids = [int(p) for p in wait_for(tmp_path / "pids", timeout_s=120).split()]
        assert all(alive(p) for p in pids)
        os.kill(parent.pid, sig)
        assert parent.wait(timeout=30) == (-signal.SIGKILL if sig is signal.SIGKILL else 130)
        deadline = time.monotonic() + 10
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(p) for p in pids)
    finally:
        parent.kill()

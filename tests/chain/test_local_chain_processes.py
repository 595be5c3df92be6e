"""Several real processes share one local chain file at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import bittensor as bt

import blockzero
from blockzero.chain.local_chain import LocalChain
from blockzero.chain.local_schema import SubnetParams

NETUID = 1
WORKERS = 4
ROUNDS = 8


def test_processes_write_concurrently(
    tmp_path: Path, wallet_dir: Path, make_wallet: Callable[[str], bt.Wallet]
) -> None:
    path = tmp_path / "chain.db"
    LocalChain.create(path, [SubnetParams(netuid=NETUID, weights_rate_limit=0)], block_time_s=1.0)
    names = [f"worker{i}" for i in range(WORKERS)]
    hotkeys = {name: make_wallet(name).hotkey.ss58_address for name in names}
    env = {**os.environ, "PYTHONPATH": str(Path(blockzero.__file__).parents[1])}
    worker = Path(__file__).with_name("local_chain_worker.py")
    start_at = time.time() + 2.0  # after every interpreter has imported bittensor
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(worker),
                str(path),
                str(NETUID),
                str(wallet_dir),
                name,
                str(start_at),
                str(ROUNDS),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in names
    ]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * WORKERS, "\n".join(outputs)

    chain = LocalChain(path, NETUID)
    mg = chain.metagraph()
    assert sorted(n.uid for n in mg.neurons) == list(range(WORKERS))
    assert sorted(mg.hotkeys) == sorted(hotkeys.values())
    assert all(n.stake == ROUNDS * 0.5 for n in mg.neurons)
    assert all(n.validator_permit and n.last_update > 0 for n in mg.neurons)
    assert {hk: c.data for hk, c in chain.commitments().items()} == {
        hotkeys[name]: f"{name}:{ROUNDS - 1}" for name in names
    }
    assert chain.weights() == {uid: {uid: 1.0} for uid in range(WORKERS)}
    assert [n.incentive for n in mg.neurons] == [0.25] * WORKERS

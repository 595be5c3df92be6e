"""One process of the concurrency test: register, then stake, commit, set weights and read."""

from __future__ import annotations

import sys
import time

import bittensor as bt

from blockzero.chain.local_chain import LocalChain


def main(path: str, netuid: str, wallet_path: str, name: str, start_at: str, rounds: str) -> None:
    wallet = bt.Wallet(name=name, hotkey="default", path=wallet_path)
    hotkey = wallet.hotkey.ss58_address
    chain = LocalChain(path, int(netuid))
    time.sleep(max(0.0, float(start_at) - time.time()))  # start all workers together
    uid = chain.register(hotkey, coldkey=wallet.coldkeypub.ss58_address)
    for i in range(int(rounds)):
        chain.add_stake(hotkey, 0.5)
        chain.publish_commitment(wallet, f"{name}:{i}")
        chain.set_weights(wallet, [uid], [1.0])
        assert chain.metagraph().by_hotkey(hotkey) is not None
        assert chain.commitments()[hotkey].data == f"{name}:{i}"


if __name__ == "__main__":
    main(*sys.argv[1:])

"""Open the chain, the hub and the wallet a node's settings name.

The one place that turns settings into port implementations, so roles never branch on
"local or real": the embedded local chain and hub for `--network local`, Bittensor and Hugging
Face otherwise.
"""

from pathlib import Path

import bittensor as bt

from blockzero.chain.bittensor_chain import BittensorChain
from blockzero.chain.local_chain import LocalChain
from blockzero.chain.port import Chain
from blockzero.hub.hf_hub import HfHub
from blockzero.hub.local_hub import LocalHub
from blockzero.hub.port import Hub
from blockzero.settings import Settings

LOCAL_CHAIN_FILE = "chain.db"


def local_chain_path(settings: Settings) -> Path:
    return settings.paths.work_dir.expanduser() / LOCAL_CHAIN_FILE


def open_chain(settings: Settings) -> Chain:
    net = settings.network
    if net.backend == "local":
        return LocalChain(local_chain_path(settings), net.netuid)
    return BittensorChain(net.netuid, network=net.endpoint or net.name)


def open_hub(settings: Settings) -> Hub:
    hub = settings.hub
    if hub.backend == "local":
        return LocalHub(hub.local_root.expanduser())
    return HfHub(endpoint=hub.endpoint)


def open_wallet(settings: Settings) -> bt.Wallet:
    w = settings.wallet
    return bt.Wallet(name=w.name, hotkey=w.hotkey, path=str(w.path.expanduser()))

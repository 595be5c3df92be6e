"""Keep chain tests off the network and off the real user's files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import bittensor as bt
import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Send every bittensor cache and config path (and HOME, for children) to a temp dir."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    cache = home / ".bittensor"
    for var, name in [
        ("BTCLI_CONFIG", "btcli.json"),
        ("BTCLI_TOKEN_SYMBOLS_CACHE", "btcli_token_symbols.json"),
        ("BTCLI_SUBNET_NAMES_CACHE", "btcli_subnet_names.json"),
        ("BTCLI_PROXIES_PATH", "btcli_proxies.json"),
        ("BTCLI_ADDRESSES_PATH", "btcli_addresses.json"),
        ("BTCLI_MULTISIGS_PATH", "btcli_multisigs.json"),
        ("BTCLI_MULTISIG_CACHE", "btcli_multisig_cache.json"),
    ]:
        monkeypatch.setenv(var, str(cache / name))
    monkeypatch.setenv("BITTENSOR_RUNTIME_CACHE_DIR", str(cache / "runtime"))
    return home


@pytest.fixture
def wallet_dir(tmp_path: Path) -> Path:
    return tmp_path / "wallets"


@pytest.fixture
def make_wallet(wallet_dir: Path) -> Callable[[str], bt.Wallet]:
    """Create an unencrypted coldkey + hotkey wallet under the temp wallet dir."""

    def make(name: str) -> bt.Wallet:
        wallet = bt.Wallet(name=name, hotkey="default", path=str(wallet_dir))
        wallet.create_new_coldkey(use_password=False, overwrite=True, suppress=True)
        wallet.create_new_hotkey(use_password=False, overwrite=True, suppress=True)
        return wallet

    return make

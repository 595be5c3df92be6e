from collections.abc import Callable
from pathlib import Path

import bittensor as bt
import pytest
from explorer_subnet import Subnet, make_subnet


@pytest.fixture
def subnet(tmp_path: Path, make_wallet: Callable[[str], bt.Wallet]) -> Subnet:
    return make_subnet(tmp_path, make_wallet)

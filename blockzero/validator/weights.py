"""Weights from scores: a per-uid EMA of cycle scores, reset when a uid changes hands.

The EMA smooths one lucky or unlucky cycle; resetting it when a uid's hotkey changes stops a new
owner from inheriting the previous miner's standing. Weights are the EMAs normalized to sum 1.
"""

import logging
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from blockzero.chain.errors import RateLimited
from blockzero.chain.port import Chain
from blockzero.settings import NetworkSettings

if TYPE_CHECKING:
    from bittensor import Wallet

logger = logging.getLogger(__name__)


class Standing(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    hotkey: str
    ema: float = Field(ge=0)


class ScoreBook(BaseModel):
    """EMA of cycle scores per uid (JSON keys are strings; pydantic turns them back into ints)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    standings: dict[int, Standing] = Field(default_factory=dict)

    def update(
        self, hotkeys: dict[int, str], scores: dict[str, float], alpha: float
    ) -> "ScoreBook":
        """One cycle: every uid in the metagraph moves toward its score (0 when it has none);
        uids no longer present are dropped."""
        out = {}
        for uid, hotkey in sorted(hotkeys.items()):
            prev = self.standings.get(uid)
            ema = prev.ema if prev is not None and prev.hotkey == hotkey else 0.0
            out[uid] = Standing(
                hotkey=hotkey, ema=alpha * scores.get(hotkey, 0.0) + (1 - alpha) * ema
            )
        return ScoreBook(standings=out)

    def weights(self) -> tuple[list[int], list[float]]:
        """Uids with a positive EMA and their normalized weights; empty when nobody earned any."""
        positive = {uid: s.ema for uid, s in self.standings.items() if s.ema > 0}
        total = sum(positive.values())
        uids = sorted(positive)
        return uids, [positive[u] / total for u in uids]


def explorer_link(network: str, netuid: int, hotkey: str) -> str | None:
    """Where to see this validator's weights; None on the local chain (use `blockzero weights`)."""
    if network == "finney":
        return f"https://taostats.io/subnets/{netuid}/metagraph?hotkey={hotkey}"
    if network == "test":
        return f"https://test.taostats.io/subnets/{netuid}/metagraph?hotkey={hotkey}"
    return None


def set_weights(
    chain: Chain, wallet: "Wallet", book: ScoreBook, *, cycle: int, network: NetworkSettings
) -> bool:
    """Set the book's weights on chain; a rate limit only postpones them to the next cycle."""
    uids, weights = book.weights()
    if not uids:
        logger.warning("cycle %d: no miner has a positive score; weights not set", cycle)
        return False
    try:
        chain.set_weights(wallet, uids, weights)
    except RateLimited as e:
        logger.warning("cycle %d: weights rate limited (%s); next cycle", cycle, e)
        return False
    name = network.name if network.backend == "bittensor" else "local"
    link = explorer_link(name, network.netuid, wallet.hotkey.ss58_address)
    logger.info("cycle %d: set weights on %d uids %s", cycle, len(uids), link or "(local chain)")
    return True

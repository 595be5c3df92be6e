"""The local chain's file format: one SQLite database, its tables and per-subnet rules.

``meta`` holds chain-wide constants (schema_version, chain_id, genesis_time, block_time_s); the
other tables are keyed by netuid. Stake is stored in rao (integers) so concurrent additions are
exact. ``commitments`` keeps every publish (one row each, ``seq`` orders rows of the same block) so a
hotkey's commitment can be read as of a past block. docs/chain.md describes each table.

Version history: 1 kept only the latest commitment per hotkey; 2 keeps the commitment history.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE subnets (
    netuid INTEGER PRIMARY KEY,
    tempo INTEGER NOT NULL,
    weights_rate_limit INTEGER NOT NULL,
    max_validators INTEGER NOT NULL
);
CREATE TABLE neurons (
    netuid INTEGER NOT NULL REFERENCES subnets(netuid),
    uid INTEGER NOT NULL,
    hotkey TEXT NOT NULL,
    coldkey TEXT,
    stake_rao INTEGER NOT NULL DEFAULT 0,
    registered_at INTEGER NOT NULL,
    last_update INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (netuid, uid),
    UNIQUE (netuid, hotkey)
);
CREATE TABLE commitments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    netuid INTEGER NOT NULL,
    hotkey TEXT NOT NULL,
    data TEXT NOT NULL,
    block INTEGER NOT NULL
);
CREATE INDEX commitments_by_hotkey ON commitments (netuid, hotkey, block, seq);
CREATE TABLE commitment_space (
    netuid INTEGER NOT NULL,
    hotkey TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (netuid, hotkey)
);
CREATE TABLE weights (
    netuid INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    dest INTEGER NOT NULL,
    weight REAL NOT NULL,
    PRIMARY KEY (netuid, uid, dest)
);
"""


class SubnetParams(BaseModel):
    """Per-subnet rules of the local chain (defaults follow common subtensor values)."""

    model_config = ConfigDict(frozen=True)

    netuid: int = Field(ge=0)
    tempo: int = Field(default=360, gt=0, description="Blocks per epoch (commitment quota reset).")
    weights_rate_limit: int = Field(default=100, ge=0, description="Blocks between weight sets.")
    max_validators: int = Field(default=64, gt=0, description="Permits go to the top-N by stake.")

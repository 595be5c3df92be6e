"""The global-model manifest: which files make up the model of a cycle, with their hashes.

The validator that publishes the model writes these files in one hub commit and commits the
manifest's hash on chain (`bz1m`). A miner downloads the shared shard once (it only changes
when the manifest says so), its own group's shard every cycle, and verifies every file against
the manifest before loading anything. The manifest itself is canonical JSON, so its hash is the
same on every machine.
"""

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from blockzero.protocol.version import PROTOCOL_VERSION

MANIFEST_FILE = "manifest.json"
CONFIG_FILE = "config.json"
SHARED_SHARD = "shared"
UNGROUPED_SHARD = "ungrouped"
MAX_MANIFEST_BYTES = 1 << 20


def group_shard(group_id: int) -> str:
    return f"group-{group_id}"


def shard_file(shard: str) -> str:
    return f"{shard}.safetensors"


class FileEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class ModelManifest(BaseModel):
    """`files` maps file names in the repo (`config.json`, `shared.safetensors`,
    `group-<id>.safetensors`, `ungrouped.safetensors`) to their hash and size.
    `cycle` is the cycle whose merge produced this model (for the initial model, the cycle it
    was published in), the same number as its `bz1m` chain commitment. Miners of cycle `c` train
    on the publisher's manifest as of the first block of `c`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["blockzero-model"] = "blockzero-model"
    protocol_version: int = PROTOCOL_VERSION
    cycle: int = Field(ge=0)
    parent_revision: str | None = Field(default=None, pattern=r"^[0-9a-f]{40}$")
    registry_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    dtype: Literal["float32", "bfloat16"]
    files: dict[str, FileEntry]

    def canonical_json(self) -> bytes:
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
        ).encode()

    def sha256(self) -> bytes:
        return hashlib.sha256(self.canonical_json()).digest()


def parse_manifest(raw: bytes) -> ModelManifest:
    """Strictly parse manifest bytes read from a hub (hostile until verified)."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ValueError(f"manifest is {len(raw)} bytes, over {MAX_MANIFEST_BYTES}")
    manifest = ModelManifest.model_validate_json(raw)
    if manifest.protocol_version != PROTOCOL_VERSION:
        raise ValueError(
            f"manifest is for protocol {manifest.protocol_version}, this node speaks {PROTOCOL_VERSION}"
        )
    return manifest

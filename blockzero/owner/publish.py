"""Publish the initial global model: shards + manifest in one hub commit, the manifest on chain.

After this, `blockzero.global_model.canonical_model` finds the model (when the owner's hotkey is
the publisher miners follow) and every node can fetch and verify it: the subnet can start.
"""

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from pydantic import BaseModel, ConfigDict
from transformers import PreTrainedModel

from blockzero.chain.port import Chain
from blockzero.hub.port import Hub
from blockzero.model.shards import write_model_dir
from blockzero.protocol.expert_groups import ExpertGroupRegistry
from blockzero.protocol.manifest import MANIFEST_FILE
from blockzero.publish import publish_model

if TYPE_CHECKING:
    from bittensor import Wallet


class Published(BaseModel):
    model_config = ConfigDict(frozen=True)

    repo_id: str
    revision: str
    cycle: int
    manifest_sha256: str
    files: list[str]


def publish_initial_model(
    model: PreTrainedModel,
    registry: ExpertGroupRegistry,
    *,
    shards_dir: Path,
    hub: Hub,
    chain: Chain,
    wallet: "Wallet",
    repo_id: str,
    cycle: int,
    dtype: torch.dtype = torch.float32,
) -> Published:
    """Split into `shards_dir`, upload as one commit, then commit the manifest's hash on chain.

    The chain commitment comes last, so nobody is ever pointed at files that are not there yet.
    """
    manifest = write_model_dir(Path(shards_dir), model, registry, cycle=cycle, dtype=dtype)
    commitment = publish_model(
        chain=chain,
        hub=hub,
        wallet=wallet,
        repo_id=repo_id,
        model_dir=Path(shards_dir),
        manifest=manifest,
    )
    return Published(
        repo_id=repo_id,
        revision=commitment.revision,
        cycle=cycle,
        manifest_sha256=commitment.manifest_sha256.hex(),
        files=[*sorted(manifest.files), MANIFEST_FILE],
    )

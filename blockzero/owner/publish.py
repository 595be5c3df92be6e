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
from blockzero.protocol.commitments import ManifestCommitment, encode
from blockzero.protocol.expert_groups import ExpertGroupRegistry
from blockzero.protocol.manifest import MANIFEST_FILE

if TYPE_CHECKING:
    from bittensor import Wallet


class Published(BaseModel):
    model_config = ConfigDict(frozen=True)

    repo_id: str
    revision: str
    cycle: int
    manifest_sha256: str
    files: list[str]


def publish_model(
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
    names = [*sorted(manifest.files), MANIFEST_FILE]
    hub.ensure_repo(repo_id)
    revision = hub.upload(
        repo_id,
        {name: Path(shards_dir) / name for name in names},
        f"blockzero initial model, cycle {cycle}",
    )
    commitment = ManifestCommitment(
        cycle=cycle, revision=revision, manifest_sha256=manifest.sha256(), repo_id=repo_id
    )
    chain.publish_commitment(wallet, encode(commitment))
    return Published(
        repo_id=repo_id,
        revision=revision,
        cycle=cycle,
        manifest_sha256=manifest.sha256().hex(),
        files=names,
    )

"""Publish a global model: one hub commit of a model directory, then its `bz1m` commitment.

Shared by the validator (each cycle's merged model), the subnet owner (the initial model) and
tests. The commitment carries the sha256 of the manifest file's bytes, so whoever reads it can
check the manifest, and through it every shard, without trusting the hub.
"""

import hashlib
import logging
from pathlib import Path

import bittensor as bt

from blockzero.chain.port import Chain
from blockzero.hub.port import Hub
from blockzero.protocol.commitments import ManifestCommitment, encode
from blockzero.protocol.manifest import MANIFEST_FILE, ModelManifest

logger = logging.getLogger(__name__)


def upload_model(hub: Hub, repo_id: str, model_dir: Path, manifest: ModelManifest) -> str:
    """Upload the manifest and every file it names in ONE commit; return the revision."""
    model_dir = Path(model_dir)
    hub.ensure_repo(repo_id)
    files = {name: model_dir / name for name in [*sorted(manifest.files), MANIFEST_FILE]}
    return hub.upload(repo_id, files, f"blockzero model after cycle {manifest.cycle}")


def publish_model(
    *,
    chain: Chain,
    hub: Hub,
    wallet: bt.Wallet,
    repo_id: str,
    model_dir: Path,
    manifest: ModelManifest,
) -> ManifestCommitment:
    """Upload the model directory written by `write_model_dir` and commit it on chain."""
    revision = upload_model(hub, repo_id, model_dir, manifest)
    raw = (Path(model_dir) / MANIFEST_FILE).read_bytes()
    commitment = ManifestCommitment(
        cycle=manifest.cycle,
        revision=revision,
        manifest_sha256=hashlib.sha256(raw).digest(),
        repo_id=repo_id,
    )
    chain.publish_commitment(wallet, encode(commitment))
    logger.info("published model of cycle %d at %s@%s", manifest.cycle, repo_id, revision[:10])
    return commitment

"""Find the canonical global model on chain and fetch its files, verified, into a local cache.

Every node agrees on which model a cycle trains and scores against without talking to anyone:
it is the manifest committed (`bz1m`) by the validator with the most stake, or by a publisher
named in config, as of the first block of the cycle. Files are cached by content hash, so a
shard that did not change between cycles (the shared weights, groups nobody improved) is never
downloaded twice, and every file is checked against the manifest before it is used.
"""

import hashlib
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from blockzero.chain.port import Chain
from blockzero.hub.port import Hub
from blockzero.model.shards import ManifestMismatch, verify_file
from blockzero.protocol.commitments import ManifestCommitment, decode
from blockzero.protocol.errors import CommitmentRejected
from blockzero.protocol.manifest import (
    MANIFEST_FILE,
    MAX_MANIFEST_BYTES,
    ModelManifest,
    parse_manifest,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CanonicalModel:
    publisher: str
    commitment: ManifestCommitment
    block: int

    @property
    def revision(self) -> str:
        return self.commitment.revision


def canonical_model(
    chain: Chain, *, at_block: int, publisher: str | None = None
) -> CanonicalModel | None:
    """The manifest commitment that names the global model as of `at_block`, or None."""
    commitments = chain.commitments(at_block=at_block)
    neurons = chain.metagraph().neurons
    if publisher is not None:
        candidates = [publisher]
    else:
        candidates = [
            n.hotkey for n in sorted(neurons, key=lambda n: -n.stake) if n.validator_permit
        ]
    for hotkey in candidates:
        entry = commitments.get(hotkey)
        if entry is None:
            continue
        try:
            parsed = decode(entry.data)
        except CommitmentRejected:
            continue
        if isinstance(parsed, ManifestCommitment):
            return CanonicalModel(publisher=hotkey, commitment=parsed, block=entry.block)
    return None


class ModelCache:
    """Content-addressed blobs (`blobs/<sha256>`) plus verified manifests."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)

    def manifest(
        self, hub: Hub, canon: CanonicalModel, *, timeout_s: float = 60.0
    ) -> ModelManifest:
        """Download the manifest pinned to the committed revision and check it against the
        hash committed on chain; refuse anything else."""
        c = canon.commitment
        with tempfile.TemporaryDirectory(dir=self.root) as tmp:
            path = hub.download(
                c.repo_id,
                MANIFEST_FILE,
                c.revision,
                max_bytes=MAX_MANIFEST_BYTES,
                timeout_s=timeout_s,
                dest_dir=Path(tmp),
            )
            raw = path.read_bytes()
        if hashlib.sha256(raw).digest() != c.manifest_sha256:
            raise ManifestMismatch(
                f"manifest at {c.repo_id}@{c.revision[:10]} does not match the hash committed by {canon.publisher}"
            )
        try:
            return parse_manifest(raw)
        except ValueError as e:
            raise ManifestMismatch(
                f"manifest at {c.repo_id}@{c.revision[:10]} is invalid: {e}"
            ) from e

    def fetch(
        self,
        hub: Hub,
        canon: CanonicalModel,
        manifest: ModelManifest,
        names: list[str],
        *,
        timeout_s: float = 600.0,
    ) -> dict[str, Path]:
        """Make sure each named file is in the cache (downloading only what is missing) and
        return its blob path. A download that does not match the manifest is refused."""
        out: dict[str, Path] = {}
        for name in names:
            entry = manifest.files[name]
            blob = self.blobs / entry.sha256
            if not blob.exists():
                with tempfile.TemporaryDirectory(dir=self.root) as tmp:
                    path = hub.download(
                        canon.commitment.repo_id,
                        name,
                        canon.revision,
                        max_bytes=entry.bytes,
                        timeout_s=timeout_s,
                        dest_dir=Path(tmp),
                    )
                    verify_file(path, entry)
                    shutil.move(path, blob)
                logger.info(
                    "fetched %s (%d bytes) of model %s", name, entry.bytes, canon.revision[:10]
                )
            out[name] = blob
        return out

    def fetch_all(
        self, hub: Hub, canon: CanonicalModel, *, timeout_s: float = 600.0
    ) -> tuple[ModelManifest, dict[str, Path]]:
        manifest = self.manifest(hub, canon)
        return manifest, self.fetch(
            hub, canon, manifest, sorted(manifest.files), timeout_s=timeout_s
        )

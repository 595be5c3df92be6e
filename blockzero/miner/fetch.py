"""Keep a fresh-enough copy of the global model at a bounded download cost per cycle.

A miner needs, every cycle: `config.json` and the `shared` shard (they change only when the
model's non-expert weights do: in practice never), its own group's shard (exactly the canonical
one: its pseudo-gradient is taken against those rows) and, for full routing, every other expert.
Those other experts move each cycle, and fetching all of them costs most of the model's size per
cycle (OLMoE-1B-7B in bf16: ~12 GB). So other groups' shards may be up to
`max_stale_cycles` cycles old: each cycle the miner refreshes the outdated ones, oldest first,
at least `ceil(others / (max_stale_cycles + 1))` of them and every one past the bound. With 0
(the default) the model is exact. Files live in a content-addressed cache, so an unchanged file
is never downloaded twice, and every file is verified against a manifest that was itself
verified against the chain before it is loaded.
"""

import logging
import math
from dataclasses import dataclass
from pathlib import Path

from blockzero.global_model import CanonicalModel, ModelCache
from blockzero.hub.port import Hub
from blockzero.miner.state import HeldShard
from blockzero.protocol.manifest import (
    CONFIG_FILE,
    SHARED_SHARD,
    UNGROUPED_SHARD,
    FileEntry,
    ModelManifest,
    group_shard,
    shard_file,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalModel:
    """The files to assemble this cycle's training model from."""

    manifest: ModelManifest
    """The canonical manifest with outdated entries replaced by the held (older, verified) ones."""
    paths: dict[str, Path]
    bytes_fetched: int
    stale_files: tuple[str, ...]


def exact_files(group_id: int) -> set[str]:
    return {CONFIG_FILE, shard_file(SHARED_SHARD), shard_file(group_shard(group_id))}


def files_to_fetch(
    manifest: ModelManifest,
    held: dict[str, HeldShard],
    *,
    group_id: int,
    cycle: int,
    max_stale_cycles: int,
) -> list[str]:
    """Which manifest files to download now (pure: the refresh policy in one place)."""
    exact = exact_files(group_id)
    outdated = [
        name
        for name, entry in manifest.files.items()
        if name not in held or held[name].sha256 != entry.sha256
    ]
    must = [n for n in outdated if n in exact or n not in held]
    others = sorted((n for n in outdated if n not in must), key=lambda n: (held[n].cycle, n))
    # Only other groups' shards move between cycles; counting the shard of ungrouped experts
    # (never trained) here would raise the quota so that S=1 saved nothing.
    frozen = shard_file(UNGROUPED_SHARD)
    num_others = sum(1 for n in manifest.files if n not in exact and n != frozen)
    quota = math.ceil(num_others / (max_stale_cycles + 1))
    expired = [n for n in others if cycle - held[n].cycle > max_stale_cycles]
    refresh = set(expired) | set(others[:quota])
    return sorted(must) + [n for n in others if n in refresh]


def update_model(
    cache: ModelCache,
    hub: Hub,
    canon: CanonicalModel,
    manifest: ModelManifest,
    held: dict[str, HeldShard],
    *,
    group_id: int,
    cycle: int,
    max_stale_cycles: int,
) -> LocalModel:
    """Download what the policy asks for, update `held` in place, and return what to load."""
    for name in [n for n, h in held.items() if not (cache.blobs / h.sha256).exists()]:
        del held[name]
    names = files_to_fetch(
        manifest, held, group_id=group_id, cycle=cycle, max_stale_cycles=max_stale_cycles
    )
    fetched_bytes = sum(
        manifest.files[n].bytes
        for n in names
        if not (cache.blobs / manifest.files[n].sha256).exists()
    )
    cache.fetch(hub, canon, manifest, names)
    for name, entry in manifest.files.items():
        if name in names or (name in held and held[name].sha256 == entry.sha256):
            held[name] = HeldShard(sha256=entry.sha256, bytes=entry.bytes, cycle=cycle)
    for name in set(held) - set(manifest.files):
        del held[name]
    files = {n: FileEntry(sha256=h.sha256, bytes=h.bytes) for n, h in held.items()}
    stale = tuple(sorted(n for n in files if files[n] != manifest.files[n]))
    if stale:
        logger.info(
            "using %d outdated expert shard(s) within the staleness bound: %s", len(stale), stale
        )
    return LocalModel(
        manifest=manifest.model_copy(update={"files": files}),
        paths={n: cache.blobs / h.sha256 for n, h in held.items()},
        bytes_fetched=fetched_bytes,
        stale_files=stale,
    )


def prune_cache(cache: ModelCache, held: dict[str, HeldShard]) -> None:
    """Delete cached blobs no held file refers to, so the cache does not grow every cycle."""
    keep = {h.sha256 for h in held.values()}
    for blob in cache.blobs.iterdir():
        if blob.name not in keep:
            blob.unlink(missing_ok=True)

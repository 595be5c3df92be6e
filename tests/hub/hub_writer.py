"""Commit revisions to a LocalHub repo from a separate process (used by the concurrency tests).

Each revision holds ``blob.bin`` and ``nested/meta.json``; the meta names the blob's sha256 and
the commit message names the meta, so a reader can tell a whole revision from a torn one.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

from blockzero.hub.local_hub import LocalHub

BLOB_BYTES = 128 * 1024


def blob(tag: str, i: int) -> bytes:
    return hashlib.sha256(f"{tag}-{i}".encode()).digest() * (BLOB_BYTES // 32)


def message(tag: str, i: int) -> str:
    return f"{tag} {i}"


def main(root: str, repo_id: str, tag: str, num_commits: int, pause_s: float) -> None:
    hub = LocalHub(Path(root))
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(num_commits):
            data = blob(tag, i)
            blob_path, meta_path = Path(tmp) / "blob.bin", Path(tmp) / "meta.json"
            blob_path.write_bytes(data)
            meta = {"tag": tag, "i": i, "sha256": hashlib.sha256(data).hexdigest()}
            meta_path.write_text(json.dumps(meta))
            files = {"blob.bin": blob_path, "nested/meta.json": meta_path}
            hub.upload(repo_id, files, message(tag, i))
            time.sleep(pause_s)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))

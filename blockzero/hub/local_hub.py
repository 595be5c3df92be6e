"""The embedded hub: a directory of content-addressed, immutable revisions.

Layout under ``root`` (see docs/hub.md)::

    <owner>/<name>/revisions/<sha>/<path_in_repo>   files of one commit, read-only
    <owner>/<name>/refs.json                        commits newest first (replaced atomically)
    <owner>/<name>/.lock                            flock held while the head moves
    <owner>/<name>/staging/<random>/                uploads being written

A commit's sha is ``sha1`` of a canonical JSON of its parent sha, message and the sorted
``(path, size, sha256)`` of its files: the same content on the same parent with the same message
always gets the same 40-hex id, and any change to history or content gets another one.

Why it is safe with several processes: an upload is written into ``staging/`` (same filesystem),
then, under an exclusive ``flock``, renamed to ``revisions/<sha>`` in one ``rename`` and only then
listed in ``refs.json`` (written to a temp file and ``os.replace``-d). A reader that sees a sha in
``refs.json`` therefore finds its directory complete, and readers never take the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

from blockzero.hub.errors import FileNotFound, HubRefused, RevisionNotFound, TooLarge
from blockzero.hub.port import Revision, validate_download, validate_repo_id, validate_upload
from blockzero.hub.transfer import write_capped

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_READ_ONLY = 0o444


class LocalHub:
    """Hub port on a local directory, shared by every process that points at the same ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalHub(root={str(self.root)!r})"

    def ensure_repo(self, repo_id: str) -> None:
        """Create the repo's folders and an empty history; leave an existing repo untouched."""
        repo = self._repo_dir(validate_repo_id(repo_id))
        (repo / "revisions").mkdir(parents=True, exist_ok=True)
        (repo / "staging").mkdir(exist_ok=True)
        with self._locked(repo):
            if not (repo / "refs.json").exists():
                _write_refs(repo, [])
                logger.info("created local repo %s", repo_id)

    def upload(
        self,
        repo_id: str,
        files: Mapping[str, Path],
        message: str,
        *,
        parent: str | None = None,
    ) -> str:
        """Stage the files, then move them into place and onto the head in one locked step."""
        validate_upload(repo_id, files, message, parent)
        repo = self._existing_repo(repo_id)
        staging = Path(tempfile.mkdtemp(dir=repo / "staging"))
        staging.chmod(0o755)  # mkdtemp makes it 0o700; committed revisions are world-readable
        try:
            manifest = _stage(files, staging)
            with self._locked(repo):
                history = _read_refs(repo)
                head = history[0]["sha"] if history else None
                if parent is not None and parent != head:
                    raise HubRefused(
                        f"parent {parent} is no longer the head (head is {head})",
                        status=412,
                        repo_id=repo_id,
                    )
                sha = _commit_sha(head, message, manifest)
                target = repo / "revisions" / sha
                if not target.exists():  # else: identical commit left by a crash, same content
                    os.rename(staging, target)
                    _fsync_dir(target.parent)
                entry = {
                    "sha": sha,
                    "parent": head,
                    "message": message,
                    "timestamp": datetime.now(UTC).isoformat(),
                }
                _write_refs(repo, [entry, *history])
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        logger.info("committed %s@%s (%d files)", repo_id, sha, len(manifest))
        return sha

    def download(
        self,
        repo_id: str,
        filename: str,
        revision: str,
        *,
        max_bytes: int,
        timeout_s: float,
        dest_dir: Path,
    ) -> Path:
        """Copy one committed file to ``dest_dir / filename`` under the cap and the deadline."""
        validate_download(repo_id, filename, revision, max_bytes=max_bytes, timeout_s=timeout_s)
        deadline = time.monotonic() + timeout_s
        where = {"repo_id": repo_id, "revision": revision, "filename": filename}
        rev_dir = self._repo_dir(repo_id) / "revisions" / revision
        if not rev_dir.is_dir():
            raise RevisionNotFound("revision not found", **where)
        source = rev_dir / filename
        if not source.is_file():
            raise FileNotFound("file not found in revision", **where)
        size = source.stat().st_size
        if size > max_bytes:
            raise TooLarge(
                f"file is {size} bytes, over the cap of {max_bytes}",
                max_bytes=max_bytes,
                seen_bytes=size,
                **where,
            )
        with source.open("rb") as f:
            return write_capped(
                iter(lambda: f.read(_CHUNK), b""),
                Path(dest_dir) / filename,
                max_bytes=max_bytes,
                deadline=deadline,
                **where,
            )

    def revisions(self, repo_id: str) -> list[Revision]:
        """Read ``refs.json`` without the lock: it is only ever replaced whole."""
        repo = self._existing_repo(repo_id)
        return [
            Revision(
                sha=e["sha"],
                message=e["message"],
                timestamp=datetime.fromisoformat(e["timestamp"]),
            )
            for e in _read_refs(repo)
        ]

    def _repo_dir(self, repo_id: str) -> Path:
        owner, name = repo_id.split("/")
        return self.root / owner / name

    def _existing_repo(self, repo_id: str) -> Path:
        repo = self._repo_dir(validate_repo_id(repo_id))
        if not (repo / "refs.json").is_file():
            raise RevisionNotFound("repository not found", repo_id=repo_id)
        return repo

    @contextlib.contextmanager
    def _locked(self, repo: Path) -> Iterator[None]:
        """Exclusive lock across processes for moving the head (readers never take it)."""
        with (repo / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _stage(files: Mapping[str, Path], staging: Path) -> list[tuple[str, int, str]]:
    """Copy files into ``staging``, hashing as we go; return sorted ``(path, size, sha256)``."""
    manifest = []
    for path_in_repo, local in sorted(files.items()):
        dest = staging / path_in_repo
        dest.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        with Path(local).open("rb") as src, dest.open("xb") as out:
            for chunk in iter(lambda: src.read(_CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        dest.chmod(_READ_ONLY)
        manifest.append((path_in_repo, size, digest.hexdigest()))
    return manifest


def _commit_sha(parent: str | None, message: str, manifest: list[tuple[str, int, str]]) -> str:
    """40-hex id of (parent, message, files): git-sized, and it changes if any of them does."""
    canonical = json.dumps(
        {"parent": parent, "message": message, "files": manifest},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha1(canonical.encode(), usedforsecurity=False).hexdigest()


def _read_refs(repo: Path) -> list[dict[str, str]]:
    return json.loads((repo / "refs.json").read_text())["revisions"]


def _write_refs(repo: Path, history: list[dict]) -> None:
    """Replace ``refs.json`` atomically: write a temp file, fsync, ``os.replace``, fsync dir."""
    tmp = repo / f".refs.{uuid.uuid4().hex}.tmp"
    try:
        with tmp.open("x") as f:
            json.dump({"revisions": history}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, repo / "refs.json")
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(repo)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""The Hub port: the one interface roles use to publish and fetch files.

Miners publish pseudo-gradients and validators publish model shards through it; both adapters
(:mod:`blockzero.hub.hf_hub`, :mod:`blockzero.hub.local_hub`) implement it. Names that come from
peers (repo ids, paths, revisions read off the chain) are hostile input, so every adapter calls
the ``validate_*`` functions here before any I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from blockzero.hub.errors import InvalidPath, InvalidRepoId, InvalidRevision

# Hugging Face name rules: letters, digits, '-', '_', '.'; no leading/trailing '-' or '.';
# no '--' or '..'; at most 96 characters (huggingface_hub.utils._validators.validate_repo_id).
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
_SHA = re.compile(r"[0-9a-f]{40}")
_MAX_PATH_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Revision:
    """One immutable commit of a repo. ``timestamp`` is None when the backend does not say."""

    sha: str
    message: str
    timestamp: datetime | None


class Hub(Protocol):
    """Publish files as atomic commits and fetch them pinned to a commit sha."""

    def ensure_repo(self, repo_id: str) -> None:
        """Create the repo if it does not exist; a no-op otherwise."""
        ...

    def upload(
        self,
        repo_id: str,
        files: Mapping[str, Path],
        message: str,
        *,
        parent: str | None = None,
    ) -> str:
        """Commit ``{path_in_repo: local_path}`` as ONE commit and return its 40-hex sha.

        With ``parent``, the commit is refused (``HubRefused``, status 412) unless the repo head
        is still ``parent``: two writers cannot silently overwrite each other.
        """
        ...

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
        """Fetch one file of a revision to ``dest_dir / filename`` and return that path.

        The file appears complete or not at all (temp file + rename); more than ``max_bytes``
        raises ``TooLarge`` and more than ``timeout_s`` raises ``HubTimeout``.
        """
        ...

    def revisions(self, repo_id: str) -> list[Revision]:
        """The repo's commits, newest first."""
        ...


def validate_repo_id(repo_id: str) -> str:
    """Return ``repo_id`` if it is ``owner/name`` with Hugging Face's rules, else raise."""
    parts = repo_id.split("/") if isinstance(repo_id, str) else []
    if len(parts) != 2:
        raise InvalidRepoId(f"repo id must be 'owner/name', got {repo_id!r}")
    for part in parts:
        if not _NAME.fullmatch(part) or "--" in part or ".." in part:
            raise InvalidRepoId(
                f"invalid repo id {repo_id!r}: each part is 1-96 of [A-Za-z0-9._-], starts and "
                "ends alphanumeric, and has no '--' or '..'"
            )
    if parts[1].endswith(".git"):
        raise InvalidRepoId(f"invalid repo id {repo_id!r}: a name may not end with '.git'")
    return repo_id


def validate_path(path_in_repo: str) -> str:
    """Return a relative POSIX path inside a repo, else raise ``InvalidPath``.

    Rejects what could escape a directory or mean two things on two systems: absolute paths,
    ``..`` and ``.``, empty components, backslashes and control characters.
    """
    if not isinstance(path_in_repo, str) or not path_in_repo:
        raise InvalidPath(f"path must be a non-empty string, got {path_in_repo!r}")
    if len(path_in_repo) > _MAX_PATH_CHARS:
        raise InvalidPath(f"path longer than {_MAX_PATH_CHARS} characters")
    if "\\" in path_in_repo or any(ord(c) < 32 or ord(c) == 127 for c in path_in_repo):
        raise InvalidPath(f"path has a backslash or control character: {path_in_repo!r}")
    if path_in_repo.startswith("/"):
        raise InvalidPath(f"path must be relative: {path_in_repo!r}")
    for part in path_in_repo.split("/"):
        if part in ("", ".", ".."):
            raise InvalidPath(f"path has an empty, '.' or '..' component: {path_in_repo!r}")
    return path_in_repo


def validate_revision(revision: str) -> str:
    """Return a lowercase 40-hex commit sha, else raise: branch names move, shas do not."""
    if not isinstance(revision, str) or not _SHA.fullmatch(revision):
        raise InvalidRevision(f"revision must be a 40-hex lowercase commit sha, got {revision!r}")
    return revision


def validate_upload(
    repo_id: str, files: Mapping[str, Path], message: str, parent: str | None
) -> None:
    """Check an upload's names before any I/O: repo id, parent sha, every path, no clashes."""
    validate_repo_id(repo_id)
    if parent is not None:
        validate_revision(parent)
    if not files:
        raise ValueError("an upload needs at least one file")
    if not message.strip():
        raise ValueError("commit message must not be empty")
    paths = {validate_path(p) for p in files}
    for path in paths:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in paths:
                raise InvalidPath(f"{path!r} is inside another uploaded file", repo_id=repo_id)


def validate_download(
    repo_id: str, filename: str, revision: str, *, max_bytes: int, timeout_s: float
) -> None:
    """Check a download's names and limits before any I/O."""
    validate_repo_id(repo_id)
    validate_path(filename)
    validate_revision(revision)
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")

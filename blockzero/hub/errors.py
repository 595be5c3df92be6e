"""Typed errors of the Hub port.

Every adapter raises only these, so roles catch one hierarchy whatever the backend. Each error
carries the repo, revision and file it is about, so a log line or a recorded rejection can name
them. Builtin bases keep plain ``except ValueError`` / ``LookupError`` / ``TimeoutError`` /
``ConnectionError`` working.
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every Hub port error."""

    def __init__(
        self,
        message: str,
        *,
        repo_id: str | None = None,
        revision: str | None = None,
        filename: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.repo_id = repo_id
        self.revision = revision
        self.filename = filename

    def __str__(self) -> str:
        where = self.repo_id or ""
        if self.revision:
            where += f"@{self.revision}"
        if self.filename:
            where += f":{self.filename}"
        return f"{self.message} [{where}]" if where else self.message


class InvalidRepoId(HubError, ValueError):
    """The repo id is not ``owner/name`` with Hugging Face's name rules. Raised before any I/O."""


class InvalidPath(HubError, ValueError):
    """A path in the repo is absolute, has ``..``, ``.``, empty components or backslashes.

    Raised before any I/O, so a hostile name never reaches a filesystem or a URL.
    """


class InvalidRevision(HubError, ValueError):
    """A revision is not a 40-hex commit sha. Downloads are pinned to immutable shas only."""


class RevisionNotFound(HubError, LookupError):
    """The repo or the revision does not exist (or is not visible to this token)."""


class FileNotFound(HubError, LookupError):
    """The revision exists but holds no such file."""


class TooLarge(HubError):
    """A file is bigger than the caller's byte cap.

    ``seen_bytes`` is the declared size when the server announced too much, or the bytes received
    so far when it streamed more than the cap.
    """

    def __init__(self, message: str, *, max_bytes: int, seen_bytes: int, **where: str | None):
        super().__init__(message, **where)
        self.max_bytes = max_bytes
        self.seen_bytes = seen_bytes


class HubTimeout(HubError, TimeoutError):
    """The operation did not finish within its time budget."""


class HubUnavailable(HubError, ConnectionError):
    """The hub could not be reached or failed on its side (connection error, HTTP 5xx)."""


class HubRefused(HubError):
    """The hub answered and said no (HTTP 4xx): permissions, stale parent (412), rate limit (429).

    ``retry_after_s`` is set when the server said how long to wait (429 ``Retry-After``).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        server_message: str | None = None,
        retry_after_s: float | None = None,
        **where: str | None,
    ) -> None:
        super().__init__(message, **where)
        self.status = status
        self.server_message = server_message
        self.retry_after_s = retry_after_s

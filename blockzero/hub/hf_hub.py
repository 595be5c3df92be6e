"""Hub port on Hugging Face (huggingface_hub 2.4, HTTP client ``httpx2``).

Uploads are one ``create_commit`` each (the Hub allows ~128 commits per hour per repo, so one
commit per submission, never one per file). Downloads are pinned to a commit sha and streamed by
this module itself: one ``GET {endpoint}/{repo}/resolve/{sha}/{file}`` through huggingface_hub's
shared ``get_session()`` client, so ``set_client_factory`` (proxies, tests) applies. We stream
ourselves rather than call ``hf_hub_download`` because that function may hand the transfer to
``hf_xet`` (installed here), where we could not enforce a byte cap while bytes arrive nor a
deadline, and it fills the shared HF cache with hostile peer files. The declared size
(``Content-Length`` of the final response, after redirects) is checked before the first body byte,
so an announced oversize costs no transfer and no extra HEAD request against the rate limit.

The token comes from the constructor, else ``HF_TOKEN``, else the HF token file (huggingface_hub
resolves it per request). It is never logged and never put in an error message.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx2
from huggingface_hub import CommitOperationAdd, HfApi, constants, hf_hub_url
from huggingface_hub.errors import (
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import (
    build_hf_headers,
    get_session,
    hf_raise_for_status,
    parse_ratelimit_headers,
)

from blockzero.hub.errors import (
    FileNotFound,
    HubError,
    HubRefused,
    HubTimeout,
    HubUnavailable,
    RevisionNotFound,
    TooLarge,
)
from blockzero.hub.port import (
    Revision,
    validate_download,
    validate_repo_id,
    validate_revision,
    validate_upload,
)
from blockzero.hub.transfer import write_capped

logger = logging.getLogger(__name__)

_MAX_ERROR_BODY = 64 * 1024


class HfHub:
    """Hub port on the Hugging Face Hub (or any endpoint speaking its API)."""

    def __init__(
        self, *, endpoint: str | None = None, token: str | None = None, repo_type: str = "model"
    ) -> None:
        self._endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
        self._token = token
        self._repo_type = repo_type
        self._api = HfApi(endpoint=self._endpoint, token=token)

    def __repr__(self) -> str:
        return f"HfHub(endpoint={self._endpoint!r}, repo_type={self._repo_type!r})"

    def ensure_repo(self, repo_id: str) -> None:
        validate_repo_id(repo_id)
        with _hub_errors(repo_id=repo_id):
            self._api.create_repo(repo_id, repo_type=self._repo_type, exist_ok=True)

    def upload(
        self,
        repo_id: str,
        files: Mapping[str, Path],
        message: str,
        *,
        parent: str | None = None,
    ) -> str:
        """One ``create_commit`` with every file; ``parent`` becomes ``parent_commit``.

        If every file is byte-identical to the head, huggingface_hub makes no commit and returns
        the head's sha (its message is then not ``message``).
        """
        validate_upload(repo_id, files, message, parent)
        operations = [
            CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(local))
            for path, local in sorted(files.items())
        ]
        with _hub_errors(repo_id=repo_id):
            info = self._api.create_commit(
                repo_id,
                operations=operations,
                commit_message=message,
                parent_commit=parent,
                repo_type=self._repo_type,
            )
        sha = validate_revision(info.oid)
        logger.info("committed %s@%s (%d files)", repo_id, sha, len(operations))
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
        """Stream ``resolve/<sha>/<file>`` to ``dest_dir / filename`` under cap and deadline.

        ``timeout_s`` bounds each network wait (connect, each read) and the whole transfer,
        checked per chunk: the worst case is about twice ``timeout_s``.
        """
        validate_download(repo_id, filename, revision, max_bytes=max_bytes, timeout_s=timeout_s)
        where = {"repo_id": repo_id, "revision": revision, "filename": filename}
        url = hf_hub_url(
            repo_id, filename, revision=revision, repo_type=self._repo_type, endpoint=self._endpoint
        )
        deadline = time.monotonic() + timeout_s
        with (
            _hub_errors(**where),
            get_session().stream(
                "GET",
                url,
                # identity + iter_raw: the cap counts bytes on the wire, and a compressed body
                # cannot inflate past it in memory (a gzipped reply then fails its hash check).
                headers={**build_hf_headers(token=self._token), "Accept-Encoding": "identity"},
                timeout=timeout_s,
                follow_redirects=True,
            ) as response,
        ):
            if response.status_code >= 400:
                hf_raise_for_status(_bounded_error_response(response))
            declared = _declared_size(response)
            if declared > max_bytes:
                raise TooLarge(
                    f"server declares {declared} bytes, over the cap of {max_bytes}",
                    max_bytes=max_bytes,
                    seen_bytes=declared,
                    **where,
                )
            path = write_capped(
                response.iter_raw(),
                Path(dest_dir) / filename,
                max_bytes=max_bytes,
                deadline=deadline,
                **where,
            )
        logger.debug("downloaded %s@%s:%s", repo_id, revision, filename)
        return path

    def revisions(self, repo_id: str) -> list[Revision]:
        """Commits of ``main``, newest first, including the Hub's initial commit."""
        validate_repo_id(repo_id)
        with _hub_errors(repo_id=repo_id):
            commits = self._api.list_repo_commits(repo_id, repo_type=self._repo_type)
        return [Revision(sha=c.commit_id, message=c.title, timestamp=c.created_at) for c in commits]


def _declared_size(response: httpx2.Response) -> int:
    """``Content-Length`` of the response, 0 when absent or not a number (then only streaming
    enforces the cap)."""
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else 0


def _bounded_error_response(response: httpx2.Response) -> httpx2.Response:
    """A copy of an error response with at most 64 KiB of body, for ``hf_raise_for_status``.

    Its message parser would otherwise read an unbounded error body from the server.
    """
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk[: _MAX_ERROR_BODY - len(body)]
        if len(body) >= _MAX_ERROR_BODY:
            break
    headers = {
        k: v
        for k, v in response.headers.items()
        if k.lower() not in ("content-length", "content-encoding", "transfer-encoding")
    }
    return httpx2.Response(
        response.status_code, headers=headers, content=bytes(body), request=response.request
    )


@contextlib.contextmanager
def _hub_errors(
    *, repo_id: str, revision: str | None = None, filename: str | None = None
) -> Iterator[None]:
    """The one place that turns huggingface_hub / httpx2 errors into Hub port errors.

    Messages are built from status codes and the server's message only, never from request
    headers, so the token cannot leak into them. Errors we do not know are bugs: re-raised as is.
    """
    where = {"repo_id": repo_id, "revision": revision, "filename": filename}
    try:
        yield
    except HubError:
        raise
    except OfflineModeIsEnabled as e:
        raise HubUnavailable("HF_HUB_OFFLINE is set: no hub requests allowed", **where) from e
    except RevisionNotFoundError as e:
        raise RevisionNotFound("revision not found", **where) from e
    except RemoteEntryNotFoundError as e:
        raise FileNotFound("file not found in revision", **where) from e
    except RepositoryNotFoundError as e:
        raise RevisionNotFound("repository not found or not accessible", **where) from e
    except HfHubHTTPError as e:
        status = e.response.status_code
        if status == 404:
            error = FileNotFound if filename else RevisionNotFound
            raise error(f"HTTP 404: {e.server_message or 'not found'}", **where) from e
        if status == 408:
            raise HubTimeout("HTTP 408: the hub timed out the request", **where) from e
        if 400 <= status < 500:
            raise HubRefused(
                f"HTTP {status}: {e.server_message or 'refused'}",
                status=status,
                server_message=e.server_message,
                retry_after_s=_retry_after_s(e.response),
                **where,
            ) from e
        raise HubUnavailable(f"HTTP {status}: {e.server_message or 'server error'}", **where) from e
    except httpx2.TimeoutException as e:
        raise HubTimeout(f"timed out: {type(e).__name__}", **where) from e
    except httpx2.RequestError as e:
        raise HubUnavailable(f"cannot reach the hub: {type(e).__name__}", **where) from e


def _retry_after_s(response: httpx2.Response) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds form) or the IETF ``RateLimit`` headers."""
    with contextlib.suppress(KeyError, ValueError):
        return float(response.headers["Retry-After"])
    info = parse_ratelimit_headers(response.headers)
    if info is not None and info.remaining == 0:
        return float(info.reset_in_seconds)
    return None

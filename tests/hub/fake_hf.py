"""An in-memory fake of the Hugging Face Hub HTTP API, served through an httpx2 MockTransport.

It answers only the requests huggingface_hub 2.4 makes for our adapter (read from its source):
``POST /api/repos/create``, ``POST /api/models/{repo}/preupload/main`` and ``/commit/main``
(NDJSON, base64 "regular" files), ``GET /api/models/{repo}/commits/main`` and
``GET /{repo}/resolve/{sha}/{file}``. Anything else is a 404. ``intercept`` lets a test answer
a request itself (errors, lying sizes, timeouts).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx2
from huggingface_hub import set_client_factory
from huggingface_hub.utils._http import hf_request_event_hook

_API = re.compile(r"^/api/models/([^/]+/[^/]+)/(preupload|commit|commits)/main$")
_RESOLVE = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


def install_transport(handler: Callable[[httpx2.Request], httpx2.Response]) -> None:
    """Serve every huggingface_hub request from ``handler`` (no sockets), like the default client."""
    set_client_factory(
        lambda: httpx2.Client(
            transport=httpx2.MockTransport(handler),
            event_hooks={"request": [hf_request_event_hook]},
            follow_redirects=True,
            timeout=None,
        )
    )


@dataclass
class Commit:
    sha: str
    title: str
    files: dict[str, bytes]


@dataclass
class FakeHf:
    endpoint: str = "https://hub.test"
    repos: dict[str, list[Commit]] = field(default_factory=dict)  # newest first
    requests: list[httpx2.Request] = field(default_factory=list)
    commit_headers: list[dict] = field(default_factory=list)
    intercept: Callable[[httpx2.Request], httpx2.Response | None] | None = None

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if self.intercept is not None and (response := self.intercept(request)) is not None:
            return response
        path = request.url.path
        if request.method == "POST" and path == "/api/repos/create":
            return self._create(json.loads(request.content))
        if match := _API.match(path):
            repo_id, action = match.groups()
            if repo_id not in self.repos:
                return _error(404, "RepoNotFound", "Repository not found")
            if action == "preupload":
                files = json.loads(request.content)["files"]
                answer = [
                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                    for f in files
                ]
                return httpx2.Response(200, json={"files": answer})
            if action == "commit":
                return self._commit(repo_id, request.content)
            return httpx2.Response(200, json=[_commit_json(c) for c in self.repos[repo_id]])
        if request.method == "GET" and (match := _RESOLVE.match(path)):
            return self._resolve(*match.groups())
        return httpx2.Response(404, json={"error": "no such route"})

    def _create(self, payload: dict) -> httpx2.Response:
        repo_id = f"{payload['organization']}/{payload['name']}"
        if repo_id in self.repos:
            return httpx2.Response(409, json={"error": "You already created this model repo"})
        self.repos[repo_id] = [Commit(_sha(repo_id, "initial"), "initial commit", {})]
        return httpx2.Response(200, json={"url": f"{self.endpoint}/{repo_id}"})

    def _commit(self, repo_id: str, body: bytes) -> httpx2.Response:
        lines = [json.loads(line) for line in body.splitlines() if line]
        header = lines[0]["value"]
        self.commit_headers.append(header)
        head = self.repos[repo_id][0]
        if header.get("parentCommit") not in (None, head.sha):
            return httpx2.Response(412, json={"error": "A commit has happened since."})
        files = dict(head.files)
        for line in lines[1:]:
            files[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
        commit = Commit(_sha(head.sha, header["summary"], *sorted(files)), header["summary"], files)
        self.repos[repo_id].insert(0, commit)
        url = f"{self.endpoint}/{repo_id}/commit/{commit.sha}"
        return httpx2.Response(200, json={"commitUrl": url, "commitOid": commit.sha})

    def _resolve(self, repo_id: str, revision: str, filename: str) -> httpx2.Response:
        if repo_id not in self.repos:
            return _error(404, "RepoNotFound", "Repository not found")
        commit = next((c for c in self.repos[repo_id] if c.sha == revision), None)
        if commit is None:
            return _error(404, "RevisionNotFound", "Invalid rev id")
        if filename not in commit.files:
            return _error(404, "EntryNotFound", "Entry not found")
        data = commit.files[filename]
        # An iterator body is streamed like a real socket (a bytes body arrives pre-read).
        headers = {"X-Repo-Commit": commit.sha, "Content-Length": str(len(data))}
        return httpx2.Response(200, headers=headers, content=iter([data]))


def _sha(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


def _commit_json(commit: Commit) -> dict:
    return {
        "id": commit.sha,
        "authors": [{"user": "miner"}],
        "date": "2025-01-02T03:04:05.000Z",
        "title": commit.title,
        "message": "",
    }


def _error(status: int, code: str, message: str) -> httpx2.Response:
    return httpx2.Response(
        status, headers={"X-Error-Code": code, "X-Error-Message": message}, json={"error": message}
    )

"""The Hugging Face adapter against an in-memory fake Hub (httpx2 MockTransport, no sockets)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from fake_hf import FakeHf, install_transport

from blockzero.hub import (
    FileNotFound,
    HubRefused,
    HubTimeout,
    HubUnavailable,
    RevisionNotFound,
    TooLarge,
)
from blockzero.hub.hf_hub import HfHub

REPO = "miner1/moe-group-0"
SECRET = "hf_SECRETtokenDoNotLeak0123456789"


@pytest.fixture
def fake() -> FakeHf:
    fake = FakeHf()
    install_transport(fake.handler)
    return fake


@pytest.fixture
def hub(fake: FakeHf) -> HfHub:
    hub = HfHub(endpoint=fake.endpoint)
    hub.ensure_repo(REPO)
    return hub


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _get(hub: HfHub, filename: str, sha: str, dest: Path, max_bytes: int = 1 << 20) -> Path:
    return hub.download(REPO, filename, sha, max_bytes=max_bytes, timeout_s=5, dest_dir=dest)


def _leftovers(dest: Path) -> list[Path]:
    return list(dest.rglob("*")) if dest.exists() else []


def _resolves(fake: FakeHf) -> list[httpx2.Request]:
    return [r for r in fake.requests if "/resolve/" in r.url.path]


def test_commit_then_pinned_download_round_trip(fake: FakeHf, hub: HfHub, tmp_path: Path) -> None:
    files = {
        "delta.safetensors": _file(tmp_path, "d", b"\x01" * 300),
        "meta/info.json": _file(tmp_path, "m", b"{}"),
    }
    sha = hub.upload(REPO, files, "cycle 7")

    assert sha == fake.repos[REPO][0].sha
    newest = hub.revisions(REPO)[0]
    assert (newest.sha, newest.message) == (sha, "cycle 7")
    assert len(hub.revisions(REPO)) == 2  # plus the Hub's initial commit
    path = _get(hub, "meta/info.json", sha, tmp_path / "dl")
    assert path == tmp_path / "dl" / "meta" / "info.json"
    assert path.read_bytes() == b"{}"
    assert _get(hub, "delta.safetensors", sha, tmp_path / "dl").read_bytes() == b"\x01" * 300
    assert all(f"/resolve/{sha}/" in r.url.path for r in _resolves(fake))
    assert [h.get("parentCommit") for h in fake.commit_headers] == [None]


def test_commit_paths_match_the_reference(fake: FakeHf, hub: HfHub, tmp_path: Path) -> None:
    hub.upload(REPO, {"f": _file(tmp_path, "f", b"1")}, "c")
    hub.revisions(REPO)
    assert [(r.method, r.url.path) for r in fake.requests] == [
        ("POST", "/api/repos/create"),
        ("POST", f"/api/models/{REPO}/preupload/main"),
        ("POST", f"/api/models/{REPO}/commit/main"),
        ("GET", f"/api/models/{REPO}/commits/main"),
    ]


def test_parent_commit_is_passed_and_stale_parent_refused(
    fake: FakeHf, hub: HfHub, tmp_path: Path
) -> None:
    initial = hub.revisions(REPO)[0].sha
    first = hub.upload(REPO, {"f": _file(tmp_path, "a", b"1")}, "c1", parent=initial)
    assert fake.commit_headers[-1]["parentCommit"] == initial

    with pytest.raises(HubRefused) as info:
        hub.upload(REPO, {"f": _file(tmp_path, "b", b"2")}, "c2", parent=initial)
    assert info.value.status == 412
    assert hub.revisions(REPO)[0].sha == first


def test_declared_size_over_cap_is_refused_before_the_body(
    fake: FakeHf, hub: HfHub, tmp_path: Path
) -> None:
    sha = hub.upload(REPO, {"big.bin": _file(tmp_path, "b", b"x" * 1000)}, "c")
    body_reads = []

    def counted() -> Iterator[bytes]:
        body_reads.append(1)
        yield b"x" * 1000

    fake.intercept = lambda r: (
        httpx2.Response(200, headers={"Content-Length": "1000"}, content=counted())
        if "/resolve/" in r.url.path
        else None
    )
    dest = tmp_path / "dest"
    with pytest.raises(TooLarge) as info:
        _get(hub, "big.bin", sha, dest, max_bytes=999)
    assert (info.value.max_bytes, info.value.seen_bytes) == (999, 1000)
    assert body_reads == []
    assert _leftovers(dest) == []


@pytest.mark.parametrize("declared", ["5", "not-a-number"])
def test_lying_server_is_cut_off_at_the_cap(
    fake: FakeHf, hub: HfHub, tmp_path: Path, declared: str
) -> None:
    sha = hub.upload(REPO, {"f.bin": _file(tmp_path, "f", b"small")}, "c")
    fake.intercept = lambda r: (
        httpx2.Response(200, headers={"Content-Length": declared}, content=iter([b"x" * 64] * 1000))
        if "/resolve/" in r.url.path
        else None
    )
    dest = tmp_path / "dest"
    with pytest.raises(TooLarge) as info:
        _get(hub, "f.bin", sha, dest, max_bytes=100)
    assert info.value.seen_bytes == 128
    assert _leftovers(dest) == []


def _respond(fake: FakeHf, response: httpx2.Response | Exception) -> None:
    def intercept(request: httpx2.Request) -> httpx2.Response | None:
        if "/resolve/" not in request.url.path and "/commit/" not in request.url.path:
            return None
        if isinstance(response, Exception):
            raise response
        return response

    fake.intercept = intercept


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx2.Response(404, headers={"X-Error-Code": "RevisionNotFound"}), RevisionNotFound),
        (httpx2.Response(404, headers={"X-Error-Code": "EntryNotFound"}), FileNotFound),
        (httpx2.Response(404, headers={"X-Error-Code": "RepoNotFound"}), RevisionNotFound),
        (httpx2.Response(404), FileNotFound),
        (httpx2.Response(403, json={"error": "no access"}), HubRefused),
        (httpx2.Response(500, json={"error": "boom"}), HubUnavailable),
        (httpx2.Response(503), HubUnavailable),
        (httpx2.ConnectError("refused"), HubUnavailable),
        (httpx2.ReadTimeout("slow"), HubTimeout),
    ],
)
def test_download_errors_are_typed(
    fake: FakeHf, hub: HfHub, tmp_path: Path, response, error: type[Exception]
) -> None:
    _respond(fake, response)
    with pytest.raises(error) as info:
        _get(hub, "f.bin", "a" * 40, tmp_path / "dest")
    assert info.value.__cause__ is not None
    assert (info.value.repo_id, info.value.revision) == (REPO, "a" * 40)
    assert _leftovers(tmp_path / "dest") == []


def test_real_missing_revision_and_file(hub: HfHub, tmp_path: Path) -> None:
    sha = hub.upload(REPO, {"f": _file(tmp_path, "f", b"1")}, "c")
    with pytest.raises(RevisionNotFound):
        _get(hub, "f", "b" * 40, tmp_path)
    with pytest.raises(FileNotFound):
        _get(hub, "g", sha, tmp_path)


def test_rate_limit_carries_retry_after(fake: FakeHf, hub: HfHub, tmp_path: Path) -> None:
    message = "You have exceeded the rate limit for repository commits (128 per hour)."
    _respond(fake, httpx2.Response(429, headers={"Retry-After": "17"}, json={"error": message}))
    with pytest.raises(HubRefused) as commit_info:
        hub.upload(REPO, {"f": _file(tmp_path, "f", b"1")}, "c")
    with pytest.raises(HubRefused) as download_info:
        _get(hub, "f", "a" * 40, tmp_path)
    for info in (commit_info, download_info):
        assert (info.value.status, info.value.retry_after_s) == (429, 17.0)
        assert info.value.server_message == message


def test_download_sends_a_timeout(fake: FakeHf, hub: HfHub, tmp_path: Path) -> None:
    sha = hub.upload(REPO, {"f": _file(tmp_path, "f", b"1")}, "c")
    hub.download(REPO, "f", sha, max_bytes=10, timeout_s=2.5, dest_dir=tmp_path)
    [request] = _resolves(fake)
    assert request.extensions["timeout"] == dict.fromkeys(("connect", "read", "write", "pool"), 2.5)
    assert request.headers["accept-encoding"] == "identity"


def test_token_is_used_but_never_logged_or_in_errors(
    fake: FakeHf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HF_TOKEN", SECRET)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="huggingface_hub")
    hub = HfHub(endpoint=fake.endpoint)
    hub.ensure_repo(REPO)
    sha = hub.upload(REPO, {"f": _file(tmp_path, "f", b"1")}, "c")
    _get(hub, "f", sha, tmp_path / "dl")
    assert {r.headers.get("authorization") for r in fake.requests} == {f"Bearer {SECRET}"}

    texts = [caplog.text, repr(hub)]
    for response in (httpx2.Response(401), httpx2.Response(429), httpx2.Response(500)):
        _respond(fake, response)
        for call in (
            lambda: _get(hub, "f", sha, tmp_path / "dl"),
            lambda: hub.upload(REPO, {"f": _file(tmp_path, "f", b"2")}, "c"),
        ):
            with pytest.raises(Exception) as info:
                call()
            texts += [str(info.value), repr(info.value), str(info.value.__cause__)]
    texts.append(caplog.text)
    assert "committed miner1/moe-group-0@" in caplog.text  # the logs were captured
    assert all(SECRET not in text for text in texts)

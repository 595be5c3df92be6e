"""Names from peers are checked before any I/O, identically for both adapters."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_hf import install_transport

from blockzero.hub import InvalidPath, InvalidRepoId, InvalidRevision, LocalHub
from blockzero.hub.hf_hub import HfHub
from blockzero.hub.port import validate_path, validate_repo_id, validate_revision

SHA = "a" * 40
BAD_REPO_IDS = [
    "",
    "noslash",
    "a/b/c",
    "/name",
    "owner/",
    "own er/x",
    "o/-x",
    "o/x-",
    "o/.x",
    "o/a..b",
    "o/a--b",
    "o/x.git",
    "o/" + "a" * 97,
    "ö/x",
    "o/x\n",
    "../x",
]
BAD_PATHS = ["", "/abs", "../x", "a/../b", "a/..", "a\\b", "a//b", "a/", "./a", "a/./b", "a\x00b"]


@pytest.mark.parametrize("repo_id", BAD_REPO_IDS)
def test_bad_repo_ids_rejected(repo_id: str) -> None:
    with pytest.raises(InvalidRepoId):
        validate_repo_id(repo_id)


@pytest.mark.parametrize(
    "repo_id", ["a/b", "miner1/moe-group-0", "Org_1/model.v2", "o/" + "a" * 96]
)
def test_good_repo_ids_accepted(repo_id: str) -> None:
    assert validate_repo_id(repo_id) == repo_id


@pytest.mark.parametrize("path", BAD_PATHS)
def test_bad_paths_rejected(path: str) -> None:
    with pytest.raises(InvalidPath):
        validate_path(path)


@pytest.mark.parametrize("path", ["delta.safetensors", "shards/group-0.safetensors", "a/b/c..d"])
def test_good_paths_accepted(path: str) -> None:
    assert validate_path(path) == path


@pytest.mark.parametrize("revision", ["main", "A" * 40, "a" * 39, "a" * 41, "g" * 40, ""])
def test_only_commit_shas_are_revisions(revision: str) -> None:
    with pytest.raises(InvalidRevision):
        validate_revision(revision)


def _bad_calls(tmp_path: Path) -> list:
    local = tmp_path / "file"
    return [
        (InvalidRepoId, lambda hub: hub.ensure_repo("../etc")),
        (InvalidRepoId, lambda hub: hub.revisions("a/b/c")),
        (InvalidRepoId, lambda hub: hub.upload("nope", {"f": local}, "m")),
        (InvalidPath, lambda hub: hub.upload("o/r", {"../f": local}, "m")),
        (InvalidPath, lambda hub: hub.upload("o/r", {"a": local, "a/b": local}, "m")),
        (InvalidRevision, lambda hub: hub.upload("o/r", {"f": local}, "m", parent="main")),
        (InvalidPath, lambda hub: _download(hub, "o/r", "/etc/passwd", SHA, tmp_path)),
        (InvalidPath, lambda hub: _download(hub, "o/r", "a\\..\\b", SHA, tmp_path)),
        (InvalidRevision, lambda hub: _download(hub, "o/r", "f", "main", tmp_path)),
        (InvalidRepoId, lambda hub: _download(hub, "o/..", "f", SHA, tmp_path)),
    ]


def _download(hub, repo_id: str, filename: str, revision: str, tmp_path: Path) -> Path:
    dest = tmp_path / "dest"
    return hub.download(repo_id, filename, revision, max_bytes=10, timeout_s=1, dest_dir=dest)


def test_local_hub_rejects_before_io(tmp_path: Path) -> None:
    root = tmp_path / "hub_root"
    hub = LocalHub(root)
    for error, call in _bad_calls(tmp_path):
        with pytest.raises(error):
            call(hub)
    assert not root.exists()
    assert not (tmp_path / "dest").exists()


def test_hf_hub_rejects_before_io(tmp_path: Path) -> None:
    seen = []
    install_transport(lambda request: seen.append(request) or pytest.fail("request sent"))
    hub = HfHub(endpoint="https://hub.test")
    for error, call in _bad_calls(tmp_path):
        with pytest.raises(error):
            call(hub)
    assert seen == []
    assert not (tmp_path / "dest").exists()

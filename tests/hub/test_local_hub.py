"""The embedded hub: content-addressed immutable revisions, safe across processes."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import hub_writer
import pytest

import blockzero
from blockzero.hub import FileNotFound, HubRefused, LocalHub, RevisionNotFound, TooLarge

REPO = "miner1/moe-group-0"
WRITER = Path(hub_writer.__file__)
REPO_ROOT = Path(blockzero.__file__).parents[1]


@pytest.fixture
def hub(tmp_path: Path) -> LocalHub:
    hub = LocalHub(tmp_path / "hub")
    hub.ensure_repo(REPO)
    return hub


def _files(tmp_path: Path, contents: dict[str, bytes]) -> dict[str, Path]:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    files = {}
    for i, (path_in_repo, data) in enumerate(contents.items()):
        local = src / f"{i}-{hashlib.sha256(data).hexdigest()[:8]}"
        local.write_bytes(data)
        files[path_in_repo] = local
    return files


def _get(hub: LocalHub, filename: str, sha: str, dest: Path, max_bytes: int = 1 << 20) -> bytes:
    path = hub.download(REPO, filename, sha, max_bytes=max_bytes, timeout_s=10, dest_dir=dest)
    return path.read_bytes()


def test_round_trip_and_layout(hub: LocalHub, tmp_path: Path) -> None:
    contents = {"delta.safetensors": b"\x00" * 100, "meta/info.json": b"{}"}
    sha = hub.upload(REPO, _files(tmp_path, contents), "cycle 7")

    assert len(sha) == 40 and int(sha, 16) >= 0
    [rev] = hub.revisions(REPO)
    assert (rev.sha, rev.message) == (sha, "cycle 7")
    assert rev.timestamp is not None and rev.timestamp.tzinfo is not None
    for name, data in contents.items():
        assert _get(hub, name, sha, tmp_path / "dl") == data
        committed = hub.root / "miner1" / "moe-group-0" / "revisions" / sha / name
        assert committed.read_bytes() == data
        assert not committed.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert list((hub.root / "miner1" / "moe-group-0" / "staging").iterdir()) == []


def test_history_is_newest_first_and_old_revisions_keep_their_bytes(
    hub: LocalHub, tmp_path: Path
) -> None:
    first = hub.upload(REPO, _files(tmp_path, {"d.bin": b"one"}), "c1")
    second = hub.upload(REPO, _files(tmp_path, {"d.bin": b"two"}), "c2", parent=first)

    assert [r.sha for r in hub.revisions(REPO)] == [second, first]
    assert _get(hub, "d.bin", first, tmp_path / "a") == b"one"
    assert _get(hub, "d.bin", second, tmp_path / "b") == b"two"


def test_sha_is_derived_from_parent_message_and_content(tmp_path: Path) -> None:
    def sha_of(name: str, data: bytes, message: str) -> str:
        hub = LocalHub(tmp_path / name)
        hub.ensure_repo(REPO)
        return hub.upload(REPO, _files(tmp_path / name, {"f": data}), message)

    base = sha_of("a", b"x", "m")
    assert sha_of("b", b"x", "m") == base
    assert sha_of("c", b"y", "m") != base
    assert sha_of("d", b"x", "other") != base


def test_stale_parent_is_refused(hub: LocalHub, tmp_path: Path) -> None:
    first = hub.upload(REPO, _files(tmp_path, {"f": b"1"}), "c1")
    hub.upload(REPO, _files(tmp_path, {"f": b"2"}), "c2", parent=first)

    with pytest.raises(HubRefused) as info:
        hub.upload(REPO, _files(tmp_path, {"f": b"3"}), "c3", parent=first)
    assert info.value.status == 412
    assert len(hub.revisions(REPO)) == 2


def test_over_cap_download_leaves_no_file(hub: LocalHub, tmp_path: Path) -> None:
    sha = hub.upload(REPO, _files(tmp_path, {"big.bin": b"x" * 1000}), "c")
    dest = tmp_path / "dest"

    with pytest.raises(TooLarge) as info:
        _get(hub, "big.bin", sha, dest, max_bytes=999)
    assert (info.value.max_bytes, info.value.seen_bytes) == (999, 1000)
    assert not dest.exists() or list(dest.rglob("*")) == []
    assert _get(hub, "big.bin", sha, dest, max_bytes=1000) == b"x" * 1000


def test_missing_repo_revision_and_file(hub: LocalHub, tmp_path: Path) -> None:
    sha = hub.upload(REPO, _files(tmp_path, {"f": b"1"}), "c")
    with pytest.raises(RevisionNotFound):
        hub.revisions("nobody/nothing")
    with pytest.raises(RevisionNotFound):
        hub.upload("nobody/nothing", _files(tmp_path, {"f": b"1"}), "c")
    with pytest.raises(RevisionNotFound):
        _get(hub, "f", "0" * 40, tmp_path / "dl")
    with pytest.raises(FileNotFound):
        _get(hub, "g", sha, tmp_path / "dl")


def _spawn_writer(root: Path, tag: str, num_commits: int, pause_s: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    args = [sys.executable, str(WRITER), str(root), REPO, tag, str(num_commits), str(pause_s)]
    return subprocess.Popen(args, env=env)


def _check_whole(hub: LocalHub, rev_sha: str, message: str, dest: Path) -> None:
    """A revision is whole when its meta matches its message and its blob matches its meta."""
    meta = json.loads(_get(hub, "nested/meta.json", rev_sha, dest))
    assert message == hub_writer.message(meta["tag"], meta["i"])
    blob = _get(hub, "blob.bin", rev_sha, dest)
    assert blob == hub_writer.blob(meta["tag"], meta["i"])
    assert hashlib.sha256(blob).hexdigest() == meta["sha256"]


def test_reader_never_sees_a_partial_revision(hub: LocalHub, tmp_path: Path) -> None:
    num_commits = 10
    writer = _spawn_writer(hub.root, "w", num_commits, pause_s=0.02)
    seen_counts = set()
    while True:
        finished = writer.poll() is not None
        revisions = hub.revisions(REPO)
        seen_counts.add(len(revisions))
        for rev in revisions[:2]:  # the newest are the ones a writer just touched
            _check_whole(hub, rev.sha, rev.message, tmp_path / "dl")
        if finished:
            break
    assert writer.returncode == 0
    assert len(hub.revisions(REPO)) == num_commits
    assert len(seen_counts - {0, num_commits}) > 0, "reader never overlapped the writer"


def test_concurrent_writers_both_land(hub: LocalHub, tmp_path: Path) -> None:
    num_commits = 6
    writers = [_spawn_writer(hub.root, tag, num_commits, pause_s=0) for tag in ("a", "b")]
    assert [w.wait(timeout=60) for w in writers] == [0, 0]

    revisions = hub.revisions(REPO)
    expected = {hub_writer.message(t, i) for t in ("a", "b") for i in range(num_commits)}
    assert sorted(r.message for r in revisions) == sorted(expected)
    refs = json.loads((hub.root / REPO / "refs.json").read_text())["revisions"]
    assert [e["parent"] for e in refs] == [e["sha"] for e in refs[1:]] + [None]
    for rev in revisions:
        _check_whole(hub, rev.sha, rev.message, tmp_path / "dl")

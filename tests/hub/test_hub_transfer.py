"""The capped writer: a file appears whole or not at all."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from blockzero.hub import HubTimeout, TooLarge
from blockzero.hub.transfer import write_capped

WHERE = {"repo_id": "o/r", "revision": "a" * 40, "filename": "f.bin"}


def _write(chunks, target: Path, *, max_bytes: int = 100, deadline_in_s: float = 10) -> Path:
    deadline = time.monotonic() + deadline_in_s
    return write_capped(chunks, target, max_bytes=max_bytes, deadline=deadline, **WHERE)


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_writes_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.bin"
    assert _write([b"ab", b"", b"cd"], target, max_bytes=4) == target
    assert target.read_bytes() == b"abcd"
    assert _all_files(tmp_path) == [target]


def test_over_cap_midstream_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(TooLarge) as info:
        _write(iter([b"x" * 60, b"x" * 60, b"x" * 60]), tmp_path / "f.bin")
    assert (info.value.max_bytes, info.value.seen_bytes) == (100, 120)
    assert _all_files(tmp_path) == []


def test_deadline_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(HubTimeout):
        _write([b"x"], tmp_path / "f.bin", deadline_in_s=-1)
    assert _all_files(tmp_path) == []


def test_failing_source_keeps_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def broken():
        yield b"new"
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        _write(broken(), target)
    assert target.read_bytes() == b"old"
    assert _all_files(tmp_path) == [target]

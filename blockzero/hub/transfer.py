"""Write a byte stream to a file that appears whole or not at all, under a byte cap and a deadline.

Both adapters download through :func:`write_capped`, so the cap, the deadline and "no partial
file" are enforced by one piece of code whatever the source of the bytes.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from blockzero.hub.errors import HubTimeout, TooLarge


def write_capped(
    chunks: Iterable[bytes],
    target: Path,
    *,
    max_bytes: int,
    deadline: float,
    repo_id: str,
    revision: str,
    filename: str,
) -> Path:
    """Stream ``chunks`` into ``target`` via a temp file in the same directory, then rename.

    Raises ``TooLarge`` as soon as more than ``max_bytes`` arrived and ``HubTimeout`` once
    ``time.monotonic()`` passes ``deadline`` (checked per chunk, so a source that blocks inside
    one chunk is bounded by its own timeout). On any error the temp file is removed.
    """
    where = {"repo_id": repo_id, "revision": revision, "filename": filename}
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            seen = 0
            for chunk in chunks:
                seen += len(chunk)
                if seen > max_bytes:
                    raise TooLarge(
                        f"received more than the cap of {max_bytes} bytes",
                        max_bytes=max_bytes,
                        seen_bytes=seen,
                        **where,
                    )
                if time.monotonic() >= deadline:
                    raise HubTimeout(f"download passed its deadline after {seen} bytes", **where)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return target

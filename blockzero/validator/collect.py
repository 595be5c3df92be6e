"""Collect a cycle's submissions: who committed and revealed in time, then fetch and verify.

Commitments are read exactly as docs/cycle.md says: hash commitments as of the last commit
block, reveals as of the last reveal block (a reveal replaces its hash on chain), and the latest
ones only to tell a late reveal from a missing one. Downloads run in a bounded thread pool, each
with a byte cap and a deadline, and yield as they finish, so verification and scoring of one
file overlap the download of the next. Every failure is a recorded reason, never an exception.
"""

import hashlib
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict
from safetensors import SafetensorError, safe_open

from blockzero.chain.port import Chain, Commitment
from blockzero.delta.codecs import CODECS
from blockzero.delta.hashing import sha256_file
from blockzero.delta.pseudo_gradient import global_norm
from blockzero.delta.submission import (
    Expectation,
    InvalidSubmission,
    Rejection,
    SubmissionMeta,
    read_submission,
)
from blockzero.hub.errors import (
    FileNotFound,
    HubError,
    HubTimeout,
    HubUnavailable,
    RevisionNotFound,
    TooLarge,
)
from blockzero.hub.port import Hub
from blockzero.model.group_rows import GroupTensors
from blockzero.protocol.commitments import (
    HashCommitment,
    RevealCommitment,
    decode,
    submission_digest,
)
from blockzero.protocol.cycle import CycleSchedule, Phase
from blockzero.protocol.errors import CommitmentRejected
from blockzero.validator.evidence import Reason

logger = logging.getLogger(__name__)

SUBMISSION_FILE = "delta.safetensors"
SKETCH_SIZE = 1 << 16


@dataclass(frozen=True)
class Candidate:
    """A miner that took part in the cycle; `reason` set when it failed before any download."""

    hotkey: str
    uid: int
    group: int
    hash: HashCommitment | None = None
    hash_block: int | None = None
    reveal: RevealCommitment | None = None
    reveal_block: int | None = None
    reason: Reason | None = None
    detail: str = ""

    @property
    def order(self) -> tuple[int, str]:
        """Earlier hash commitment first: a later identical delta is the copy."""
        return (self.hash_block if self.hash_block is not None else 1 << 62, self.hotkey)


@dataclass(frozen=True)
class Verified:
    path: Path
    file_sha256: str
    content_sha256: str
    norm: float
    sketch: torch.Tensor
    delta: GroupTensors


@dataclass(frozen=True)
class Refused:
    reason: Rejection | Reason
    detail: str
    file_sha256: str | None = None


def _parse(entry: Commitment | None, kind: type, cycle: int, window: tuple[int, int]):
    if entry is None:
        return None
    try:
        parsed = decode(entry.data)
    except CommitmentRejected:
        return None
    if isinstance(parsed, kind) and parsed.cycle == cycle and window[0] <= entry.block < window[1]:
        return parsed
    return None


def candidates(
    chain: Chain, schedule: CycleSchedule, cycle: int, groups: dict[str, int], uids: dict[str, int]
) -> list[Candidate]:
    """Every assigned miner that committed or revealed for `cycle`, in hotkey order."""
    commit = schedule.phase_window(cycle, Phase.COMMIT)
    reveal = schedule.phase_window(cycle, Phase.REVEAL)
    hashes = chain.commitments(at_block=commit.stop - 1)
    reveals = chain.commitments(at_block=reveal.stop - 1)
    latest = chain.commitments()
    out = []
    for hotkey in sorted(groups):
        h = _parse(hashes.get(hotkey), HashCommitment, cycle, commit)
        r = _parse(reveals.get(hotkey), RevealCommitment, cycle, reveal)
        late = _parse(latest.get(hotkey), RevealCommitment, cycle, (reveal.stop, 1 << 62))
        base = Candidate(hotkey=hotkey, uid=uids[hotkey], group=groups[hotkey])
        if r is None and late is None and h is None:
            continue
        if r is not None and h is not None:
            found = replace(
                base,
                hash=h,
                hash_block=hashes[hotkey].block,
                reveal=r,
                reveal_block=reveals[hotkey].block,
            )
        elif late is not None:
            detail = f"revealed at block {latest[hotkey].block}, window closed at {reveal.stop}"
            found = replace(base, reason=Reason.LATE, detail=detail)
        elif h is None:
            detail = (
                f"no hash commitment for cycle {cycle} in blocks {commit.start}..{commit.stop - 1}"
            )
            found = replace(base, reason=Reason.NO_COMMITMENT, detail=detail)
        else:
            detail = (
                f"no valid reveal for cycle {cycle} in blocks {reveal.start}..{reveal.stop - 1}"
            )
            found = replace(base, reason=Reason.NOT_REVEALED, detail=detail)
        out.append(found)
    return out


def content_sha256(delta: GroupTensors) -> str:
    """Hash of the tensors alone: a copy re-signed with another hotkey has other file bytes."""
    h = hashlib.sha256()
    for name in sorted(delta):
        h.update(name.encode() + b"\x00")
        h.update(delta[name].to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def sketch(delta: GroupTensors, size: int = SKETCH_SIZE) -> torch.Tensor:
    """A fixed strided sample of the delta's coordinates; cosines of sketches track the full
    cosines (error ~ 1/sqrt(size)) at bounded memory whatever the model size."""
    total = sum(t.numel() for t in delta.values())
    parts = []
    for name in sorted(delta):
        flat = delta[name].reshape(-1)
        step = max(1, (total + size - 1) // size)
        parts.append(flat[::step].to(torch.float32))
    return torch.cat(parts)


def _declared(path: Path) -> dict[str, str]:
    try:
        with safe_open(str(path), "pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError):
        return {}


def _refine(declared: dict[str, str], meta: SubmissionMeta, error: InvalidSubmission) -> Refused:
    """Name the metadata mismatches the protocol cares about."""
    if error.reason is Rejection.BAD_METADATA:
        for field, reason in (
            ("cycle", Reason.WRONG_CYCLE),
            ("group", Reason.WRONG_GROUP),
            ("base_revision", Reason.STALE_BASE),
        ):
            want = str(getattr(meta, field))
            if field in declared and declared[field] != want:
                return Refused(reason, f"{field} {declared[field]!r}, expected {want!r}")
    return Refused(error.reason, error.detail)


def verify(
    path: Path, candidate: Candidate, expect: Callable[[str], Expectation]
) -> Verified | Refused:
    """Digest against the hash commitment, then layout, values and norm (`read_submission`)."""
    file_sha = sha256_file(path)
    assert candidate.hash is not None
    if (
        submission_digest(bytes.fromhex(file_sha), candidate.hotkey, candidate.hash.cycle)
        != candidate.hash.digest
    ):
        return Refused(Reason.HASH_MISMATCH, "file does not match the hash committed", file_sha)
    declared = _declared(path)
    codec = declared.get("codec", "bf16")
    exp = expect(codec if codec in CODECS else "bf16")
    try:
        delta, _ = read_submission(path, exp)
    except InvalidSubmission as e:
        refused = _refine(declared, exp.meta, e)
        return Refused(refused.reason, refused.detail, file_sha)
    return Verified(
        path=path,
        file_sha256=file_sha,
        content_sha256=content_sha256(delta),
        norm=global_norm(delta),
        sketch=sketch(delta),
        delta=delta,
    )


def download(
    hub: Hub, candidate: Candidate, dest: Path, *, max_bytes: int, timeout_s: float
) -> Path | Refused:
    assert candidate.reveal is not None
    r = candidate.reveal
    try:
        return hub.download(
            r.repo_id,
            SUBMISSION_FILE,
            r.revision,
            max_bytes=max_bytes,
            timeout_s=timeout_s,
            dest_dir=dest,
        )
    except TooLarge as e:
        return Refused(Rejection.TOO_LARGE, str(e))
    except (FileNotFound, RevisionNotFound) as e:
        return Refused(Reason.FILE_MISSING, str(e))
    except HubTimeout as e:
        return Refused(Reason.DOWNLOAD_TIMEOUT, str(e))
    except HubUnavailable as e:
        return Refused(Reason.UNAVAILABLE, str(e))
    except HubError as e:
        return Refused(Reason.FILE_MISSING, f"{type(e).__name__}: {e}")


def fetch_all(
    hub: Hub,
    todo: list[Candidate],
    work_dir: Path,
    expect: Callable[[Candidate, str], Expectation],
    *,
    workers: int,
    max_bytes: int,
    timeout_s: float,
    verify_in_pool: bool = True,
) -> Iterator[tuple[Candidate, Verified | Refused]]:
    """Fetch and verify every candidate in a bounded pool; yield each as soon as it is ready.

    With the model on a GPU the pool also verifies, hidden behind the forward passes. With the
    model on the CPU the tensor checks run in the caller's thread instead: torch ops in the pool
    would fight the forward pass for the same cores (OpenMP oversubscription measured +48%)."""

    def one(c: Candidate) -> Verified | Refused | Path:
        got = download(hub, c, work_dir / c.hotkey, max_bytes=max_bytes, timeout_s=timeout_s)
        if isinstance(got, Refused) or not verify_in_pool:
            return got
        return verify(got, c, lambda codec: expect(c, codec))

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as pool:
        futures = {pool.submit(one, c): c for c in todo}
        for future in as_completed(futures):
            c, got = futures[future], future.result()
            if isinstance(got, Path):
                got = verify(got, c, lambda codec, c=c: expect(c, codec))
            yield c, got


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.nn.functional.cosine_similarity(a, b, dim=0).item()


def duplicates(
    items: list[tuple[Candidate, Verified]], threshold: float
) -> dict[str, tuple[Reason, str]]:
    """Later exact (same tensors) or near (cosine >= threshold) copies within a group."""
    out: dict[str, tuple[Reason, str]] = {}
    ordered = sorted(items, key=lambda cv: cv[0].order)
    for i, (c, v) in enumerate(ordered):
        for earlier, ev in ordered[:i]:
            if earlier.group != c.group:
                continue
            if ev.content_sha256 == v.content_sha256:
                out[c.hotkey] = (Reason.DUPLICATE, f"same tensors as {earlier.hotkey}")
                break
            cos = _cosine(v.sketch, ev.sketch)
            if cos >= threshold:
                out[c.hotkey] = (Reason.DUPLICATE, f"cosine {cos:.4f} with {earlier.hotkey}")
                break
    return out


class PastDelta(BaseModel):
    """A delta accepted in an earlier cycle. Its sketch is kept in the validator's state, so a
    miner re-submitting it (its own or anyone's) in a later cycle is refused as a replay."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cycle: int
    hotkey: str
    content_sha256: str

    @property
    def key(self) -> str:
        """Its sketch's name in the state's sketch file."""
        return f"{self.cycle}:{self.hotkey}"


def replay_of(
    verified: Verified,
    *,
    cycle: int,
    past: list[PastDelta],
    sketches: dict[str, torch.Tensor],
    window: int,
    threshold: float,
) -> Refused | None:
    """The same test as `duplicates`, against the accepted deltas of the `window` cycles before
    `cycle`, in any group of the same shape: assignments rotate, so a miner's old delta comes
    back under another group id. Runs before scoring: a replay costs no forward passes."""
    for p in past:
        if not cycle - window <= p.cycle < cycle:
            continue
        if p.content_sha256 == verified.content_sha256:
            detail = f"same tensors as {p.hotkey}'s accepted delta of cycle {p.cycle}"
            return Refused(Reason.REPLAY, detail, verified.file_sha256)
        old = sketches[p.key]
        cos = _cosine(verified.sketch, old) if old.shape == verified.sketch.shape else 0.0
        if cos >= threshold:
            detail = f"cosine {cos:.4f} with {p.hotkey}'s accepted delta of cycle {p.cycle}"
            return Refused(Reason.REPLAY, detail, verified.file_sha256)
    return None

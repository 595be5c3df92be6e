"""What nodes write on chain, as short ASCII strings that fit one `Raw128` commitment field.

A commitment is `bz<version><kind>:` followed by `:`-separated fields (docs/protocol.md has the
byte layout). Hashes and revisions travel as unpadded base64url to fit the 128-byte field;
the models hold the hub's 40-hex revision and raw digest bytes. Everything read from the chain
is hostile: `decode` checks size before parsing, accepts only the exact canonical form of the
current version, and raises `CommitmentRejected` with a reason for anything else.
"""

import base64
import hashlib
import re
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from blockzero.protocol.errors import CommitmentRejected
from blockzero.protocol.version import PROTOCOL_VERSION

MAX_COMMITMENT_BYTES = 128
"""One `Raw128` field: the largest raw commitment field the chain accepts (bittensor11.md §4)."""

MAX_CYCLE = 2**32
"""Cycles are below 2**32 (blocks are u32), so a cycle is at most 10 decimal digits."""

_SUBMISSION_TAG = b"blockzero/submission/v1\x00"
_PREFIX = re.compile(r"bz(0|[1-9][0-9]{0,2})([a-z])")
_CYCLE_TEXT = re.compile(r"0|[1-9][0-9]{0,9}")
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_REPO_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")


def submission_digest(file_sha256: bytes, hotkey: str, cycle: int) -> bytes:
    """sha256(tag || file_sha256 || hotkey || cycle as u64 big-endian).

    Binding the hotkey makes a copied commitment useless to another miner, binding the cycle
    makes an old one useless later. The two outer parts are fixed width, so the concatenation
    is unambiguous; the tag keeps these digests apart from any other sha256 use.
    """
    if len(file_sha256) != 32:
        raise ValueError(f"file_sha256 must be 32 bytes, got {len(file_sha256)}")
    if not hotkey:
        raise ValueError("hotkey must not be empty")
    if not 0 <= cycle < MAX_CYCLE:
        raise ValueError(f"cycle must be in [0, 2**32), got {cycle}")
    payload = _SUBMISSION_TAG + file_sha256 + hotkey.encode() + cycle.to_bytes(8, "big")
    return hashlib.sha256(payload).digest()


def _check_repo_id(repo_id: str) -> str:
    """`namespace/name` as the hub allows it; nothing that could walk a path."""
    parts = repo_id.split("/")
    ok = (
        len(parts) == 2
        and all(_REPO_PART.fullmatch(p) for p in parts)
        and ".." not in repo_id
        and "--" not in repo_id
    )
    if not ok:
        raise ValueError(f"repo id must be namespace/name of [A-Za-z0-9._-], got {repo_id!r}")
    return repo_id


RepoId = Annotated[str, AfterValidator(_check_repo_id)]
Cycle = Annotated[int, Field(ge=0, lt=MAX_CYCLE)]
Sha256 = Annotated[bytes, Field(min_length=32, max_length=32)]
Revision = Annotated[str, Field(pattern=r"^[0-9a-f]{40}$")]


class _Commitment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    kind: ClassVar[str]
    wire_fields: ClassVar[tuple[str, ...]]
    """Field names in the order they appear on the wire, after the prefix."""

    cycle: Cycle

    @model_validator(mode="after")
    def _fits_on_chain(self) -> "_Commitment":
        """Bound the repo id for the worst case (10-digit cycle): validity must not depend on cycle."""
        repo_id = getattr(self, "repo_id", "")
        limit = max_repo_id_length(type(self))
        if len(repo_id) > limit:
            raise ValueError(
                f"repo id is {len(repo_id)} characters; a {type(self).__name__} allows at most "
                f"{limit} to fit the {MAX_COMMITMENT_BYTES}-byte chain field"
            )
        return self


class HashCommitment(_Commitment):
    """Commit phase: the miner's `submission_digest` for this cycle, before the file is public."""

    kind: ClassVar[str] = "h"
    wire_fields: ClassVar[tuple[str, ...]] = ("cycle", "digest")

    digest: Sha256

    @classmethod
    def bind(cls, *, file_sha256: bytes, hotkey: str, cycle: int) -> "HashCommitment":
        return cls(cycle=cycle, digest=submission_digest(file_sha256, hotkey, cycle))


class RevealCommitment(_Commitment):
    """Reveal phase: where the committed file is, at an immutable hub revision."""

    kind: ClassVar[str] = "r"
    wire_fields: ClassVar[tuple[str, ...]] = ("cycle", "revision", "repo_id")

    revision: Revision
    repo_id: RepoId


class ManifestCommitment(_Commitment):
    """Validator: the global model after `cycle`'s merge, and the sha256 of its manifest file."""

    kind: ClassVar[str] = "m"
    wire_fields: ClassVar[tuple[str, ...]] = ("cycle", "revision", "manifest_sha256", "repo_id")

    revision: Revision
    manifest_sha256: Sha256
    repo_id: RepoId


Commitment = HashCommitment | RevealCommitment | ManifestCommitment
_KINDS: dict[str, type[_Commitment]] = {
    c.kind: c for c in (HashCommitment, RevealCommitment, ManifestCommitment)
}
_RAW_BYTES = {"revision": 20, "digest": 32, "manifest_sha256": 32}
"""Fields sent as unpadded base64url of this many raw bytes (a revision as its 20 hex bytes)."""


def encode(commitment: _Commitment) -> str:
    """The on-chain text; raises `ValueError` if it would not fit `MAX_COMMITMENT_BYTES`."""
    fields = [_encode_field(name, getattr(commitment, name)) for name in commitment.wire_fields]
    text = ":".join([f"bz{PROTOCOL_VERSION}{commitment.kind}", *fields])
    if len(text) > MAX_COMMITMENT_BYTES:
        raise ValueError(f"commitment is {len(text)} bytes, over {MAX_COMMITMENT_BYTES}: {text!r}")
    return text


def max_repo_id_length(cls: type[_Commitment]) -> int:
    """The longest repo id that keeps a worst-case (10-digit cycle) commitment of `cls` on chain."""
    widths = {"cycle": len(str(MAX_CYCLE - 1)), "repo_id": 0}
    widths |= {name: len(_b64encode(bytes(n))) for name, n in _RAW_BYTES.items()}
    fixed = len(f"bz{PROTOCOL_VERSION}{cls.kind}") + sum(widths[f] + 1 for f in cls.wire_fields)
    return MAX_COMMITMENT_BYTES - fixed


def decode(text: str | bytes) -> Commitment:
    """Parse a chain commitment, or raise `CommitmentRejected(reason)`."""
    if not isinstance(text, str | bytes):
        raise CommitmentRejected(f"not text but {type(text).__name__}")
    if not text:
        raise CommitmentRejected("empty")
    if len(text) > MAX_COMMITMENT_BYTES:
        raise CommitmentRejected(f"oversize ({len(text)} > {MAX_COMMITMENT_BYTES} bytes)")
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise CommitmentRejected("not printable ASCII") from None
    if not (text.isascii() and text.isprintable()) or " " in text:
        raise CommitmentRejected("not printable ASCII without spaces")
    head, *fields = text.split(":")
    prefix = _PREFIX.fullmatch(head)
    if prefix is None:
        raise CommitmentRejected(f"unknown prefix {head[:16]!r}")
    version, kind = int(prefix[1]), prefix[2]
    if version != PROTOCOL_VERSION:
        raise CommitmentRejected(
            f"protocol version {version}, this node speaks version {PROTOCOL_VERSION}"
        )
    if kind not in _KINDS:
        raise CommitmentRejected(f"unknown kind {kind!r}")
    cls = _KINDS[kind]
    if len(fields) != len(cls.wire_fields):
        raise CommitmentRejected(
            f"kind {kind!r} takes {len(cls.wire_fields)} fields, got {len(fields)}"
        )
    values = {name: _decode_field(name, f) for name, f in zip(cls.wire_fields, fields, strict=True)}
    try:
        return cls(**values)  # type: ignore[return-value]
    except ValidationError as e:
        error = e.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "commitment"
        raise CommitmentRejected(f"{where}: {error['msg']}") from None


def _encode_field(name: str, value: object) -> str:
    if name == "revision":
        return _b64encode(bytes.fromhex(str(value)))
    if isinstance(value, bytes):
        return _b64encode(value)
    return str(value)


def _decode_field(name: str, field: str) -> object:
    if name == "cycle":
        if not _CYCLE_TEXT.fullmatch(field):
            raise CommitmentRejected(f"cycle {field[:16]!r} is not a canonical decimal")
        return int(field)
    if name == "revision":
        return _b64decode(field, _RAW_BYTES[name], name).hex()
    if name in _RAW_BYTES:
        return _b64decode(field, _RAW_BYTES[name], name)
    return field


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(field: str, num_bytes: int, name: str) -> bytes:
    """Only the one canonical unpadded base64url spelling of exactly `num_bytes` bytes."""
    expected_len = len(_b64encode(bytes(num_bytes)))
    if len(field) != expected_len or not _B64URL.fullmatch(field):
        raise CommitmentRejected(f"{name} must be {expected_len} base64url characters")
    raw = base64.urlsafe_b64decode(field + "=" * (-len(field) % 4))
    if _b64encode(raw) != field:
        raise CommitmentRejected(f"{name} is not canonical base64url")
    return raw

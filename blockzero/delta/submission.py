"""The submission file: a miner's pseudo-gradient as safetensors, and its verification.

Layout (see docs/delta.md): a safetensors file whose tensors are exactly the group's expert rows
under their full-model names (`model.layers.{i}.mlp.experts.{gate_up_proj|down_proj}`, shape
`[group size, ...]`), all in the codec's dtype, plus string metadata: format, protocol version,
base model revision, cycle, group, hotkey, tokens trained, codec.

Verification treats the file as hostile: the size is capped before anything is read, the header
is parsed by hand with its own cap and checked against the expected keys, shapes and dtypes
before any tensor is loaded, and only then are values checked (finite, norm bound). Nothing is
ever unpickled.
"""

import json
import math
import struct
from enum import StrEnum
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from blockzero.atomic import atomic_path
from blockzero.delta.pseudo_gradient import global_norm
from blockzero.model.group_rows import GroupTensors
from blockzero.protocol.version import PROTOCOL_VERSION

FORMAT = "blockzero-delta"
MAX_HEADER_BYTES = 1 << 20
CODEC_DTYPES: dict[str, tuple[torch.dtype, str]] = {
    "bf16": (torch.bfloat16, "BF16"),
    "fp32": (torch.float32, "F32"),
}
Codec = Literal["bf16", "fp32"]


class Rejection(StrEnum):
    """Why a submission was refused. Recorded per miner and published as evidence."""

    TOO_LARGE = "too_large"
    MALFORMED = "malformed"
    MISSING_KEY = "missing_key"
    EXTRA_KEY = "extra_key"
    BAD_SHAPE = "bad_shape"
    BAD_DTYPE = "bad_dtype"
    NON_FINITE = "non_finite"
    OVER_NORM = "over_norm"
    BAD_METADATA = "bad_metadata"


class InvalidSubmission(Exception):
    """A submission failed verification; `reason` is the recordable cause."""

    def __init__(self, reason: Rejection, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class SubmissionMeta(BaseModel):
    """The metadata every submission carries, stored as safetensors string metadata."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["blockzero-delta"] = FORMAT
    protocol_version: int = PROTOCOL_VERSION
    base_revision: str = Field(min_length=1, max_length=128)
    cycle: int = Field(ge=0)
    group: int = Field(ge=0)
    hotkey: str = Field(min_length=1, max_length=64)
    tokens: int = Field(ge=0)
    codec: Codec = "bf16"

    def to_strings(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump().items()}


class Expectation(BaseModel):
    """What the verifier requires of one submission."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    shapes: dict[str, tuple[int, ...]]
    meta: SubmissionMeta
    max_bytes: int = Field(gt=0)
    max_norm: float = Field(gt=0)


def write_submission(path: Path, delta: GroupTensors, meta: SubmissionMeta) -> Path:
    """Encode `delta` with the meta's codec and write it atomically."""
    dtype, _ = CODEC_DTYPES[meta.codec]
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in sorted(delta.items())}
    with atomic_path(Path(path)) as tmp:
        save_file(tensors, str(tmp), metadata=meta.to_strings())
    return Path(path)


def _read_header(path: Path, size: int) -> dict:
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise InvalidSubmission(
                Rejection.MALFORMED, f"file is {size} bytes, shorter than a header"
            )
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > min(MAX_HEADER_BYTES, size - 8):
            raise InvalidSubmission(
                Rejection.MALFORMED, f"header length {header_len} is not plausible"
            )
        raw = f.read(header_len)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidSubmission(Rejection.MALFORMED, f"header is not JSON: {e}") from e
    if not isinstance(header, dict):
        raise InvalidSubmission(Rejection.MALFORMED, "header is not a JSON object")
    data_len = size - 8 - header_len
    end = max(
        (int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0
    )
    if end != data_len:
        raise InvalidSubmission(
            Rejection.MALFORMED, f"tensor data is {data_len} bytes, header says {end}"
        )
    return header


def _check_meta(raw: object, expected: SubmissionMeta) -> SubmissionMeta:
    if not isinstance(raw, dict):
        raise InvalidSubmission(Rejection.BAD_METADATA, "no metadata")
    try:
        meta = SubmissionMeta.model_validate(raw)
    except ValidationError as e:
        raise InvalidSubmission(Rejection.BAD_METADATA, str(e).replace("\n", " ")) from e
    diffs = {
        k: (getattr(meta, k), v)
        for k, v in expected.model_dump().items()
        if k != "tokens" and getattr(meta, k) != v
    }
    if diffs:
        detail = ", ".join(f"{k}={got!r} (expected {want!r})" for k, (got, want) in diffs.items())
        raise InvalidSubmission(Rejection.BAD_METADATA, detail)
    return meta


def _check_layout(header: dict, exp: Expectation) -> None:
    keys = set(header) - {"__metadata__"}
    missing, extra = sorted(exp.shapes.keys() - keys), sorted(keys - exp.shapes.keys())
    if missing:
        raise InvalidSubmission(Rejection.MISSING_KEY, f"missing {missing}")
    if extra:
        raise InvalidSubmission(Rejection.EXTRA_KEY, f"unexpected {extra}")
    _, dtype_name = CODEC_DTYPES[exp.meta.codec]
    for name, shape in exp.shapes.items():
        entry = header[name]
        if entry.get("dtype") != dtype_name:
            raise InvalidSubmission(
                Rejection.BAD_DTYPE, f"{name} is {entry.get('dtype')}, expected {dtype_name}"
            )
        if tuple(entry.get("shape", ())) != tuple(shape):
            raise InvalidSubmission(
                Rejection.BAD_SHAPE, f"{name} is {entry.get('shape')}, expected {list(shape)}"
            )


def read_submission(path: Path, exp: Expectation) -> tuple[GroupTensors, SubmissionMeta]:
    """Verify and load a submission, or raise `InvalidSubmission` with the first failed check."""
    path = Path(path)
    size = path.stat().st_size
    if size > exp.max_bytes:
        raise InvalidSubmission(Rejection.TOO_LARGE, f"{size} bytes > cap {exp.max_bytes}")
    header = _read_header(path, size)
    meta = _check_meta(header.get("__metadata__"), exp.meta)
    _check_layout(header, exp)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise InvalidSubmission(Rejection.MALFORMED, f"safetensors refused the file: {e}") from e
    for name, t in tensors.items():
        if not torch.isfinite(t).all():
            raise InvalidSubmission(Rejection.NON_FINITE, f"{name} has NaN or Inf values")
    norm = global_norm(tensors)
    if not math.isfinite(norm) or norm > exp.max_norm:
        raise InvalidSubmission(
            Rejection.OVER_NORM, f"L2 norm {norm:.4g} > bound {exp.max_norm:.4g}"
        )
    return {k: v.to(torch.float32) for k, v in tensors.items()}, meta

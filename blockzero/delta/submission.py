"""The submission file: a miner's pseudo-gradient as safetensors, and its verification.

Layout (see docs/delta.md): a safetensors file holding the group's expert rows under their
full-model names (`model.layers.{i}.mlp.experts.{gate_up_proj|down_proj}`, shape
`[group size, ...]`) as encoded by the declared codec (`blockzero.delta.codecs`: `<name>` for
dense codecs, `<name>.values|indices|scales` for top-k), plus string metadata: format, protocol
version, base model revision, cycle, group, hotkey, tokens trained, codec and, for sparse codecs,
density.

Verification treats the file as hostile: the size is capped before anything is read, the header
is parsed by hand with its own cap and checked against the accepted codecs and the keys, shapes
and dtypes that the registry and the declared codec imply, before any tensor is loaded; then the
codec's invariants (index ranges and order, scales), and only after decoding the values (finite,
norm bound). Nothing is ever unpickled.
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
from blockzero.delta.codecs import CODECS, CodecName, InvalidEncoding, TensorSpec, make_codec
from blockzero.delta.pseudo_gradient import global_norm
from blockzero.model.group_rows import GroupTensors
from blockzero.protocol.version import PROTOCOL_VERSION

FORMAT = "blockzero-delta"
MAX_HEADER_BYTES = 1 << 20


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
    BAD_CODEC = "bad_codec"
    BAD_ENCODING = "bad_encoding"


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
    codec: CodecName = "bf16"
    density: float | None = Field(default=None, gt=0, le=1)

    def to_strings(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump(exclude_none=True).items()}


class Expectation(BaseModel):
    """What the verifier requires of one submission. `shapes` are the group's decoded tensors;
    the codec is the miner's choice among `codecs`, so `meta.codec` and `meta.density` are not
    compared: a sparse codec's declared density must not exceed `max_density`."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    shapes: dict[str, tuple[int, ...]]
    meta: SubmissionMeta
    max_bytes: int = Field(gt=0)
    max_norm: float = Field(gt=0)
    codecs: frozenset[CodecName] = frozenset(CODECS)
    max_density: float = Field(default=0.1, gt=0, le=1)


def write_encoded(path: Path, encoded: dict[str, torch.Tensor], meta: SubmissionMeta) -> Path:
    """Write parts already encoded with the meta's codec, atomically."""
    with atomic_path(Path(path)) as tmp:
        save_file(dict(sorted(encoded.items())), str(tmp), metadata=meta.to_strings())
    return Path(path)


def write_submission(path: Path, delta: GroupTensors, meta: SubmissionMeta) -> Path:
    """Encode `delta` with the meta's codec and write it atomically."""
    return write_encoded(path, make_codec(meta.codec, meta.density).encode(delta), meta)


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


def _check_meta(raw: object, exp: Expectation) -> SubmissionMeta:
    if not isinstance(raw, dict):
        raise InvalidSubmission(Rejection.BAD_METADATA, "no metadata")
    codec = raw.get("codec", "bf16")
    if not isinstance(codec, str) or codec not in exp.codecs:
        raise InvalidSubmission(
            Rejection.BAD_CODEC, f"codec {codec!r} not accepted (accepted {sorted(exp.codecs)})"
        )
    try:
        meta = SubmissionMeta.model_validate(raw)
    except ValidationError as e:
        raise InvalidSubmission(Rejection.BAD_METADATA, str(e).replace("\n", " ")) from e
    diffs = {
        k: (getattr(meta, k), v)
        for k, v in exp.meta.model_dump().items()
        if k not in ("tokens", "codec", "density") and getattr(meta, k) != v
    }
    if diffs:
        detail = ", ".join(f"{k}={got!r} (expected {want!r})" for k, (got, want) in diffs.items())
        raise InvalidSubmission(Rejection.BAD_METADATA, detail)
    if CODECS[meta.codec].sparse != (meta.density is not None):
        raise InvalidSubmission(
            Rejection.BAD_CODEC, f"codec {meta.codec} with density {meta.density}"
        )
    if meta.density is not None and meta.density > exp.max_density:
        raise InvalidSubmission(
            Rejection.BAD_CODEC, f"density {meta.density} over the cap {exp.max_density}"
        )
    return meta


def _check_layout(header: dict, layout: dict[str, TensorSpec]) -> None:
    keys = set(header) - {"__metadata__"}
    missing, extra = sorted(layout.keys() - keys), sorted(keys - layout.keys())
    if missing:
        raise InvalidSubmission(Rejection.MISSING_KEY, f"missing {missing}")
    if extra:
        raise InvalidSubmission(Rejection.EXTRA_KEY, f"unexpected {extra}")
    for name, spec in layout.items():
        entry = header[name]
        if entry.get("dtype") != spec.dtype_name:
            raise InvalidSubmission(
                Rejection.BAD_DTYPE, f"{name} is {entry.get('dtype')}, expected {spec.dtype_name}"
            )
        if tuple(entry.get("shape", ())) != spec.shape:
            raise InvalidSubmission(
                Rejection.BAD_SHAPE, f"{name} is {entry.get('shape')}, expected {list(spec.shape)}"
            )


def read_submission(path: Path, exp: Expectation) -> tuple[GroupTensors, SubmissionMeta]:
    """Verify and load a submission, or raise `InvalidSubmission` with the first failed check."""
    path = Path(path)
    size = path.stat().st_size
    if size > exp.max_bytes:
        raise InvalidSubmission(Rejection.TOO_LARGE, f"{size} bytes > cap {exp.max_bytes}")
    header = _read_header(path, size)
    meta = _check_meta(header.get("__metadata__"), exp)
    codec = make_codec(meta.codec, meta.density)
    _check_layout(header, codec.layout(exp.shapes))
    try:
        encoded = load_file(str(path))
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise InvalidSubmission(Rejection.MALFORMED, f"safetensors refused the file: {e}") from e
    try:
        codec.check(encoded, exp.shapes)
    except InvalidEncoding as e:
        reason = Rejection.NON_FINITE if e.non_finite else Rejection.BAD_ENCODING
        raise InvalidSubmission(reason, str(e)) from e
    tensors = codec.decode(encoded, exp.shapes)
    for name, t in tensors.items():
        if not torch.isfinite(t).all():
            raise InvalidSubmission(Rejection.NON_FINITE, f"{name} has NaN or Inf values")
    norm = global_norm(tensors)
    if not math.isfinite(norm) or norm > exp.max_norm:
        raise InvalidSubmission(
            Rejection.OVER_NORM, f"L2 norm {norm:.4g} > bound {exp.max_norm:.4g}"
        )
    return tensors, meta

"""Communication codecs: how a group's float32 pseudo-gradient becomes a submission's tensors.

Each codec turns a tensor `<name>` of shape `[G, ..., C]` into named parts whose shapes and
dtypes follow from that shape and the codec's parameters alone (`layout`), so a verifier checks
a file's header before loading anything, then the codec's invariants on the loaded parts
(`check`), and only then decodes them to float32 (`decode`).

    fp32, bf16  `<name>`: the tensor, cast (4 or 2 bytes per parameter).
    int8        `<name>` I8, same shape; `<name>.scales` F32, shape `[G, ..., R]`: one symmetric
                scale per row of the last dim, i.e. per output unit of the expert's linear map,
                so one large output row does not flatten the others. 1 + 4/C bytes per parameter.
    topk_int8   the tensor cut into chunks of whole rows (r rows, r * C <= 4096 elements, r the
                largest divisor of the row count that fits); per chunk the k = max(1, floor(density
                * chunk)) largest magnitudes: `<name>.values` I8 [chunks, k], `<name>.indices` U16
                [chunks, k] (positions in the chunk, strictly increasing), `<name>.scales` F32
                [chunks]. About density * (3 + 4/k) bytes per parameter: 1% is ~130x below fp32.

Sparse codecs drop most of each delta; the miner keeps what was not sent and adds it to the next
cycle's delta (`blockzero.delta.feedback`), as SparseLoCo and Templar do.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

import torch

from blockzero.model.group_rows import GroupTensors

CodecName = Literal["bf16", "fp32", "int8", "topk_int8"]
CHUNK_ELEMENTS = 4096
MAX_CHUNK = 1 << 16  # uint16 positions
INT8_MAX = 127
DTYPE_NAMES = {
    torch.float32: "F32",
    torch.bfloat16: "BF16",
    torch.int8: "I8",
    torch.uint16: "U16",
}


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def dtype_name(self) -> str:
        return DTYPE_NAMES[self.dtype]


class InvalidEncoding(ValueError):
    """Encoded parts break the codec's invariants; `non_finite` when a scale is NaN or infinite."""

    def __init__(self, detail: str, *, non_finite: bool = False) -> None:
        super().__init__(detail)
        self.non_finite = non_finite


class Codec(ABC):
    """Encode/decode one group's tensors; parts are keyed `<name>` or `<name>.<part>`."""

    name: ClassVar[CodecName]
    sparse: ClassVar[bool] = False  # takes a density and needs error feedback

    @abstractmethod
    def tensor_layout(self, name: str, shape: tuple[int, ...]) -> dict[str, TensorSpec]: ...

    @classmethod
    def create(cls, density: float | None) -> "Codec":
        if density is not None:
            raise ValueError(f"codec {cls.name} takes no density (got {density})")
        return cls()

    @abstractmethod
    def encode_tensor(self, name: str, x: torch.Tensor) -> dict[str, torch.Tensor]: ...

    @abstractmethod
    def decode_tensor(
        self, name: str, parts: dict[str, torch.Tensor], shape: tuple[int, ...]
    ) -> torch.Tensor: ...

    @abstractmethod
    def check_tensor(
        self, name: str, parts: dict[str, torch.Tensor], shape: tuple[int, ...]
    ) -> None:
        """Raise `InvalidEncoding` if the parts could not have come from `encode_tensor`."""

    def layout(self, shapes: dict[str, tuple[int, ...]]) -> dict[str, TensorSpec]:
        return {k: v for name, s in shapes.items() for k, v in self.tensor_layout(name, s).items()}

    def encode(self, delta: GroupTensors) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for name, x in sorted(delta.items()):
            out |= self.encode_tensor(name, x.detach().to("cpu", torch.float32))
        return {k: v.contiguous() for k, v in out.items()}

    def check(self, parts: dict[str, torch.Tensor], shapes: dict[str, tuple[int, ...]]) -> None:
        for name, shape in shapes.items():
            self.check_tensor(name, _parts_of(name, parts), shape)

    def decode(
        self, parts: dict[str, torch.Tensor], shapes: dict[str, tuple[int, ...]]
    ) -> GroupTensors:
        return {
            name: self.decode_tensor(name, _parts_of(name, parts), s) for name, s in shapes.items()
        }


def _parts_of(name: str, parts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in parts.items() if k == name or k.startswith(f"{name}.")}


def _quantize(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 over the last dim: |x - q * scale| <= scale / 2 with scale = absmax / 127."""
    scale = x.abs().amax(dim=-1) / INT8_MAX
    q = (x / scale.clamp_min(torch.finfo(torch.float32).tiny).unsqueeze(-1)).round()
    return q.clamp(-INT8_MAX, INT8_MAX).to(torch.int8), scale


def _check_int8(name: str, values: torch.Tensor, scales: torch.Tensor) -> None:
    if not torch.isfinite(scales).all():
        raise InvalidEncoding(f"{name}.scales has NaN or Inf values", non_finite=True)
    if (scales < 0).any():
        raise InvalidEncoding(f"{name}.scales has negative values")
    if (values == -INT8_MAX - 1).any():
        raise InvalidEncoding(f"{name} uses -128, outside the symmetric int8 range")


class _Cast(Codec):
    dtype: ClassVar[torch.dtype]

    def tensor_layout(self, name: str, shape: tuple[int, ...]) -> dict[str, TensorSpec]:
        return {name: TensorSpec(tuple(shape), self.dtype)}

    def encode_tensor(self, name: str, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: x.to(self.dtype)}

    def check_tensor(
        self, name: str, parts: dict[str, torch.Tensor], shape: tuple[int, ...]
    ) -> None:
        """Every float value decodes; NaN and Inf are caught after decoding."""

    def decode_tensor(
        self, name: str, parts: dict[str, torch.Tensor], shape: tuple[int, ...]
    ) -> torch.Tensor:
        return parts[name].to(torch.float32)


class Fp32(_Cast):
    name = "fp32"
    dtype = torch.float32


class Bf16(_Cast):
    name = "bf16"
    dtype = torch.bfloat16


class Int8(Codec):
    name = "int8"

    def tensor_layout(self, name: str, shape: tuple[int, ...]) -> dict[str, TensorSpec]:
        return {
            name: TensorSpec(tuple(shape), torch.int8),
            f"{name}.scales": TensorSpec(tuple(shape[:-1]), torch.float32),
        }

    def encode_tensor(self, name: str, x: torch.Tensor) -> dict[str, torch.Tensor]:
        q, scale = _quantize(x)
        return {name: q, f"{name}.scales": scale}

    def check_tensor(
        self, name: str, parts: dict[str, torch.Tensor], shape: tuple[int, ...]
    ) -> None:
        _check_int8(name, parts[name], parts[f"{name}.scales"])

    def decode_tensor(
        self, name: str, parts: dict[str, torch.Tensor], shape: tuple[int, ...]
    ) -> torch.Tensor:
        return parts[name].to(torch.float32) * parts[f"{name}.scales"].unsqueeze(-1)


@dataclass(frozen=True)
class TopKInt8(Codec):
    name: ClassVar[CodecName] = "topk_int8"
    sparse: ClassVar[bool] = True
    density: float

    def __post_init__(self) -> None:
        if not 0 < self.density <= 1:
            raise ValueError(f"density must be in (0, 1], got {self.density}")

    @classmethod
    def create(cls, density: float | None) -> "Codec":
        if density is None:
            raise ValueError(f"codec {cls.name} needs a density")
        return cls(density)

    def chunking(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        """(chunks, chunk size, k) for a tensor: chunks of whole rows so every chunk is full."""
        cols = shape[-1]
        if cols > MAX_CHUNK:
            raise ValueError(f"rows of {cols} elements do not fit uint16 positions")
        rows = 1
        for n in shape[:-1]:
            rows *= n
        fit = max(1, CHUNK_ELEMENTS // cols)
        per_chunk = max(r for r in range(1, min(fit, rows) + 1) if rows % r == 0)
        chunk = per_chunk * cols
        return rows // per_chunk, chunk, max(1, int(self.density * chunk))

    def tensor_layout(self, name: str, shape: tuple[int, ...]) -> dict[str, TensorSpec]:
        chunks, _, k = self.chunking(shape)
        return {
            f"{name}.values": TensorSpec((chunks, k), torch.int8),
            f"{name}.indices": TensorSpec((chunks, k), torch.uint16),
            f"{name}.scales": TensorSpec((chunks,), torch.float32),
        }

    def encode_tensor(self, name: str, x: torch.Tensor) -> dict[str, torch.Tensor]:
        chunks, chunk, k = self.chunking(tuple(x.shape))
        flat = x.reshape(chunks, chunk)
        idx = flat.abs().topk(k, dim=1, sorted=False).indices.sort(dim=1).values
        q, scale = _quantize(flat.gather(1, idx))
        return {
            f"{name}.values": q,
            f"{name}.indices": idx.to(torch.int32).to(torch.uint16),
            f"{name}.scales": scale,
        }

    def check_tensor(
        self, name: str, parts: dict[str, torch.Tensor], shape: tuple[int, ...]
    ) -> None:
        _check_int8(f"{name}.values", parts[f"{name}.values"], parts[f"{name}.scales"])
        _, chunk, _ = self.chunking(shape)
        idx = parts[f"{name}.indices"].to(torch.int32)
        if (idx >= chunk).any():
            raise InvalidEncoding(f"{name}.indices has positions >= the chunk size {chunk}")
        steps = idx[:, 1:] - idx[:, :-1]
        if (steps == 0).any():
            raise InvalidEncoding(f"{name}.indices repeats a position within a chunk")
        if (steps < 0).any():
            raise InvalidEncoding(f"{name}.indices are not increasing within a chunk")

    def decode_tensor(
        self, name: str, parts: dict[str, torch.Tensor], shape: tuple[int, ...]
    ) -> torch.Tensor:
        chunks, chunk, _ = self.chunking(shape)
        values = parts[f"{name}.values"].to(torch.float32) * parts[f"{name}.scales"].unsqueeze(-1)
        out = torch.zeros(chunks, chunk, dtype=torch.float32)
        out.scatter_(1, parts[f"{name}.indices"].to(torch.int64), values)
        return out.reshape(shape)


CODECS: dict[CodecName, type[Codec]] = {c.name: c for c in (Bf16, Fp32, Int8, TopKInt8)}
assert set(CODECS) == set(get_args(CodecName))


def make_codec(name: CodecName, density: float | None = None) -> Codec:
    """The codec `name`; sparse codecs need a density, dense ones refuse one (ValueError)."""
    return CODECS[name].create(density)

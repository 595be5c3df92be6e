"""The submission file: round trip, and one test per way a hostile file is refused."""

import json
import pickle
import struct

import pytest
import torch
from safetensors.torch import save_file

from blockzero.delta.hashing import sha256_file
from blockzero.delta.submission import (
    Expectation,
    InvalidSubmission,
    Rejection,
    SubmissionMeta,
    read_submission,
    write_submission,
)

SHAPES = {
    "model.layers.0.mlp.experts.down_proj": (4, 8, 6),
    "model.layers.0.mlp.experts.gate_up_proj": (4, 12, 8),
}
META = SubmissionMeta(base_revision="a" * 40, cycle=7, group=1, hotkey="5Fhot", tokens=1024)


def delta(scale: float = 1e-3) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {k: torch.randn(s, generator=gen) * scale for k, s in SHAPES.items()}


def expect(**overrides) -> Expectation:
    fields = dict(shapes=SHAPES, meta=META, max_bytes=1 << 20, max_norm=1.0)
    fields.update(overrides)
    return Expectation(**fields)


def rejected(path, exp=None) -> Rejection:
    with pytest.raises(InvalidSubmission) as info:
        read_submission(path, exp or expect())
    return info.value.reason


def test_round_trip_is_bf16_and_keeps_metadata(tmp_path):
    d = delta()
    path = write_submission(tmp_path / "d.safetensors", d, META)
    tensors, meta = read_submission(path, expect())
    assert meta == META
    for name, value in d.items():
        torch.testing.assert_close(tensors[name], value.to(torch.bfloat16).float(), rtol=0, atol=0)
    assert not list(tmp_path.glob("*.tmp"))


def test_fp32_codec_is_lossless(tmp_path):
    meta = META.model_copy(update={"codec": "fp32"})
    d = delta()
    tensors, _ = read_submission(
        write_submission(tmp_path / "d.safetensors", d, meta), expect(meta=meta)
    )
    assert all(tensors[k].equal(v) for k, v in d.items())


def test_tokens_may_differ_but_every_binding_field_must_match(tmp_path):
    path = write_submission(
        tmp_path / "d.safetensors", delta(), META.model_copy(update={"tokens": 9})
    )
    read_submission(path, expect())
    for field, value in [
        ("cycle", 8),
        ("group", 2),
        ("hotkey", "5Fother"),
        ("base_revision", "b" * 40),
    ]:
        wrong = write_submission(
            tmp_path / f"{field}.safetensors", delta(), META.model_copy(update={field: value})
        )
        assert rejected(wrong) is Rejection.BAD_METADATA


def test_content_hash_streams_and_changes_with_content(tmp_path):
    a = write_submission(tmp_path / "a.safetensors", delta(), META)
    b = write_submission(tmp_path / "b.safetensors", delta(2e-3), META)
    assert sha256_file(a) == sha256_file(a)
    assert len(sha256_file(a)) == 64
    assert sha256_file(a) != sha256_file(b)


def test_truncated_file(tmp_path):
    path = write_submission(tmp_path / "d.safetensors", delta(), META)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 10])
    assert rejected(path) is Rejection.MALFORMED


def test_pickle_renamed_safetensors(tmp_path):
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"model.layers.0.mlp.experts.down_proj": [1.0, 2.0]}))
    assert rejected(path) is Rejection.MALFORMED


def test_torch_save_renamed_safetensors(tmp_path):
    path = tmp_path / "evil.safetensors"
    torch.save(delta(), path)
    assert rejected(path) is Rejection.MALFORMED


def test_header_that_is_not_json(tmp_path):
    path = tmp_path / "d.safetensors"
    path.write_bytes(struct.pack("<Q", 5) + b"{nope" + b"\0" * 16)
    assert rejected(path) is Rejection.MALFORMED


def test_oversize_is_refused_before_parsing(tmp_path):
    path = write_submission(tmp_path / "d.safetensors", delta(), META)
    assert rejected(path, expect(max_bytes=path.stat().st_size - 1)) is Rejection.TOO_LARGE


def test_extra_key(tmp_path):
    d = delta() | {"model.embed_tokens.weight": torch.zeros(2, 2)}
    path = write_submission(tmp_path / "d.safetensors", d, META)
    assert rejected(path) is Rejection.EXTRA_KEY


def test_missing_key(tmp_path):
    d = delta()
    d.pop("model.layers.0.mlp.experts.down_proj")
    assert rejected(write_submission(tmp_path / "d.safetensors", d, META)) is Rejection.MISSING_KEY


def test_wrong_shape(tmp_path):
    d = delta()
    d["model.layers.0.mlp.experts.down_proj"] = torch.zeros(5, 8, 6)
    assert rejected(write_submission(tmp_path / "d.safetensors", d, META)) is Rejection.BAD_SHAPE


def test_wrong_dtype(tmp_path):
    path = tmp_path / "d.safetensors"
    save_file({k: v.half() for k, v in delta().items()}, str(path), metadata=META.to_strings())
    assert rejected(path) is Rejection.BAD_DTYPE


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_values(tmp_path, bad):
    d = delta()
    d["model.layers.0.mlp.experts.gate_up_proj"][1, 2, 3] = bad
    assert rejected(write_submission(tmp_path / "d.safetensors", d, META)) is Rejection.NON_FINITE


def test_norm_over_bound(tmp_path):
    path = write_submission(tmp_path / "d.safetensors", delta(scale=1.0), META)
    assert rejected(path, expect(max_norm=1.0)) is Rejection.OVER_NORM


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        {"format": "something-else"},
        META.to_strings() | {"protocol_version": "2"},
        META.to_strings() | {"cycle": "seven"},
        META.to_strings() | {"extra": "field"},
    ],
)
def test_wrong_metadata(tmp_path, metadata):
    path = tmp_path / "d.safetensors"
    tensors = {k: v.to(torch.bfloat16) for k, v in delta().items()}
    save_file(tensors, str(path), metadata=metadata)
    assert rejected(path) is Rejection.BAD_METADATA


def test_lying_header_offsets(tmp_path):
    path = write_submission(tmp_path / "d.safetensors", delta(), META)
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    name = "model.layers.0.mlp.experts.down_proj"
    header[name]["data_offsets"][1] += 4
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])
    assert rejected(path) is Rejection.MALFORMED

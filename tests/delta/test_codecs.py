"""Codecs: round trips and their error bounds, error feedback, and one test per way an encoded
submission is refused."""

from collections.abc import Callable
from typing import get_args

import pytest
import torch
from safetensors.torch import save_file

from blockzero.delta.codecs import CODECS, TopKInt8, make_codec
from blockzero.delta.feedback import ErrorFeedback, encode_with_feedback
from blockzero.delta.submission import (
    Expectation,
    InvalidSubmission,
    Rejection,
    SubmissionMeta,
    read_submission,
    write_encoded,
    write_submission,
)
from blockzero.settings import Codec, MinerSettings, ValidatorSettings

DOWN = "model.layers.0.mlp.experts.down_proj"
GATE_UP = "model.layers.0.mlp.experts.gate_up_proj"
SHAPES = {DOWN: (4, 32, 32), GATE_UP: (4, 64, 32)}
META = SubmissionMeta(base_revision="a" * 40, cycle=7, group=1, hotkey="5Fhot", tokens=1024)
TOPK = META.model_copy(update={"codec": "topk_int8", "density": 0.01})


def delta(seed: int = 0, scale: float = 1e-3) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=gen) * scale for k, s in SHAPES.items()}


def expect(**overrides) -> Expectation:
    fields = dict(shapes=SHAPES, meta=META, max_bytes=1 << 20, max_norm=1.0)
    fields.update(overrides)
    return Expectation(**fields)


def rejected(path, exp=None) -> Rejection:
    with pytest.raises(InvalidSubmission) as info:
        read_submission(path, exp or expect())
    return info.value.reason


@pytest.mark.parametrize(
    "meta",
    [
        META.model_copy(update={"codec": "int8"}),
        TOPK,
        TOPK.model_copy(update={"density": 0.1}),
    ],
)
def test_encoded_parts_match_the_layout_and_verify(tmp_path, meta):
    codec = make_codec(meta.codec, meta.density)
    parts = codec.encode(delta())
    layout = codec.layout(SHAPES)
    assert {k: (tuple(v.shape), v.dtype) for k, v in parts.items()} == {
        k: (s.shape, s.dtype) for k, s in layout.items()
    }
    path = write_submission(tmp_path / "d.safetensors", delta(), meta)
    tensors, got = read_submission(path, expect())
    assert got == meta
    assert {k: tuple(v.shape) for k, v in tensors.items()} == SHAPES


def test_int8_error_is_within_half_a_step_per_row():
    d = delta()
    codec = make_codec("int8")
    decoded = codec.decode(codec.encode(d), SHAPES)
    for name, x in d.items():
        step = x.abs().amax(dim=-1, keepdim=True) / 127
        assert ((decoded[name] - x).abs() <= step / 2 + 1e-12).all()


def test_int8_keeps_zero_rows_zero():
    d = {k: torch.zeros(s) for k, s in SHAPES.items()}
    codec = make_codec("int8")
    assert all(v.eq(0).all() for v in codec.decode(codec.encode(d), SHAPES).values())


@pytest.mark.parametrize("density", [0.01, 0.03, 0.1])
def test_topk_keeps_exactly_the_largest_magnitudes_at_the_declared_density(density):
    codec = TopKInt8(density)
    d = delta()
    decoded = codec.decode(codec.encode(d), SHAPES)
    for name, x in d.items():
        chunks, chunk, k = codec.chunking(SHAPES[name])
        assert k == int(density * chunk) and k / chunk <= density
        flat, got = x.reshape(chunks, chunk), decoded[name].reshape(chunks, chunk)
        want = flat.abs().topk(k, dim=1).indices.sort(dim=1).values
        assert got.ne(0).sum(dim=1).eq(k).all()
        assert got.ne(0).nonzero()[:, 1].reshape(chunks, k).equal(want)
        kept = flat.gather(1, want)
        step = kept.abs().amax(dim=1, keepdim=True) / 127
        assert ((got.gather(1, want) - kept).abs() <= step / 2 + 1e-12).all()


def test_chunks_are_whole_rows_within_4096_elements():
    codec = TopKInt8(0.01)
    assert codec.chunking((4, 64, 32)) == (2, 4096, 40)
    assert codec.chunking((3, 5, 7)) == (1, 105, 1)
    assert codec.chunking((2, 3, 2048)) == (3, 4096, 40)


def test_sparse_codecs_need_a_density_and_dense_ones_refuse_one():
    with pytest.raises(ValueError):
        make_codec("topk_int8")
    with pytest.raises(ValueError):
        make_codec("int8", 0.1)


def test_bytes_per_parameter(tmp_path):
    params = sum(torch.Size(s).numel() for s in SHAPES.values())
    sizes = {}
    for meta in (META, META.model_copy(update={"codec": "int8"}), TOPK):
        path = write_submission(tmp_path / f"{meta.codec}.safetensors", delta(), meta)
        sizes[meta.codec] = path.stat().st_size / params
    assert sizes["topk_int8"] < 4 / 16 < sizes["int8"] < sizes["bf16"]


def test_error_feedback_sends_the_cumulative_delta_over_cycles():
    """The same delta every cycle: after N cycles what was sent is N x delta minus the residual.
    The residual levels off (about 1/density times the delta's norm) instead of growing, so the
    relative error of the sum falls like 1/N."""
    codec, d = TopKInt8(0.1), delta()
    scale = torch.cat([v.reshape(-1) for v in d.values()]).norm().item()
    residual: dict[str, torch.Tensor] = {}
    sent = {k: torch.zeros_like(v) for k, v in d.items()}
    norms = []
    for _ in range(100):
        _, decoded, residual = encode_with_feedback(codec, d, residual)
        sent = {k: sent[k] + decoded[k] for k in d}
        norms.append(torch.cat([r.reshape(-1) for r in residual.values()]).norm().item() / scale)
    assert max(norms) < 1 / codec.density
    assert max(norms[50:]) < 1.05 * norms[49]
    missing = torch.cat([(100 * d[k] - sent[k]).reshape(-1) for k in d]).norm().item()
    assert missing / (100 * scale) < 0.05


def test_residual_persists_and_resets_with_group_or_lineage(tmp_path):
    fb = ErrorFeedback(tmp_path / "residual.safetensors")
    submitted = fb.add(delta(), TOPK, parent_revision=None)
    assert all(submitted[k].equal(v) for k, v in delta().items())
    path = write_submission(tmp_path / "d.safetensors", submitted, TOPK)
    decoded, _ = read_submission(path, expect())
    fb.keep(submitted, TOPK)
    kept = fb.load(group=1, base_revision="b" * 40, parent_revision="a" * 40, like=delta())
    assert all(kept[k].equal(v - decoded[k]) for k, v in submitted.items())
    child = TOPK.model_copy(update={"base_revision": "b" * 40})
    again = fb.add(delta(), child, parent_revision="a" * 40)
    assert all(again[k].equal(v + kept[k]) for k, v in delta().items())
    same_base = fb.load(group=1, base_revision="a" * 40, parent_revision=None, like=delta())
    assert all(same_base[k].equal(v) for k, v in kept.items())
    assert fb.load(group=2, base_revision="a" * 40, parent_revision=None, like=delta()) == {}
    assert fb.load(group=1, base_revision="c" * 40, parent_revision="b" * 40, like=delta()) == {}


def test_dense_codecs_add_and_keep_no_residual(tmp_path):
    fb = ErrorFeedback(tmp_path / "residual.safetensors")
    fb.keep(fb.add(delta(), TOPK, parent_revision=None), TOPK)
    assert fb.path.exists()
    assert all(v.equal(delta()[k]) for k, v in fb.add(delta(), META, parent_revision=None).items())
    fb.keep(delta(), META)
    assert not fb.path.exists()


def tampered(tmp_path, part: str, change: Callable[[torch.Tensor], torch.Tensor], meta=TOPK):
    """A file encoded honestly, then `DOWN + part` replaced by `change` of itself."""
    parts = make_codec(meta.codec, meta.density).encode(delta())
    parts[DOWN + part] = change(parts[DOWN + part])
    return write_encoded(tmp_path / "d.safetensors", parts, meta)


def with_index(pos: int, value: int):
    def change(idx: torch.Tensor) -> torch.Tensor:
        out = idx.to(torch.int32)
        out[0, pos] = value
        return out.to(torch.uint16)

    return change


def test_index_out_of_range(tmp_path):
    path = tampered(tmp_path, ".indices", with_index(-1, 4096))
    assert rejected(path) is Rejection.BAD_ENCODING


def test_duplicate_indices(tmp_path):
    def dup(idx: torch.Tensor) -> torch.Tensor:
        out = idx.to(torch.int32)
        out[0, 1] = out[0, 0]
        return out.to(torch.uint16)

    assert rejected(tampered(tmp_path, ".indices", dup)) is Rejection.BAD_ENCODING


def test_unsorted_indices(tmp_path):
    path = tampered(tmp_path, ".indices", lambda idx: idx.to(torch.int32).flip(-1).to(torch.uint16))
    assert rejected(path) is Rejection.BAD_ENCODING


def test_density_over_declared(tmp_path):
    denser = make_codec("topk_int8", 0.05).encode(delta())
    path = write_encoded(tmp_path / "d.safetensors", denser, TOPK)
    assert rejected(path) is Rejection.BAD_SHAPE


def test_declared_density_over_the_cap(tmp_path):
    meta = TOPK.model_copy(update={"density": 0.2})
    path = write_submission(tmp_path / "d.safetensors", delta(), meta)
    assert rejected(path, expect(max_density=0.1)) is Rejection.BAD_CODEC


@pytest.mark.parametrize("meta", [TOPK, META.model_copy(update={"codec": "int8"})])
def test_negative_scales(tmp_path, meta):
    path = tampered(tmp_path, ".scales", lambda s: -s, meta)
    assert rejected(path) is Rejection.BAD_ENCODING


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_scales(tmp_path, bad):
    path = tampered(tmp_path, ".scales", lambda s: torch.full_like(s, bad))
    assert rejected(path) is Rejection.NON_FINITE


def test_int8_minus_128(tmp_path):
    path = tampered(tmp_path, ".values", lambda v: torch.full_like(v, -128))
    assert rejected(path) is Rejection.BAD_ENCODING


def test_scales_that_decode_to_infinity(tmp_path):
    path = tampered(tmp_path, ".scales", lambda s: torch.full_like(s, 3e38))
    assert rejected(path) is Rejection.NON_FINITE


@pytest.mark.parametrize("codec", ["topk_int8", "int8", "fp32"])
def test_codec_not_accepted(tmp_path, codec):
    meta = META.model_copy(
        update={"codec": codec, "density": 0.01 if codec == "topk_int8" else None}
    )
    path = write_submission(tmp_path / "d.safetensors", delta(), meta)
    assert rejected(path, expect(codecs=frozenset({"bf16"}))) is Rejection.BAD_CODEC


@pytest.mark.parametrize(
    "strings", [{"codec": "zstd"}, {"codec": "topk_int8"}, {"density": "0.01"}]
)
def test_undeclared_codec_or_parameters(tmp_path, strings):
    parts = make_codec("bf16").encode(delta())
    path = tmp_path / "d.safetensors"
    save_file(parts, str(path), metadata=META.to_strings() | strings)
    assert rejected(path) is Rejection.BAD_CODEC


def test_wrong_shapes_for_the_declared_codec(tmp_path):
    int8 = make_codec("int8").encode(delta())
    path = write_encoded(tmp_path / "d.safetensors", int8, TOPK)
    assert rejected(path) is Rejection.MISSING_KEY
    path = tampered(tmp_path, ".scales", lambda s: torch.cat([s, s]))
    assert rejected(path) is Rejection.BAD_SHAPE
    path = tampered(tmp_path, ".indices", lambda idx: idx.to(torch.int32))
    assert rejected(path) is Rejection.BAD_DTYPE


def test_settings_offer_exactly_the_registered_codecs():
    assert set(get_args(Codec)) == set(CODECS) == set(ValidatorSettings().codecs)
    assert MinerSettings().density <= ValidatorSettings().max_density

import contextlib
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blockzero.protocol.commitments import (
    MAX_COMMITMENT_BYTES,
    MAX_CYCLE,
    HashCommitment,
    ManifestCommitment,
    RevealCommitment,
    decode,
    encode,
    max_repo_id_length,
    submission_digest,
)
from blockzero.protocol.errors import CommitmentRejected

REV = "0123456789abcdef0123456789abcdef01234567"
REV_B64 = "ASNFZ4mrze8BI0VniavN7wEjRWc"
SHA = bytes(range(32))
SHA_B64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"

cycles = st.integers(0, MAX_CYCLE - 1)
sha256s = st.binary(min_size=32, max_size=32)
revisions = st.binary(min_size=20, max_size=20).map(bytes.hex)
_part = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9_]{0,30}[A-Za-z0-9])?", fullmatch=True)
repo_ids = st.tuples(_part, _part).map("/".join)


def _commitments() -> st.SearchStrategy:
    return st.one_of(
        st.builds(HashCommitment, cycle=cycles, digest=sha256s),
        st.builds(RevealCommitment, cycle=cycles, revision=revisions, repo_id=repo_ids),
        st.builds(
            ManifestCommitment,
            cycle=cycles,
            revision=revisions,
            manifest_sha256=sha256s,
            repo_id=repo_ids.filter(lambda r: len(r) <= 40),
        ),
    )


@given(_commitments())
def test_round_trip_within_chain_limit(commitment) -> None:
    text = encode(commitment)
    assert len(text.encode("ascii")) <= MAX_COMMITMENT_BYTES
    assert decode(text) == commitment
    assert decode(text.encode()) == commitment


def test_exact_layouts() -> None:
    h = HashCommitment(cycle=123, digest=SHA)
    r = RevealCommitment(cycle=123, revision=REV, repo_id="acme/moe-g3")
    m = ManifestCommitment(cycle=7, revision=REV, manifest_sha256=SHA, repo_id="bz/global")
    assert encode(h) == f"bz1h:123:{SHA_B64}"
    assert encode(r) == f"bz1r:123:{REV_B64}:acme/moe-g3"
    assert encode(m) == f"bz1m:7:{REV_B64}:{SHA_B64}:bz/global"


def test_worst_case_repo_ids_fill_the_field_exactly() -> None:
    assert (max_repo_id_length(RevealCommitment), max_repo_id_length(ManifestCommitment)) == (
        84,
        40,
    )
    for cls, extra in [(RevealCommitment, {}), (ManifestCommitment, {"manifest_sha256": SHA})]:
        limit = max_repo_id_length(cls)
        repo_id = "a/" + "b" * (limit - 2)
        longest = cls(cycle=MAX_CYCLE - 1, revision=REV, repo_id=repo_id, **extra)
        assert len(encode(longest)) == MAX_COMMITMENT_BYTES
        with pytest.raises(ValueError, match=f"at most {limit}"):
            cls(cycle=0, revision=REV, repo_id=repo_id + "b", **extra)


def test_digest_binds_file_hotkey_and_cycle() -> None:
    file_sha = hashlib.sha256(b"delta").digest()
    by_hand = hashlib.sha256(
        b"blockzero/submission/v1\x00" + file_sha + b"5Hot" + (9).to_bytes(8, "big")
    ).digest()
    assert submission_digest(file_sha, "5Hot", 9) == by_hand
    assert submission_digest(file_sha, "5Hou", 9) != by_hand
    assert submission_digest(file_sha, "5Hot", 10) != by_hand
    bound = HashCommitment.bind(file_sha256=file_sha, hotkey="5Hot", cycle=9)
    assert bound == HashCommitment(cycle=9, digest=by_hand)


BAD = [
    ("", "empty"),
    (123, "not text but int"),
    ("bz1h:1:" + "A" * 200, "oversize"),
    (b"bz1h:1:\xff", "not printable ASCII"),
    (f"bz1h:1:{SHA_B64}\n", "not printable ASCII"),
    (f"bz1h: 1:{SHA_B64}", "not printable ASCII"),
    (f"xx1h:1:{SHA_B64}", "unknown prefix"),
    (f"BZ1h:1:{SHA_B64}", "unknown prefix"),
    (f"bz01h:1:{SHA_B64}", "unknown prefix"),
    (f"bz2h:1:{SHA_B64}", "protocol version 2"),
    (f"bz0h:1:{SHA_B64}", "protocol version 0"),
    (f"bz1x:1:{SHA_B64}", "unknown kind 'x'"),
    ("bz1h:1", "takes 2 fields, got 1"),
    (f"bz1h:1:{SHA_B64}:extra", "takes 2 fields, got 3"),
    (f"bz1h:01:{SHA_B64}", "not a canonical decimal"),
    (f"bz1h:-1:{SHA_B64}", "not a canonical decimal"),
    (f"bz1h:+1:{SHA_B64}", "not a canonical decimal"),
    (f"bz1h:4294967296:{SHA_B64}", "cycle: Input should be less than"),
    ("bz1h:1:" + SHA_B64[:-1], "43 base64url characters"),
    (f"bz1h:1:{SHA_B64}=", "43 base64url characters"),
    ("bz1h:1:" + SHA_B64[:-1] + "/", "43 base64url characters"),
    ("bz1h:1:" + SHA_B64[:-1] + "9", "not canonical base64url"),
    ("bz1h:1:" + "0" * 64, "43 base64url characters"),
    (f"bz1r:1:{REV}:acme/m", "27 base64url characters"),
    (f"bz1r:1:{REV_B64}:../etc", "repo id"),
    (f"bz1r:1:{REV_B64}:acme/..", "repo id"),
    (f"bz1r:1:{REV_B64}:acme/a..b", "repo id"),
    (f"bz1r:1:{REV_B64}:acme/m/x", "repo id"),
    (f"bz1r:1:{REV_B64}:acme\\m", "repo id"),
    (f"bz1r:1:{REV_B64}:model", "repo id"),
    (f"bz1r:1:{REV_B64}:-acme/m", "repo id"),
    (f"bz1r:1:{REV_B64}:", "repo id"),
    (f"bz1m:1:{REV_B64}:{SHA_B64}:acme/" + "m" * 40, "at most 40"),
    (f"bz1m:1:{REV_B64}:acme/m", "takes 4 fields, got 3"),
]


@pytest.mark.parametrize(("text", "reason"), BAD)
def test_malformed_is_rejected_with_reason(text: str | bytes, reason: str) -> None:
    with pytest.raises(CommitmentRejected) as info:
        decode(text)
    assert reason in info.value.reason


@given(st.text(max_size=140) | st.binary(max_size=140))
def test_decode_never_raises_anything_else(text: str | bytes) -> None:
    with contextlib.suppress(CommitmentRejected):
        decode(text)


def test_models_are_strict() -> None:
    with pytest.raises(ValueError):
        HashCommitment(cycle="1", digest=SHA)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        RevealCommitment(cycle=1, revision=REV.upper(), repo_id="acme/m")

"""Tokenizer, corpora, split and batches: deterministic, disjoint, offline."""

import json

import pytest
import torch

from blockzero.data.batches import pack_documents, sample_indices, train_batches
from blockzero.data.domains import DataConfig, load_domain
from blockzero.data.sources import Arithmetic, HFDataset, PydocProse, StdlibCode, load_documents
from blockzero.data.split import split_documents
from blockzero.data.tokenizer import BYTE_VOCAB_SIZE, byte_tokenizer


def test_byte_tokenizer_is_lossless_and_small():
    tok = byte_tokenizer()
    text = "def f(x):\n    return x ** 2  # héllo ü 😀"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text.encode())
    assert tok.decode(ids) == text
    assert len(tok) == BYTE_VOCAB_SIZE
    assert max(ids) < BYTE_VOCAB_SIZE
    assert tok.eos_token_id == 2 and tok.pad_token_id == 0


@pytest.mark.parametrize(
    "source", [StdlibCode(max_files=5), PydocProse(), Arithmetic(num_documents=50)]
)
def test_local_sources_are_deterministic(source):
    docs = load_documents(source)
    assert len(docs) > 10
    assert docs == load_documents(source)


def test_arithmetic_is_correct():
    for line in load_documents(Arithmetic(num_documents=3))[0].splitlines():
        expr, result = line.split(" = ")
        assert eval(expr) == int(result)


def test_split_by_content_hash_is_stable_disjoint_and_order_free():
    docs = [f"document {i}" for i in range(2000)]
    train, held = split_documents(docs, held_out_fraction=0.1)
    assert not set(train) & set(held)
    assert len(train) + len(held) == len(docs)
    assert 150 < len(held) < 250
    train_r, held_r = split_documents([*reversed(docs), "new one"], held_out_fraction=0.1)
    assert set(held) <= set(held_r) and set(train) <= set(train_r)
    _, other_salt = split_documents(docs, held_out_fraction=0.1, salt="other")
    assert set(other_salt) != set(held)
    with pytest.raises(ValueError):
        split_documents(docs, held_out_fraction=1.0)


def test_pack_and_batches_are_seeded():
    tok = byte_tokenizer()
    seqs = pack_documents(["abc"] * 100, tok, seq_len=8)
    assert seqs.shape == (50, 8)
    assert (seqs[0, 3] == tok.eos_token_id).item()
    a = train_batches(seqs, batch_size=4, seed=1)
    b = train_batches(seqs, batch_size=4, seed=1)
    c = train_batches(torch.arange(50).view(50, 1), batch_size=4, seed=2)
    assert all(next(a).equal(next(b)) for _ in range(30))
    seen = torch.cat([next(c) for _ in range(12)]).flatten().tolist()
    assert len(set(seen)) == 48
    idx = sample_indices(100, 10, seed=3)
    assert idx.equal(sample_indices(100, 10, seed=3)) and len(set(idx.tolist())) == 10
    with pytest.raises(ValueError):
        pack_documents(["a"], tok, seq_len=64)


def test_held_out_sequences_never_contain_training_documents():
    cfg = DataConfig(domains={"math": Arithmetic(num_documents=400)}, seq_len=64)
    corpus = load_domain("math", cfg, byte_tokenizer())
    train_docs, held_docs = split_documents(
        load_documents(cfg.domains["math"]), held_out_fraction=0.1
    )
    tok = byte_tokenizer()
    held_text = tok.decode(corpus.held_out.flatten().tolist())
    assert all(d not in held_text for d in train_docs[:100])
    assert any(d in held_text for d in held_docs)


def test_hf_dataset_from_local_files(tmp_path):
    rows = [{"text": f"row {i}", "other": i} for i in range(30)]
    for part in range(2):
        with open(tmp_path / f"part-{part}.jsonl", "w") as f:
            for r in rows[part * 15 : (part + 1) * 15]:
                f.write(json.dumps(r) + "\n")
    src = HFDataset(
        path="json", data_files=str(tmp_path / "part-*.jsonl"), cache_dir=tmp_path / "cache"
    )
    assert sorted(load_documents(src)) == sorted(r["text"] for r in rows)
    limited = src.model_copy(update={"max_documents": 5})
    assert len(load_documents(limited)) == 5
    with pytest.raises(ValueError, match="no column"):
        load_documents(src.model_copy(update={"text_field": "body"}))

"""Packing into seq_len rows and the token shard format (writer, memmap reader, validation)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus import shards
from corpus.tokenize.format import PAD_SOURCE, TokenShards, TokenShardWriter, array_name, validate
from corpus.tokenize.pack import Packer

EXTRA = {"vocab_size": 1000, "eos_id": 0, "pad_id": 0, "tokenizer_sha256": "x" * 64,
         "special_tokens": {"<|endoftext|>": 0}}


def _docs(seed: int = 0, n: int = 40) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(10, 1000, size=int(rng.integers(0, 50))) for _ in range(n)]


def _pack(docs, seq_len=16, flush_rows=2):
    p = Packer(seq_len, eos_id=0, pad_id=0, flush_rows=flush_rows)
    rows = []
    for i, d in enumerate(docs):
        p.add(d, source=i % 3)
        if p.ready():
            rows += p.drain()
    rows += p.drain(final=True)
    return [np.concatenate(a) for a in zip(*rows)]


def test_packing_keeps_every_token_and_boundaries():
    docs = _docs()
    tok, mask, doc, src = _pack(docs)
    assert tok.shape[1] == 16 and tok.shape == mask.shape == doc.shape == src.shape
    real = src != PAD_SOURCE
    expected = np.concatenate([np.append(d, 0) for d in docs])
    assert np.array_equal(tok[real], expected)  # documents + EOS, in order, nothing lost
    assert mask[real].all() and not mask[~real].any()
    assert (doc[:, 0] == 0).all()  # restart per row
    step = np.diff(doc.astype(int), axis=1)
    assert set(np.unique(step)) <= {0, 1}
    # a new document starts right after each EOS inside a row
    for r in range(tok.shape[0]):
        for j in range(15):
            if tok[r, j] == 0 and real[r, j] and real[r, j + 1]:
                assert doc[r, j + 1] == doc[r, j] + 1
    # source index of each real token
    expected_src = np.concatenate([np.full(len(d) + 1, i % 3) for i, d in enumerate(docs)])
    assert np.array_equal(src[real], expected_src)


def test_drop_last_and_empty_documents():
    p = Packer(8, eos_id=0, pad_id=0)
    p.add([], source=0)  # an empty document still yields its EOS
    p.add([5, 6, 7], source=1)
    (tok, mask, doc, src), = p.drain(final=True)
    assert tok.tolist() == [[0, 5, 6, 7, 0, 0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 1, 1, 0, 0, 0]]
    assert doc.tolist() == [[0, 1, 1, 1, 1, 2, 2, 2]]
    p.add([1, 2], source=0)
    assert p.drain(final=True, drop_last=True) == []


def test_writer_reader_round_trip_multi_shard(tmp_path):
    tok, mask, doc, src = _pack(_docs(1, 200), seq_len=32)
    path = str(tmp_path / "tokens" / "_all")
    with TokenShardWriter(path, 32, ["code", "text", "math"], extra=EXTRA, shard_seqs=7) as w:
        for i in range(0, len(tok), 5):
            w.add(tok[i : i + 5], mask[i : i + 5], doc[i : i + 5], src[i : i + 5])
            w.count_document(0)
    ts = TokenShards(path)
    assert len(ts) == len(tok) and len(ts.shards) == -(-len(tok) // 7)
    got = np.stack([ts[i].tokens for i in range(len(ts))])
    assert np.array_equal(got, tok)
    assert ts.shards[0].tokens.dtype == np.dtype("<u4") and ts.shards[0].docs.dtype == np.dtype("<u2")
    m = shards.read_manifest(path)
    assert m.files == [] and m.extra["format"] == "codecorpus-tokens-v1" and m.extra["n_seq"] == len(tok)
    assert {f["name"] for f in m.side_files} >= {array_name(0, k) for k in ("tokens", "mask", "docs", "src")}
    assert sum(f["rows"] for f in m.side_files if f["name"].endswith(".tokens.u32")) == len(tok)
    real = src != PAD_SOURCE
    assert m.extra["tokens_per_source"] == {n: int((src[real] == i).sum()) for i, n in enumerate(["code", "text", "math"])}
    # raw little-endian layout, readable without this library
    raw = np.fromfile(os.path.join(path, array_name(0, "tokens")), dtype="<u4").reshape(-1, 32)
    assert np.array_equal(raw, tok[:7])
    assert validate(path) == []


def test_truncated_array_file_is_reported(tmp_path):
    tok, mask, doc, src = _pack(_docs(2, 50), seq_len=16)
    path = str(tmp_path / "t" / "_all")
    with TokenShardWriter(path, 16, ["code"], extra=EXTRA) as w:
        w.add(tok, mask, doc, np.where(src == PAD_SOURCE, PAD_SOURCE, 0))
    f = os.path.join(path, array_name(0, "mask"))
    with open(f, "r+b") as fh:
        fh.truncate(os.path.getsize(f) - 3)
    with pytest.raises(shards.ShardSetError, match="truncated"):
        TokenShards(path)


def test_validate_finds_out_of_vocab_ids(tmp_path):
    path = str(tmp_path / "bad" / "_all")
    with TokenShardWriter(path, 4, ["code"], extra=EXTRA) as w:
        w.add(np.array([[1, 2, 5000, 0]]), np.ones((1, 4)), np.zeros((1, 4)), np.zeros((1, 4)))
    assert any("vocab_size" in p for p in validate(path))


def test_failed_write_leaves_nothing(tmp_path):
    path = str(tmp_path / "x" / "_all")
    with pytest.raises(RuntimeError):
        with TokenShardWriter(path, 4, ["code"], extra=EXTRA, shard_seqs=1) as w:
            w.add(np.zeros((2, 4)), np.ones((2, 4)), np.zeros((2, 4)), np.zeros((2, 4)))
            raise RuntimeError("boom")
    assert not shards.is_committed(path)
    assert not [n for n in os.listdir(tmp_path / "x") if ".tmp-" in n]


def test_writer_rejects_bad_shapes_and_missing_extra(tmp_path):
    with pytest.raises(ValueError, match="lacks"):
        TokenShardWriter(str(tmp_path / "a"), 4, ["code"], extra={"vocab_size": 10})
    with TokenShardWriter(str(tmp_path / "b"), 4, ["code"], extra=EXTRA) as w:
        with pytest.raises(ValueError, match=r"\[n, 4\]"):
            w.add(np.zeros((1, 5)), np.zeros((1, 5)), np.zeros((1, 5)), np.zeros((1, 5)))


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(0, 70), max_size=30), seq_len=st.integers(1, 40), flush=st.integers(1, 4))
def test_packing_invariants_property(lengths, seq_len, flush):
    docs = [np.arange(1, n + 1) + 100 * i for i, n in enumerate(lengths)]
    p = Packer(seq_len, eos_id=0, pad_id=7, flush_rows=flush)
    rows = []
    for d in docs:
        p.add(d, source=1)
        if p.ready():
            rows += p.drain()
    rows += p.drain(final=True)
    if not docs:
        assert rows == []
        return
    tok, mask, doc, src = (np.concatenate(a) for a in zip(*rows))
    real = src != PAD_SOURCE
    assert np.array_equal(tok[real], np.concatenate([np.append(d, 0) for d in docs]))
    assert int(real.sum()) == sum(lengths) + len(lengths)
    assert (~real).sum() < seq_len  # only the last row is padded
    assert (tok[~real] == 7).all() and not mask[~real].any() and mask[real].all()
    assert (doc[:, 0] == 0).all() and set(np.unique(np.diff(doc.astype(int), axis=1))) <= {0, 1}

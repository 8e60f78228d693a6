"""The vectorized tokenizer / hashing agrees with the plain regex definition, on real and random text."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from decontam_helpers import stdlib_file
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.decontam import BenchItem, Decontaminator, SetDecontaminator, ngrams


def _vector_tokens(data: bytes) -> list[bytes]:
    buf = np.frombuffer(data, dtype=np.uint8)
    padded = ngrams.prepare(buf)
    starts, ends = ngrams.token_spans(padded)
    return [padded[s:e].tobytes().translate(ngrams._LOWER_TABLE) for s, e in zip(starts, ends, strict=True)]


def test_normalization_lowercases_and_drops_punctuation_and_whitespace():
    assert ngrams.tokenize(b"def Foo(x):\n\treturn x+1  # Done") == [b"def", b"foo", b"x", b"return", b"x", b"1",
                                                                      b"done"]
    assert ngrams.tokenize("Größe_1 = 'été'".encode()) == ["größe_1".encode(), "été".encode()]


def test_vectorized_spans_match_regex_on_real_source():
    data = stdlib_file("json/decoder.py").encode()
    assert _vector_tokens(data) == ngrams.tokenize(data)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300))
def test_vectorized_spans_match_regex_on_random_text(text):
    data = text.encode("utf-8")
    assert _vector_tokens(data) == ngrams.tokenize(data)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="ab _.\nXY", max_size=20), min_size=1, max_size=8))
def test_tokens_never_cross_document_boundaries(docs):
    """Concatenated documents tokenize exactly as each document alone (no merged tokens)."""
    data = [d.encode() for d in docs]
    offsets = np.zeros(len(data) + 1, dtype=np.int64)
    np.cumsum([len(d) for d in data], out=offsets[1:])
    padded = ngrams.prepare(np.frombuffer(b"".join(data), dtype=np.uint8), offsets[:-1])
    starts, ends = ngrams.token_spans(padded)
    got = [padded[s:e].tobytes().translate(ngrams._LOWER_TABLE) for s, e in zip(starts, ends, strict=True)]
    assert got == [t for d in data for t in ngrams.tokenize(d)]


def test_token_hash_is_case_insensitive_and_position_independent():
    data = b"  Alpha beta ALPHA  xbeta alpha_long_identifier_name ALPHA_LONG_IDENTIFIER_NAME"
    padded = ngrams.prepare(np.frombuffer(data, dtype=np.uint8))
    s, e = ngrams.token_spans(padded)
    h = ngrams.token_hashes(padded, s, e)
    assert h[0] == h[2] and h[4] == h[5]
    assert h[1] != h[3] and h[0] != h[1]


def test_hash_collisions_are_verified_not_reported():
    """Tokens > 16 bytes that differ only in the middle share a hash; the exact check must reject them."""
    bench = " ".join(f"aaaaaaaaa_{i}_middle_one_{i}_zzzzzzzzz" for i in range(12))
    text = " ".join(f"aaaaaaaaa_{i}_middle_two_{i}_zzzzzzzzz" for i in range(12))
    d = Decontaminator([BenchItem("b", "t1", bench)], ngram=10, min_informative=0)
    assert d.find(bench)
    assert d.find(text) == []
    assert SetDecontaminator(d.items, ngram=10, min_informative=0).find(text) == []


def test_document_bigger_than_a_chunk_is_windowed(monkeypatch, humaneval):
    """A document spanning several windows still has its planted leak found (including across a cut)."""
    item = humaneval[7]
    leak = item["prompt"] + item["canonical_solution"]
    filler = stdlib_file("json/decoder.py")
    doc = (filler * 3) + leak + (filler * 3)
    d = Decontaminator.from_config(benchmarks=("humaneval",))
    expected = d.find(doc)
    assert any(h.task_id == item["task_id"] for h in expected)
    # Same document through tiny windows: the leak falls across window cuts.
    data = doc.encode()
    buf = np.frombuffer(data, dtype=np.uint8)
    wins = list(ngrams.windows(buf, np.array([0, len(data)]), chunk=4096, overlap=1024))
    assert len(wins) > 10
    monkeypatch.setattr(ngrams, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(ngrams, "OVERLAP_BYTES", 1024)
    monkeypatch.setattr(ngrams.windows, "__defaults__", (4096, 1024))
    assert d.find(doc) == expected


def test_windows_cover_every_document_once():
    lengths = [0, 5, 10_000, 3, 0, 70_000, 1]
    data = b"".join(b"x " * (n // 2) + b"y" * (n % 2) for n in lengths)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    buf = np.frombuffer(data, dtype=np.uint8)
    seen = []
    for w in ngrams.windows(buf, offsets, chunk=16_384, overlap=1024):
        assert w.hi - w.lo <= 16_384
        seen.extend(range(w.first_doc, w.last_doc))
    assert sorted(set(seen)) == list(range(len(lengths)))


def test_find_array_handles_sliced_and_chunked_arrays(humaneval):
    leak = humaneval[2]["prompt"] + humaneval[2]["canonical_solution"]
    clean = stdlib_file("json/encoder.py")
    d = Decontaminator.from_config(benchmarks=("humaneval",))
    arr = pa.array([clean, None, leak, "", clean], type=pa.string())
    assert set(d.find_array(arr)) == {2}
    assert set(d.find_array(arr.slice(1, 3))) == {1}
    chunked = pa.chunked_array([arr.slice(0, 2), arr.slice(2)])
    assert set(d.find_array(chunked)) == {2}
    assert set(d.find_array(arr.cast(pa.large_string()))) == {2}

"""Tokenizing, shingling and signing: exactness against a plain-Python reference, batch/shard
independence, Jaccard estimates, and bytes that are not valid UTF-8."""

import re

import numpy as np
import pyarrow as pa
import pytest
from dedup_fixtures import near_duplicate_pairs, read, unrelated_files
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.dedup import MinHasher, estimate_jaccard, jaccard, shingle_set
from corpus.dedup.minhash import binary_view, shingle_hashes, token_hashes

TOKEN = re.compile(rb"[A-Za-z0-9_]+")
PIECES = list("ab_x1 .\n\t(é") + ["def ", "foo", "\r\n", "\ud800"]
docs_strategy = st.lists(
    st.lists(st.sampled_from(PIECES), max_size=40).map("".join), min_size=1, max_size=12
)


def enc(s: str) -> bytes:
    return s.encode("utf-8", "surrogatepass")


def column(docs: list[str]) -> pa.Array:
    return pa.array([enc(d) for d in docs], type=pa.large_binary())


def reference_shingles(doc: bytes, n: int) -> list[tuple[bytes, ...]]:
    toks = TOKEN.findall(doc)
    return [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]


@settings(max_examples=40, deadline=None)
@given(docs_strategy)
def test_tokens_match_regex_reference(docs):
    data, offsets, _ = binary_view(column(docs))
    th, td = token_hashes(data, offsets, window=16)  # tiny windows: exercises window cutting
    counts = np.bincount(td, minlength=len(docs))
    assert counts.tolist() == [len(TOKEN.findall(enc(d))) for d in docs]
    # Equal tokens hash equal, different tokens differ (over this small universe).
    seen: dict[bytes, int] = {}
    toks = [t for d in docs for t in TOKEN.findall(enc(d))]
    for tok, h in zip(toks, th.tolist()):
        assert seen.setdefault(tok, h) == h
    assert len(set(seen.values())) == len(seen)


@settings(max_examples=40, deadline=None)
@given(docs_strategy, st.integers(1, 4))
def test_shingle_sets_match_reference(docs, n):
    data, offsets, _ = binary_view(column(docs))
    th, td = token_hashes(data, offsets)
    sh, sd = shingle_hashes(th, td, n)
    for i, d in enumerate(docs):
        ref = set(reference_shingles(enc(d), n))
        assert len(set(sh[sd == i].tolist())) == len(ref)


@settings(max_examples=25, deadline=None)
@given(docs_strategy, st.randoms(use_true_random=False))
def test_signature_independent_of_batch_and_order(docs, rnd):
    m = MinHasher(num_perm=32, ngram=2)
    sig, ntok = m.sign(column(docs))
    perm = list(range(len(docs)))
    rnd.shuffle(perm)
    sig2, ntok2 = m.sign(column([docs[i] for i in perm]))
    assert np.array_equal(sig2, sig[perm]) and np.array_equal(ntok2, ntok[perm])
    for i, d in enumerate(docs):  # one document alone
        alone, _ = m.sign([d])
        assert np.array_equal(alone[0], sig[i])


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=200))
def test_identical_documents_identical_signatures(doc):
    sig, _ = MinHasher(num_perm=64, ngram=3).sign([doc, "other text here", doc])
    assert np.array_equal(sig[0], sig[2])


def test_sliced_arrow_column_reads_the_slice():
    docs = ["alpha beta gamma", "one two three four", "x y z"]
    m = MinHasher(num_perm=16, ngram=2)
    full, _ = m.sign(pa.array(docs, type=pa.string()))
    part, _ = m.sign(pa.array(docs, type=pa.string()).slice(1, 2))
    assert np.array_equal(part, full[1:])


def test_estimate_tracks_true_jaccard_on_real_near_duplicates():
    pairs = near_duplicate_pairs(lo=0.7, limit=12)
    m = MinHasher()
    errs = []
    for a, b, j in pairs:
        sig, _ = m.sign([read(a), read(b)])
        errs.append(abs(estimate_jaccard(sig[0], sig[1]) - j))
    # 256 permutations: standard error <= 0.5/16 ~ 0.03 per pair.
    assert max(errs) < 0.12 and float(np.mean(errs)) < 0.04


def test_unrelated_files_estimate_low():
    files = unrelated_files(6)
    sig, _ = MinHasher().sign([read(f) for f in files])
    for i in range(len(files)):
        for k in range(i + 1, len(files)):
            assert estimate_jaccard(sig[i], sig[k]) < 0.2


def test_invalid_utf8_and_replacement_chars_are_tokenized_by_bytes():
    raw = [b"def f(x):\xed\xa0\x80 return x\xff\xfe + 1", "def f(x):\ufffd return x + 1".encode()]
    sig, ntok = MinHasher(num_perm=16, ngram=2).sign(raw)
    assert ntok.tolist() == [6, 6]  # def f x return x 1: the bad bytes only separate tokens
    assert np.array_equal(sig[0], sig[1])


def test_one_huge_line_bounded_and_consistent():
    line = ("value_%d = compute(value_%d, 3) ; " * 40_000) % tuple(range(80_000))
    small_window = token_hashes(*binary_view(column([line]))[:2], window=4096)[0]
    big_window = token_hashes(*binary_view(column([line]))[:2], window=1 << 24)[0]
    assert np.array_equal(small_window, big_window)
    sig, ntok = MinHasher(num_perm=32).sign([line])
    assert ntok[0] == len(TOKEN.findall(line.encode())) and (sig[0] < 0xFFFFFFFF).all()


def test_empty_and_null_documents():
    col = pa.array(["", None, "a b c d e f"], type=pa.large_string())
    sig, ntok = MinHasher(num_perm=8, ngram=5).sign(col)
    assert ntok.tolist() == [0, 0, 6]
    assert (sig[0] == 0xFFFFFFFF).all() and (sig[1] == 0xFFFFFFFF).all()


def test_jaccard_helper():
    a, b = shingle_set("a b c d e f", 2), shingle_set("a b c d e g", 2)
    assert jaccard(a, b) == 4 / 6
    assert jaccard(a, a) == 1.0 and jaccard(np.zeros(0, np.uint64), np.zeros(0, np.uint64)) == 1.0


needs_numba = pytest.mark.skipif(not MinHasher().uses_numba, reason="numba not installed (numpy backend only)")


@needs_numba
@settings(max_examples=40, deadline=None)
@given(docs_strategy, st.integers(1, 6), st.integers(1, 40))
def test_numba_and_numpy_backends_identical(docs, ngram, num_perm):
    col = column(docs)
    fast = MinHasher(num_perm=num_perm, ngram=ngram, backend="numba").sign(col)
    ref = MinHasher(num_perm=num_perm, ngram=ngram, backend="numpy").sign(col)
    assert np.array_equal(fast[0], ref[0]) and np.array_equal(fast[1], ref[1])


@needs_numba
def test_backends_identical_on_real_files_and_monster_token():
    files = unrelated_files(6)
    docs = [read(f) for f in files] + ["x" * 200_000 + " tail end of the line here", ""]
    fast = MinHasher(backend="numba").sign(docs)
    ref = MinHasher(backend="numpy").sign(docs)
    assert np.array_equal(fast[0], ref[0]) and np.array_equal(fast[1], ref[1])


def test_backend_validation():
    with pytest.raises(ValueError, match="backend"):
        MinHasher(backend="gpu")

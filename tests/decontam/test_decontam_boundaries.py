"""Decontamination on its boundaries: texts of exactly ``ngram`` tokens, the ``min_informative``
threshold hit exactly, n-grams across row boundaries, ranking ties, and the vectorized index
against the plain set-based reference (``corpus.decontam.reference``) with enough examples to
find disagreements, also through tiny windows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from corpus.decontam import ngrams
from corpus.decontam.benchmarks import BenchItem, DecontamError
from corpus.decontam.core import Decontaminator, Hit
from corpus.decontam.reference import SetDecontaminator


def _items(*texts: str) -> list[BenchItem]:
    return [BenchItem("bench", f"t{i}", t) for i, t in enumerate(texts)]


def test_text_of_exactly_ngram_tokens() -> None:
    d = Decontaminator(_items("alpha beta gamma", "alpha beta"), ngram=3)
    assert d.n_ngrams == 1 and d.skipped_short == 1  # a 2-token item has no 3-gram
    assert d.find("Alpha, beta;\n\tGAMMA") == [Hit("bench", "t0", "alpha beta gamma")]
    assert d.find("alpha beta") == [] and d.find("beta gamma alpha") == []
    assert d.find("alpha beta gamma delta")[0].ngram == "alpha beta gamma"


@pytest.mark.parametrize(("min_info", "indexed"), [(0, {"t0", "t1", "t2"}), (1, {"t1", "t2"}), (2, {"t2"}), (3, set())])
def test_min_informative_threshold_is_inclusive(min_info: int, indexed: set[str]) -> None:
    # t0: three stop words; t1: one informative token; t2: two informative tokens (x and 7 are too short)
    texts = ("for in range", "for in alphabet", "quux in alphabet x 7")
    d = Decontaminator(_items(*texts), ngram=3, min_informative=min_info)
    found = {h.task_id for t in texts for h in d.find(t)}
    assert found == indexed


def test_ngram_and_min_informative_validation() -> None:
    Decontaminator([], ngram=3, min_informative=3)
    Decontaminator([], ngram=1, min_informative=0)
    for kwargs in (dict(ngram=3, min_informative=4), dict(ngram=3, min_informative=-1), dict(ngram=0)):
        with pytest.raises(DecontamError):
            Decontaminator([], **kwargs)


def test_informative_tokens_exact() -> None:
    text = b"a ab 12 x1 for Range \xc3\xa9 caf\xc3\xa9 __ A_"
    padded = ngrams.prepare(np.frombuffer(text, dtype=np.uint8))
    s, e = ngrams.token_spans(padded)
    got = ngrams.informative_tokens(padded, s, e).tolist()
    assert got == [False, True, False, True, False, False, True, True, False, True]
    assert got == [ngrams.is_informative(t) for t in ngrams.tokenize(text)]
    assert ngrams.informative_tokens(padded, s[:0], e[:0]).tolist() == []


def test_ngram_hashes_length_and_order() -> None:
    tok = np.array([3, 5, 7, 11], dtype=np.uint64)
    assert ngrams.ngram_hashes(tok, 4).size == 1 and ngrams.ngram_hashes(tok, 5).size == 0
    g = ngrams.ngram_hashes(tok, 2)
    assert g.size == 3 and g[0] != ngrams.ngram_hashes(tok[[1, 0]], 2)[0]


def test_ngram_across_two_rows_is_not_a_hit() -> None:
    d = Decontaminator(_items("alpha beta gamma"), ngram=3)
    got = d.find_array(pa.array(["alpha beta", "gamma", None, "x alpha beta gamma"]))
    assert list(got) == [3] and got[3] == [Hit("bench", "t0", "alpha beta gamma")]


def test_ranking_by_matched_positions_then_name() -> None:
    items = [BenchItem("b", "t1", "alpha beta gamma"), BenchItem("a", "t9", "delta epsilon zeta"),
             BenchItem("a", "t2", "alpha beta gamma delta epsilon zeta eta theta")]
    d = Decontaminator(items, ngram=3)
    hits = d.find("delta epsilon zeta eta theta and alpha beta gamma")
    # a/t2 matches 4 positions; a/t9 and b/t1 one each: tie broken by (benchmark, task_id)
    assert [(h.benchmark, h.task_id) for h in hits] == [("a", "t2"), ("a", "t9"), ("b", "t1")]
    assert hits[0].ngram == "delta epsilon zeta"


WORDS = ["alpha", "Beta", "gamma", "x", "for", "in", "caf\u00e9", "delta_1", "42"]
SEPS = [" ", ", ", "\n", "(", ""]


def _text(parts: list[tuple[int, int]]) -> str:
    return "".join(WORDS[w] + SEPS[s] for w, s in parts)


_parts = st.lists(st.tuples(st.integers(0, len(WORDS) - 1), st.integers(0, len(SEPS) - 1)), max_size=14)


def _check(items: list[BenchItem], texts: list[str], n: int) -> None:
    d = Decontaminator(items, ngram=n)
    ref = SetDecontaminator(items, ngram=n)
    got = d.find_array(pa.array(texts))
    for i, t in enumerate(texts):
        hits = got.get(i, [])
        assert bool(hits) == (not ref.is_clean(t))
        ref_grams = {g for _, _, g in ref.find(t)}
        item_toks = {(it.benchmark, it.task_id): ngrams.tokenize(it.text.encode()) for it in items}
        for h in hits:
            assert h.ngram in ref_grams
            toks = item_toks[(h.benchmark, h.task_id)]
            grams = {b" ".join(toks[j : j + n]).decode() for j in range(len(toks) - n + 1)}
            assert h.ngram in grams


@settings(max_examples=250, deadline=None)
@given(st.lists(_parts, min_size=1, max_size=3), st.lists(_parts, min_size=1, max_size=4), st.integers(2, 4))
@example([[(0, 0), (1, 0), (2, 0)]], [[(0, 1), (1, 2), (2, 4)], [(2, 0)]], 3)
def test_vectorized_index_equals_the_set_reference(item_parts, text_parts, n: int) -> None:
    items = [BenchItem("bench", f"t{i}", _text(p)) for i, p in enumerate(item_parts)]
    _check(items, [_text(p) for p in text_parts], n)


@settings(max_examples=60, deadline=None)
@given(st.lists(_parts, min_size=1, max_size=3), st.lists(st.lists(st.tuples(st.integers(0, 8), st.integers(0, 4)),
                                                                    min_size=20, max_size=60), min_size=1, max_size=2))
def test_tiny_windows_find_the_same_hits(item_parts, text_parts) -> None:
    items = [BenchItem("bench", f"t{i}", _text(p)) for i, p in enumerate(item_parts)]
    texts = [_text(p) + " " + items[0].text for p in text_parts]
    want = Decontaminator(items, ngram=3).find_array(pa.array(texts))
    defaults = ngrams.windows.__defaults__
    ngrams.windows.__defaults__ = (160, 64)  # documents of ~100-500 bytes are cut into several windows
    try:
        got = Decontaminator(items, ngram=3).find_array(pa.array(texts))
    finally:
        ngrams.windows.__defaults__ = defaults
    assert {k: {(h.benchmark, h.task_id) for h in v} for k, v in got.items()} == {
        k: {(h.benchmark, h.task_id) for h in v} for k, v in want.items()}


def test_hits_are_frozen_values() -> None:
    h = Hit("b", "t", "alpha beta gamma")
    assert {h, Hit("b", "t", "alpha beta gamma")} == {h}
    with pytest.raises(dataclasses.FrozenInstanceError):
        h.ngram = "x"  # type: ignore[misc]


@pytest.mark.parametrize(("max_rows", "rows_in", "removed"), [(None, 6, ["row-2", "d", "row-4"]), (6, 6, None),
                                                               (3, 3, ["row-2"]), (2, 2, [])])
def test_filter_shard_set_row_ids_across_batches_and_max_rows(tmp_path, max_rows, rows_in, removed) -> None:
    import pyarrow.parquet as pq

    from corpus import shards

    removed = removed if removed is not None else ["row-2", "d", "row-4"]  # max_rows == all rows: no cut
    leak = "so alpha beta gamma here"
    table = pa.table({"id": [None, "b", None, "d", None, "f"],
                      "content": [None, "clean text", leak, "ALPHA beta, gamma", leak, ""]})
    (tmp_path / "in").mkdir()
    pq.write_table(table, tmp_path / "in" / "part-0.parquet")
    d = Decontaminator([BenchItem("he", "t0", "alpha beta gamma"), BenchItem("mb", "t1", "alpha beta gamma")], ngram=3)
    stats = d.filter_shard_set(str(tmp_path / "in"), str(tmp_path / "out"), str(tmp_path / "rm"), batch_size=2,
                               max_rows=max_rows)
    assert (stats.rows_in, stats.rows_removed, stats.rows_kept) == (rows_in, len(removed), rows_in - len(removed))
    assert stats.empty_or_null == (1 if rows_in < 6 else 2)
    assert stats.bytes_in == sum(len(t or "") for t in table.column("content").to_pylist()[:rows_in])
    rm = [r for b in shards.iter_batches(str(tmp_path / "rm")) for r in b.to_pylist()]
    assert [r["id"] for r in rm] == removed
    assert all(r["n_tasks"] == 2 and r["tasks"] == ["he:t0", "mb:t1"] for r in rm)
    assert shards.read_manifest(str(tmp_path / "out")).rows == rows_in - len(removed)  # type: ignore[union-attr]
    if removed:
        assert stats.removed_per_benchmark == {"he": len(removed), "mb": len(removed)}
        assert stats.tasks_hit == {"he": 1, "mb": 1}


@pytest.mark.parametrize("length", [1, 7, 8, 9, 15, 16, 17, 24])
def test_token_hash_uses_the_first_and_last_eight_bytes(length: int) -> None:
    base = b"abcdefghijklmnopqrstuvwx"[:length]
    variants = [base, base[:-1] + b"Z9"[: 1], b"q" + base[1:], base + b"y"]
    data = b" ".join(variants)
    padded = ngrams.prepare(np.frombuffer(data, dtype=np.uint8))
    s, e = ngrams.token_spans(padded)
    h = ngrams.token_hashes(padded, s, e).tolist()
    assert len(h) == 4 and len(set(h)) == 4  # last byte, first byte and length all count
    upper = ngrams.prepare(np.frombuffer(base.upper(), dtype=np.uint8))
    us, ue = ngrams.token_spans(upper)
    assert ngrams.token_hashes(upper, us, ue).tolist() == h[:1]


def test_ngram_across_the_default_window_cut_of_a_huge_document() -> None:
    # One document longer than CHUNK_BYTES with the leak straddling the first cut: the next window
    # starts OVERLAP_BYTES before the cut, so the 3-gram is still whole in one window.
    d = Decontaminator(_items("alpha beta gamma"), ngram=3)
    head = b"x " * ((ngrams.CHUNK_BYTES - 8) // 2)
    doc = head + b"alpha beta gamma" + b" x" * 2000
    wins = list(ngrams.windows(np.frombuffer(doc, dtype=np.uint8), np.array([0, len(doc)])))
    assert len(wins) == 2 and wins[0].hi < len(head) + 16 and wins[1].lo <= len(head)
    assert d.find(doc) == [Hit("bench", "t0", "alpha beta gamma")]


def test_every_indexed_ngram_is_found_including_the_largest_key() -> None:
    d = Decontaminator(_items("alpha beta gamma delta epsilon"), ngram=3)
    assert d.n_ngrams == 3
    for gram in ("alpha beta gamma", "beta gamma delta", "gamma delta epsilon"):
        assert [h.ngram for h in d.find(f"x {gram} y")] == [gram]


def test_a_collision_with_one_item_does_not_hide_a_hit_on_the_next() -> None:
    # Tokens longer than 16 bytes that differ only in the middle share a hash (documented): the
    # first item matches by hash only and is dropped on verification; the second is a real hit.
    a = "prefix_abcd_0000_suffix_wxyz"
    b = "prefix_abcd_1111_suffix_wxyz"
    d = Decontaminator([BenchItem("b", "t0", f"{a} one two"), BenchItem("b", "t1", "three four five")], ngram=3)
    assert d.find(f"{b} one two three four five") == [Hit("b", "t1", "three four five")]

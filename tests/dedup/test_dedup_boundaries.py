"""Dedup building blocks on their boundaries and against small reference implementations:
LSH curve and parameter checks, band keys, keep-policy ordering with nulls, normalization
(both the numba and the numpy path), token/shingle counts at exactly ``ngram`` tokens."""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from corpus.dedup import lsh
from corpus.dedup import normalize as normalize_mod
from corpus.dedup.lsh import band_keys, collision_probability, optimal_param
from corpus.dedup.minhash import (
    MAX_HASH,
    MinHasher,
    estimate_jaccard,
    is_token_byte,
    jaccard,
    shingle_hashes,
    shingle_set,
    token_hashes,
)
from corpus.dedup.normalize import normalize_content, normalized_hash, normalized_hashes
from corpus.dedup.policy import DEFAULT_KEEP_POLICY, is_permissive, order_by_sql
from corpus.dedup.unionfind import UnionFind


def test_collision_probability_exact() -> None:
    assert collision_probability(0.5, 3, 2) == pytest.approx(1 - 0.75**3)
    assert collision_probability(1.0, 20, 5) == 1.0 and collision_probability(0.0, 20, 5) == 0.0


def test_simpson_is_exact_for_cubics() -> None:
    x = np.linspace(0.0, 2.0, lsh._GRID)
    assert lsh._simpson((x**3 - x)[None, :], 0.0, 2.0)[0] == pytest.approx(2.0, abs=1e-12)  # 16/4 - 4/2


def _reference_param(threshold: float, num_perm: int, fp_w: float, fn_w: float) -> tuple[int, int]:
    """datasketch's loop with a plain composite Simpson rule (same grid)."""
    def area(f, lo, hi):
        xs = np.linspace(lo, hi, lsh._GRID)
        ys = f(xs)
        h = (hi - lo) / (lsh._GRID - 1)
        return h / 3 * (ys[0] + ys[-1] + 4 * ys[1:-1:2].sum() + 2 * ys[2:-1:2].sum())

    best, opt = float("inf"), (0, 0)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = area(lambda s, b=b, r=r: 1 - (1 - s**r) ** b, 0.0, threshold)
            fn = area(lambda s, b=b, r=r: (1 - s**r) ** b, threshold, 1.0)
            err = fp * fp_w + fn * fn_w
            if err < best:
                best, opt = err, (b, r)
    return opt


@pytest.mark.parametrize(("threshold", "num_perm", "fp_w"), [(0.7, 32, 0.5), (0.5, 24, 0.5), (0.8, 40, 0.2),
                                                             (0.3, 16, 0.9)])
def test_optimal_param_matches_a_plain_loop(threshold: float, num_perm: int, fp_w: float) -> None:
    assert optimal_param(threshold, num_perm, fp_w, 1 - fp_w) == _reference_param(threshold, num_perm, fp_w, 1 - fp_w)


def test_optimal_param_validation_boundaries() -> None:
    for t in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="threshold"):
            optimal_param(t, 16)
    b, r = optimal_param(0.999, 16)
    assert b * r <= 16
    optimal_param(0.5, 16, 0.3, 0.7 + 1e-12)  # within tolerance
    with pytest.raises(ValueError, match="fp_weight"):
        optimal_param(0.5, 16, 0.3, 0.71)


def test_band_keys_use_exactly_their_rows_in_order() -> None:
    rng = np.random.default_rng(1)
    sig = rng.integers(0, 2**32, (3, 7), dtype=np.uint64).astype(np.uint32)
    keys = band_keys(sig, 2, 3)  # columns 0-2 and 3-5; column 6 unused
    other = sig.copy()
    other[:, 6] ^= 1
    assert (band_keys(other, 2, 3) == keys).all()
    swapped = sig.copy()
    swapped[:, [0, 1]] = swapped[:, [1, 0]]
    got = band_keys(swapped, 2, 3)
    assert (got[:, 0] != keys[:, 0]).all() and (got[:, 1] == keys[:, 1]).all()
    bumped = sig.copy()
    bumped[:, 5] ^= 1
    got = band_keys(bumped, 2, 3)
    assert (got[:, 0] == keys[:, 0]).all() and (got[:, 1] != keys[:, 1]).all()
    assert band_keys(sig, 7, 1).shape == (3, 7)  # bands * rows == signature length is allowed
    with pytest.raises(ValueError, match="exceeds"):
        band_keys(sig, 4, 2)


def test_keep_policy_orders_nulls_last_and_ties_by_id_then_position() -> None:
    rows = [  # doc, permissive, stars, forks, revision_date, id
        (0, False, 100, 5, "2024-01-01", "a"),
        (1, True, None, 5, "2024-01-01", "b"),
        (2, True, 3, None, "2024-01-01", "c"),
        (3, True, 3, 1, None, "d"),
        (4, True, 3, 1, "2023-01-01", "e"),
        (5, True, 3, 1, "2023-01-01", "e"),
        (6, True, 3, 1, "2023-01-01", "f"),
    ]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (doc INT, permissive BOOLEAN, stars INT, forks INT, revision_date DATE, id VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", rows[::-1])
    order = [d for (d,) in con.execute(f"SELECT doc FROM t ORDER BY {order_by_sql(DEFAULT_KEEP_POLICY)}").fetchall()]
    # permissive first; then stars (null last), forks (null last), date (null last), smallest id, position
    assert order == [4, 5, 6, 3, 2, 1, 0]
    only_stars = [d for (d,) in con.execute(f"SELECT doc FROM t ORDER BY {order_by_sql(('stars',))}").fetchall()]
    assert only_stars == [0, 2, 3, 4, 5, 6, 1]


@pytest.mark.parametrize(
    ("spdx", "permissive"),
    [("MIT", True), ("", False), (None, False), ("GPL-3.0 OR MIT", True), ("MIT OR GPL-3.0", True),
     ("MIT AND GPL-3.0", False), ("GPL-3.0 AND MIT", False), ("(MIT AND Apache-2.0)", True),
     ("Apache-2.0 WITH LLVM-exception", True), ("GPL-2.0 WITH Classpath-exception-2.0", False),
     ("GPL-3.0 OR (MIT AND ISC)", True), ("mit", False)],
)
def test_is_permissive_cases(spdx: str | None, permissive: bool) -> None:
    assert is_permissive(spdx) is permissive


def test_union_find_roots_are_smallest_members_and_repeated_unions_are_noops() -> None:
    uf = UnionFind(6)
    uf.union_many(np.array([5, 4, 3]), np.array([4, 3, 5]))
    uf.union(1, 2)
    uf.union(2, 1)
    assert uf.labels().tolist() == [0, 1, 1, 3, 3, 3]
    uf.union_many(np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    uf.union(2, 5)
    assert uf.labels().tolist() == [0, 1, 1, 1, 1, 1] and uf.find(5) == 1 and uf.find(0) == 0


@pytest.mark.parametrize(
    ("raw", "norm"),
    [(b"a \r\nb\t\r\n\n\n", b"a\nb"), (b"\n\na", b"\n\na"), (b"a\x0c\x0b \n", b"a"), (b"x\ry", b"x\ny"),
     (b"", b""), (b"\n\n", b""), (b" a", b" a"), (b"a\n \nb", b"a\n\nb")],
)
def test_normalize_content_exact(raw: bytes, norm: bytes) -> None:
    assert normalize_content(raw) == norm
    assert normalized_hash(raw) == normalized_hash(norm) and len(normalized_hash(raw)) == 16


def _batch_hashes(docs: list[bytes]) -> list[bytes]:
    data = np.frombuffer(b"".join(docs), dtype=np.uint8)
    offsets = np.cumsum([0] + [len(d) for d in docs]).astype(np.int64)
    hi, lo = normalized_hashes(data, offsets)
    return [int(h).to_bytes(8, "big") + int(v).to_bytes(8, "big") for h, v in zip(hi, lo)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from([b"a", b"\xff", b" ", b"\t", b"\x0b", b"\x0c", b"\r", b"\n"]), max_size=12)
                .map(b"".join), min_size=1, max_size=5))
@example([b"a \n", b"b\r", b"\n", b"c \t", b"d\n\n", b""])
@example([b"a \nb", b"a\t\nb\n"])  # whitespace before an inner LF: only the line-by-line path strips it
def test_batch_hashes_numpy_path_equals_single(docs: list[bytes]) -> None:
    want = [normalized_hash(d) for d in docs]
    assert _batch_hashes(docs) == want
    kernel = normalize_mod.clean_ends_kernel
    normalize_mod.clean_ends_kernel = None  # the numpy fallback (no numba)
    try:
        assert _batch_hashes(docs) == want
    finally:
        normalize_mod.clean_ends_kernel = kernel


def test_is_token_byte_matches_the_regex_on_every_byte() -> None:
    b = np.arange(256, dtype=np.uint8)
    want = [re.fullmatch(rb"[A-Za-z0-9_]", bytes([i])) is not None for i in range(256)]
    assert is_token_byte(b).tolist() == want


def test_jaccard_and_estimate_exact() -> None:
    a, b = np.array([1, 2, 3], np.uint64), np.array([2, 3, 4], np.uint64)
    assert jaccard(a, b) == 0.5 and jaccard(a, a) == 1.0
    assert jaccard(a, np.array([], np.uint64)) == 0.0 and jaccard(np.array([], np.uint64), np.array([], np.uint64)) == 1.0
    assert estimate_jaccard(np.array([1, 2, 3, 4]), np.array([1, 2, 3, 5])) == 0.75


def test_exactly_ngram_tokens_give_one_shingle() -> None:
    for n in (1, 3, 5):
        text = " ".join(f"t{i}" for i in range(n))
        assert len(shingle_set(text, n)) == 1
        assert len(shingle_set(text, n + 1)) == 0
        assert len(shingle_set(text + " extra", n)) == 2


@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_signature_at_the_ngram_boundary_and_token_counts(backend: str) -> None:
    h = MinHasher(num_perm=8, ngram=3, backend=backend)
    sig, n = h.sign(["a b", "a b c", "a.b-c_d 9", "", "é é é"])
    assert n.tolist() == [2, 3, 4, 0, 0]  # a, b, c_d, 9; non-ASCII bytes separate tokens and are never tokens
    assert (sig[0] == MAX_HASH).all() and (sig[1] != MAX_HASH).any() and (sig[3] == MAX_HASH).all()
    assert (sig[4] == MAX_HASH).all()
    # One shingle: each slot is the permutation of that shingle's hash, the same for equal texts
    again, _ = h.sign(["x", "a b c"])
    assert (again[1] == sig[1]).all()


def test_minhasher_validation_boundaries() -> None:
    MinHasher(num_perm=1, ngram=1, backend="numpy")
    for bad in (dict(num_perm=0), dict(ngram=0), dict(backend="gpu")):
        with pytest.raises(ValueError):
            MinHasher(**bad)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet="ab_ .\n", max_size=30), min_size=1, max_size=4), st.integers(1, 9))
def test_token_hashes_independent_of_the_window(docs: list[str], window: int) -> None:
    data = np.frombuffer("".join(docs).encode(), dtype=np.uint8)
    offsets = np.cumsum([0] + [len(d.encode()) for d in docs]).astype(np.int64)
    h1, d1 = token_hashes(data, offsets)
    h2, d2 = token_hashes(data, offsets, window=window)
    assert h1.tolist() == h2.tolist() and d1.tolist() == d2.tolist()
    assert d1.tolist() == [i for i, d in enumerate(docs) for _ in re.findall(r"[A-Za-z0-9_]+", d)]
    sh, sd = shingle_hashes(h1, d1, 2)
    assert sd.tolist() == [i for i, d in enumerate(docs) for _ in range(max(0, len(re.findall(r"\w+", d)) - 1))]


def test_permutation_multipliers_are_odd_so_each_is_a_bijection() -> None:
    h = MinHasher(num_perm=64, seed=7, backend="numpy")
    a = h._a32  # type: ignore[attr-defined]
    assert a.dtype == np.uint32 and (a & 1).all()
    # odd a: x -> a*x + b mod 2**32 never maps two of these shingle tops to one value
    x = np.arange(1 << 12, dtype=np.uint64) << np.uint64(20)
    for k in range(4):
        y = (int(a[k]) * x + int(h._b32[k])) % (1 << 32)  # type: ignore[attr-defined]
        assert len(np.unique(y)) == len(x)


_M64 = (1 << 64) - 1


def _fmix64(x: int) -> int:
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & _M64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & _M64
    return x ^ (x >> 33)


def _reference_signature(doc: bytes, num_perm: int, ngram: int, seed: int) -> list[int]:
    """The documented scheme, one Python int at a time: polynomial token hashes plus length,
    shingles combined and finalized with MurmurHash3's fmix64, ``(a*x + b) mod 2**32`` of the top
    32 bits with odd ``a``, minimum per permutation."""
    p, mult = 0x100000001B3, 0x9E3779B97F4A7C15
    toks = []
    for t in re.findall(rb"[A-Za-z0-9_]+", doc):
        h = 0
        for byte in t:
            h = (h * p + byte) & _M64
        toks.append((h + len(t) * mult) & _M64)
    shingles = []
    for i in range(len(toks) - ngram + 1):
        sh = toks[i]
        for k in range(1, ngram):
            sh = (sh * mult + toks[i + k]) & _M64
        shingles.append(_fmix64(sh) >> 32)
    rng = np.random.default_rng(seed)
    a = [int(v) | 1 for v in rng.integers(0, 1 << 32, num_perm, dtype=np.uint64)]
    b = [int(v) for v in rng.integers(0, 1 << 32, num_perm, dtype=np.uint64)]
    return [min(((a[j] * x + b[j]) & 0xFFFFFFFF for x in shingles), default=0xFFFFFFFF) for j in range(num_perm)]


@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_signatures_equal_a_plain_python_reference(backend: str) -> None:
    docs = [b"def f(x):\n    return x + 1\n", b"a b", b"", b"Caf\xc3\xa9 au_lait 42 x", b"one two three four five six"]
    for num_perm, ngram, seed in ((8, 2, 42), (5, 3, 7), (3, 1, 0)):
        sig, _ = MinHasher(num_perm=num_perm, ngram=ngram, seed=seed, backend=backend).sign(docs)
        assert sig.tolist() == [_reference_signature(d, num_perm, ngram, seed) for d in docs]


@pytest.mark.parametrize("typ", [pa.large_string(), pa.large_binary(), pa.string()])
def test_sliced_columns_sign_like_their_rows(typ) -> None:
    docs = ["alpha beta gamma delta", "one two three four five", "x y z w v u", "red green blue cyan"]
    col = pa.array([d.encode() if pa.types.is_binary(typ) or typ == pa.large_binary() else d for d in docs], typ)
    for backend in ("numpy", "auto"):
        h = MinHasher(num_perm=16, ngram=2, backend=backend)
        want, wn = h.sign(docs[1:3])
        got, gn = h.sign(col.slice(1, 2))
        assert got.tolist() == want.tolist() and gn.tolist() == wn.tolist() == [5, 6]

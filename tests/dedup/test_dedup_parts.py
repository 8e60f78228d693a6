"""LSH parameter choice, band keys, union-find, content normalization and the keep-policy."""

import numpy as np
import pytest
from datasketch.lsh import _optimal_param
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.dedup import (
    DedupConfig,
    UnionFind,
    band_keys,
    collision_probability,
    is_permissive,
    normalize_content,
    normalized_hash,
    optimal_param,
)
from corpus.dedup import normalize as normalize_mod
from corpus.dedup.normalize import normalized_hashes
from corpus.dedup.policy import order_by_sql, validate_policy


@pytest.mark.parametrize("threshold,num_perm", [(0.7, 256), (0.85, 256), (0.5, 128), (0.7, 64), (0.9, 128)])
def test_optimal_param_matches_datasketch(threshold, num_perm):
    assert optimal_param(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)


def test_optimal_param_weights_and_curve():
    b, r = optimal_param(0.7, 256)
    assert b * r <= 256
    assert collision_probability(0.9, b, r) > 0.99 and collision_probability(0.3, b, r) < 0.01
    fp_heavy = optimal_param(0.7, 256, 0.9, 0.1)
    assert collision_probability(0.5, *fp_heavy) < collision_probability(0.5, b, r)
    with pytest.raises(ValueError, match="threshold"):
        optimal_param(1.5, 256)


def test_band_keys_equal_iff_band_equal():
    rng = np.random.default_rng(0)
    sig = rng.integers(0, 2**32, (4, 12), dtype=np.uint64).astype(np.uint32)
    sig[1, :4] = sig[0, :4]  # share band 0 only
    sig[2] = sig[0]
    keys = band_keys(sig, 3, 4)
    assert keys.shape == (4, 3)
    assert keys[1, 0] == keys[0, 0] and (keys[1, 1:] != keys[0, 1:]).all()
    assert (keys[2] == keys[0]).all() and (keys[3] != keys[0]).all()
    with pytest.raises(ValueError):
        band_keys(sig, 4, 4)


def _naive_components(n, edges):
    label = list(range(n))
    changed = True
    while changed:
        changed = False
        for a, b in edges:
            m = min(label[a], label[b])
            if label[a] != m or label[b] != m:
                label[a] = label[b] = m
                changed = True
    return label


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40).flatmap(
    lambda n: st.tuples(st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=60))
), st.integers(1, 7))
def test_union_find_matches_naive_components_any_batching(case, batch):
    n, edges = case
    uf = UnionFind(n)
    for i in range(0, len(edges), batch):
        chunk = edges[i : i + batch]
        uf.union_many(np.array([a for a, _ in chunk], dtype=np.int64), np.array([b for _, b in chunk], dtype=np.int64))
    assert uf.labels().tolist() == _naive_components(n, edges)


def test_union_find_long_chain_and_scalar_api():
    n = 10_000
    uf = UnionFind(n)
    uf.union_many(np.arange(n - 1, 0, -1), np.arange(n - 2, -1, -1))  # a reversed path
    assert (uf.labels() == 0).all()
    uf2 = UnionFind(3)
    uf2.union(2, 1)
    assert uf2.find(2) == 1 and uf2.find(0) == 0


@pytest.mark.parametrize("a,b", [
    (b"x = 1\r\ny = 2\r\n", b"x = 1\ny = 2\n"),
    (b"x = 1   \n\ty = 2\t\n\n\n", b"x = 1\n\ty = 2"),
    (b"a\rb", b"a\nb"),
    (b"", b"\n \n\t\n"),
])
def test_normalization_equates_whitespace_variants(a, b):
    assert normalized_hash(a) == normalized_hash(b)


def test_normalization_keeps_meaningful_differences():
    assert normalized_hash(b"x = 1\n") != normalized_hash(b"x =  1\n")  # inner spaces matter
    assert normalized_hash(b"  x\n") != normalized_hash(b"x\n")  # indentation matters
    assert normalize_content(b"a \r\n\r\nb \n") == b"a\n\nb"


@settings(max_examples=80, deadline=None)
@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\x00", b"")) | st.sampled_from(
    [b"a \n", b"x\r\n", b"\t\n", b"  ", b"\n\n", b"\xed\xa0\x80 \n", b"\xff"]), max_size=8))
def test_batch_normalized_hashes_equal_single(docs):
    data = np.frombuffer(b"".join(docs), dtype=np.uint8)
    offsets = np.cumsum([0] + [len(d) for d in docs]).astype(np.int64)
    kernel = normalize_mod.clean_ends_kernel
    try:
        for use_kernel in (True, False):  # numba scan and its numpy fallback
            normalize_mod.clean_ends_kernel = kernel if use_kernel else None
            hi, lo = normalized_hashes(data, offsets)
            for i, d in enumerate(docs):
                ref = normalized_hash(d)
                assert int(hi[i]) == int.from_bytes(ref[:8], "big")
                assert int(lo[i]) == int.from_bytes(ref[8:], "big")
    finally:
        normalize_mod.clean_ends_kernel = kernel


def test_is_permissive_expressions():
    assert is_permissive("MIT") and is_permissive("Apache-2.0 OR GPL-3.0")
    assert is_permissive("(MIT AND BSD-3-Clause)")
    assert not is_permissive("GPL-3.0") and not is_permissive(None) and not is_permissive("MIT AND GPL-3.0")
    assert is_permissive("GPL-3.0", allowed={"GPL-3.0"})


def test_policy_validation_and_sql():
    assert order_by_sql(("stars", "id")) == "stars DESC NULLS LAST, id ASC, doc ASC"
    with pytest.raises(ValueError, match="unknown criteria"):
        validate_policy(("stars", "popularity"))
    with pytest.raises(ValueError, match="repeat"):
        DedupConfig(keep_policy=("id", "id"))


def test_config_validation():
    assert DedupConfig().lsh_params() == (25, 10)
    assert DedupConfig(bands=16, rows=16).lsh_params() == (16, 16)
    for bad in (dict(threshold=1.0), dict(bands=8), dict(bands=32, rows=16), dict(ngram=0),
                dict(memory_limit="1GB'; DROP"), dict(threads=0)):
        with pytest.raises(ValueError):
            DedupConfig(**bad)
    # Execution knobs do not change the config hash.
    assert DedupConfig(batch_rows=7, memory_limit="2GB").result_config() == DedupConfig().result_config()

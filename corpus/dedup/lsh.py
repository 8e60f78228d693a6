"""LSH banding: choosing (bands, rows) for a Jaccard threshold, and hashing bands to keys.

Bands and rows are chosen like datasketch's ``MinHashLSH``: minimize
``fp_weight * P(false positive) + fn_weight * P(false negative)``, the areas under the
S-curve ``1 - (1 - s**r)**b`` below and above the threshold. Integration here is a fixed
Simpson rule in numpy instead of scipy's adaptive quad (same choices; tested against
datasketch).
"""

from __future__ import annotations

import functools

import numpy as np

from corpus.dedup.minhash import fmix64

_U64 = np.uint64
_BAND_MULT = _U64(0x9E3779B97F4A7C15)
_GRID = 1001  # odd, for Simpson's rule


def _simpson(y: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Simpson's rule along the last axis of ``y`` sampled on ``_GRID`` points of [lo, hi]."""
    h = (hi - lo) / (_GRID - 1)
    w = np.ones(_GRID)
    w[1:-1:2] = 4
    w[2:-1:2] = 2
    return (y @ w) * h / 3


@functools.lru_cache(maxsize=64)
def optimal_param(
    threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5
) -> tuple[int, int]:
    """(bands, rows) with bands * rows <= num_perm minimizing the weighted error areas."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if abs(fp_weight + fn_weight - 1.0) > 1e-9:
        raise ValueError(f"fp_weight + fn_weight must be 1, got {fp_weight} + {fn_weight}")
    # Every (b, r) with b*r <= num_perm at once, in datasketch's scan order (b, then r), so
    # argmin's first minimum is the pair its strict "<" loop keeps.
    b = np.concatenate([np.full(num_perm // bb, bb) for bb in range(1, num_perm + 1)]).astype(np.float64)
    r = np.concatenate([np.arange(1, num_perm // bb + 1) for bb in range(1, num_perm + 1)]).astype(np.float64)
    s_lo = np.linspace(0.0, threshold, _GRID)[None, :]
    s_hi = np.linspace(threshold, 1.0, _GRID)[None, :]
    fp = _simpson(1 - (1 - s_lo ** r[:, None]) ** b[:, None], 0.0, threshold)
    fn = _simpson((1 - s_hi ** r[:, None]) ** b[:, None], threshold, 1.0)
    i = int(np.argmin(fp * fp_weight + fn * fn_weight))
    return int(b[i]), int(r[i])


def collision_probability(similarity: float, bands: int, rows: int) -> float:
    """Probability that two documents of this Jaccard similarity share at least one band."""
    return 1.0 - (1.0 - similarity**rows) ** bands


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """uint64 key per (document, band): a hash of that band's ``rows`` signature values.

    Equal bands give equal keys; unequal bands collide with probability ~2**-64 (and candidate
    verification catches that anyway).
    """
    n, p = signatures.shape
    if bands * rows > p:
        raise ValueError(f"bands*rows = {bands * rows} exceeds the signature length {p}")
    sig = signatures[:, : bands * rows].reshape(n, bands, rows).astype(_U64)
    with np.errstate(over="ignore"):
        key = np.zeros((n, bands), dtype=_U64)
        for r in range(rows):
            np.bitwise_xor(key, sig[:, :, r], out=key)
            np.multiply(key, _BAND_MULT, out=key)
        return fmix64(key)

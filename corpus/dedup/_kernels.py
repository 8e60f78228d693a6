"""numba kernels: fused tokenize -> token hash -> shingle hash -> permute-min, and the scan that
finds already-normalized documents for exact dedup.

It computes bit for bit what the numpy path in minhash.py computes (tested), in one pass over
each document's bytes with O(ngram) state, so no per-byte or per-shingle arrays are built and
the 256-permutation min vectorizes over SIMD lanes. numba is optional: without it the kernels
are None and minhash.py / normalize.py use their numpy paths.
"""

from __future__ import annotations

import numpy as np

try:  # optional accelerator
    import numba
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None

sign_kernel = None
clean_ends_kernel = None

if numba is not None:
    _P = np.uint64(0x100000001B3)
    _M = np.uint64(0x9E3779B97F4A7C15)
    _C1 = np.uint64(0xFF51AFD7ED558CCD)
    _C2 = np.uint64(0xC4CEB9FE1A85EC53)
    _S33 = np.uint64(33)
    _S32 = np.uint64(32)
    _MASK32 = np.uint64(0xFFFFFFFF)

    @numba.njit(cache=True, nogil=True, fastmath=False, boundscheck=False)
    def _fmix(x):  # pragma: no cover - compiled
        x ^= x >> _S33
        x *= _C1
        x ^= x >> _S33
        x *= _C2
        x ^= x >> _S33
        return x

    _TOKEN = np.zeros(256, dtype=np.uint8)
    for _c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_":
        _TOKEN[_c] = 1

    @numba.njit(cache=True, nogil=True, boundscheck=False)
    def _sign(data, offsets, ngram, a, b, sig, ntok):  # pragma: no cover - compiled
        n = offsets.shape[0] - 1
        nperm = a.shape[0]
        table = _TOKEN
        ring = np.zeros(ngram, dtype=np.uint64)
        top = np.uint64(1)  # M**(ngram-1): weight of the token leaving the window
        for _ in range(ngram - 1):
            top *= _M
        for d in range(n):
            s = offsets[d]
            e = offsets[d + 1]
            cnt = 0
            pos = 0
            sh = np.uint64(0)
            h = np.uint64(0)
            length = 0
            row = sig[d]
            for i in range(s, e + 1):
                c = data[i] if i < e else 32
                if table[c]:
                    h = h * _P + np.uint64(c)
                    length += 1
                elif length > 0:
                    t = h + np.uint64(length) * _M
                    h = np.uint64(0)
                    length = 0
                    # Rolling form of sum(t_k * M**(ngram-1-k)) over the last ngram tokens.
                    if cnt >= ngram:
                        sh -= ring[pos] * top
                    sh = sh * _M + t
                    ring[pos] = t
                    pos += 1
                    if pos == ngram:
                        pos = 0
                    cnt += 1
                    if cnt >= ngram:
                        x = np.uint32(_fmix(sh) >> _S32)
                        for p in range(nperm):
                            v = np.uint32(a[p] * x + b[p])  # (a*x + b) mod 2**32, SIMD over p
                            if v < row[p]:
                                row[p] = v
            ntok[d] = cnt

    @numba.njit(cache=True, nogil=True, boundscheck=False)
    def _clean_ends(data, offsets, ends):  # pragma: no cover - compiled
        """Per document: end offset without trailing LFs if the document is already normalized
        (no CR, no space/tab/FF/VT before a LF or at the end), else -1."""
        n = offsets.shape[0] - 1
        for d in range(n):
            s = offsets[d]
            e = offsets[d + 1]
            dirty = False
            for i in range(s, e):
                c = data[i]
                if c == 13:
                    dirty = True
                    break
                if c == 10 and i > s:
                    p = data[i - 1]
                    if p == 32 or p == 9 or p == 11 or p == 12:
                        dirty = True
                        break
            if dirty:
                ends[d] = -1
                continue
            while e > s and data[e - 1] == 10:
                e -= 1
            if e > s:
                p = data[e - 1]
                if p == 32 or p == 9 or p == 11 or p == 12:
                    ends[d] = -1
                    continue
            ends[d] = e

    sign_kernel = _sign
    clean_ends_kernel = _clean_ends

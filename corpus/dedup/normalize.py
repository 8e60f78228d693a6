"""Exact-dedup key: sha256 of content with line endings and trailing whitespace normalized.

Works on bytes so invalid UTF-8 (lone surrogates, stray bytes) hashes instead of raising.
CRLF / CR become LF, trailing spaces and tabs of every line are dropped, and trailing blank
lines at the end of the file are dropped: two files that differ only in those ways are the
same file to a model.
"""

from __future__ import annotations

import hashlib

import numpy as np

from corpus.dedup._kernels import clean_ends_kernel

_WS = b" \t\f\v"
_WS_BYTES = frozenset(_WS)


def normalize_content(data: bytes) -> bytes:
    """LF line endings, no trailing whitespace on any line, no trailing blank lines."""
    lines = data.splitlines()  # splits on \n, \r\n and \r only (bytes semantics)
    return b"\n".join(line.rstrip(_WS) for line in lines).rstrip(b"\n")


def normalized_hash(data: bytes | str) -> bytes:
    """16-byte digest (sha256 prefix) of the normalized content."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return hashlib.sha256(normalize_content(data)).digest()[:16]


def _clean_ends(seg: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """End of each already-normalized document once trailing LFs are cut, or -1 if it needs
    the line-by-line path (a CR, or whitespace before a LF or at the end)."""
    n = len(rel) - 1
    ends = np.empty(n, dtype=np.int64)
    if clean_ends_kernel is not None:
        clean_ends_kernel(seg, np.ascontiguousarray(rel, dtype=np.int64), ends)
        return ends
    dirty = np.zeros(n, dtype=bool)
    if len(seg):
        hit = seg == 13
        head = seg[:-1]
        ws = (head == 32) | (head == 9) | (head == 11) | (head == 12)
        hit[:-1] |= ws & (seg[1:] == 10)
        dirty[np.searchsorted(rel, np.flatnonzero(hit), side="right") - 1] = True
    for i in range(n):
        if dirty[i]:
            ends[i] = -1
            continue
        s, e = int(rel[i]), int(rel[i + 1])
        while e > s and seg[e - 1] == 10:
            e -= 1
        ends[i] = -1 if e > s and int(seg[e - 1]) in _WS_BYTES else e
    return ends


def normalized_hashes(data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hi, lo) uint64 halves of :func:`normalized_hash` for every document of a byte buffer.

    One vectorized pass finds the documents that need line-by-line normalization (a CR, or
    whitespace before a LF); the rest, most code files, only lose trailing newlines.
    """
    n = len(offsets) - 1
    if n == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    base, end = int(offsets[0]), int(offsets[-1])
    seg = data[base:end]
    rel = offsets - base
    ends = _clean_ends(seg, rel)
    view = memoryview(seg)  # hashed in place: no copy of the batch
    rel_l, ends_l = rel.tolist(), ends.tolist()
    out = bytearray(16 * n)
    for i in range(n):
        s, e = rel_l[i], ends_l[i]
        if e >= 0:
            out[16 * i : 16 * i + 16] = hashlib.sha256(view[s:e]).digest()[:16]
        else:
            norm = normalize_content(bytes(view[s : rel_l[i + 1]]))
            out[16 * i : 16 * i + 16] = hashlib.sha256(norm).digest()[:16]
    pairs = np.frombuffer(bytes(out), dtype=">u8").reshape(n, 2).astype(np.uint64)
    return pairs[:, 0].copy(), pairs[:, 1].copy()

"""Vectorized word/punctuation tokenization and n-gram hashing over raw UTF-8 bytes.

Normalization (the Qwen2.5-Coder report's 10-gram decontamination, made exact and fast):
ASCII letters are lowercased; a *word* token is a maximal run of ``[0-9A-Za-z_]`` or non-ASCII
bytes (so UTF-8 letters stay inside words); every other printable ASCII byte is a one-byte
*punctuation* token; whitespace and control bytes only separate tokens (so any whitespace
reformatting of a text yields the same token sequence).

Everything works on whole Arrow string buffers at once: the bytes of a batch of documents are
classified with a lookup table, token boundaries come from shifted masks, a token's hash is a
polynomial hash taken from a prefix sum (``(P[end] - P[start]) * p^-start`` mod 2**64) and an
n-gram's hash is a polynomial over its token hashes. Hashes can collide, so every hit is
verified on the exact token bytes before it counts (see ``corpus.decontam.core``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

SEP, WORD, PUNCT = 0, 1, 2

CLASS = np.zeros(256, dtype=np.uint8)
for _b in range(256):
    _c = chr(_b)
    if _b >= 0x80 or _c == "_" or (_b < 0x80 and _c.isalnum()):
        CLASS[_b] = WORD
    elif 0x21 <= _b <= 0x7E:
        CLASS[_b] = PUNCT
LOWER = np.arange(256, dtype=np.uint8)
LOWER[ord("A") : ord("Z") + 1] += 32
# Lowered byte + 1 (never zero, so a token's hash depends on its length too), as uint64.
_BYTE_VAL = LOWER.astype(np.uint64) + np.uint64(1)

# Reference tokenizer with the same definition (used for verification and the baseline).
TOKEN_RE = re.compile(rb"[0-9a-z_\x80-\xff]+|[!-/:-@\[-^`{-~]")

_P = 0x9E3779B97F4A7C15  # odd, so it is invertible mod 2**64
_P_INV = pow(_P, -1, 1 << 64)
_Q = np.uint64(0xC2B2AE3D27D4EB4F)

CHUNK_BYTES = 4 << 20  # bytes hashed per numpy pass (bounds memory: ~40 bytes per byte of chunk)
OVERLAP_BYTES = 64 << 10  # overlap between windows of one document bigger than a chunk


def _powers(base: int, n: int) -> np.ndarray:
    out = np.empty(n, dtype=np.uint64)
    out[0] = 1
    if n > 1:
        out[1:] = np.uint64(base)
        np.cumprod(out, out=out)  # wraps mod 2**64, which is what we want
    return out


_POW = _powers(_P, CHUNK_BYTES + 1)
_INVPOW = _powers(_P_INV, CHUNK_BYTES + 1)


def tokenize(data: bytes) -> list[bytes]:
    """The normalized tokens of ``data`` (UTF-8 bytes), by the reference regex."""
    return TOKEN_RE.findall(data.translate(_LOWER_TABLE))


_LOWER_TABLE = bytes(LOWER.tolist())


def token_spans(buf: np.ndarray, doc_starts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Start and end byte offsets of every token in ``buf``; tokens never cross ``doc_starts``."""
    n = buf.shape[0]
    if n == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    cls = CLASS[buf]
    word = cls == WORD
    punct = cls == PUNCT
    prev_sep = np.empty(n, dtype=bool)
    prev_sep[0] = True
    np.logical_not(word[:-1], out=prev_sep[1:])
    next_sep = np.empty(n, dtype=bool)
    next_sep[-1] = True
    np.logical_not(word[1:], out=next_sep[:-1])
    if doc_starts is not None and doc_starts.size:
        inner = doc_starts[(doc_starts > 0) & (doc_starts < n)]
        prev_sep[inner] = True
        next_sep[inner - 1] = True
    starts = np.flatnonzero(punct | (word & prev_sep))
    ends = np.flatnonzero(punct | (word & next_sep)) + 1
    return starts, ends


def token_hashes(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Position-independent uint64 hash of each token (lowercased bytes)."""
    n = buf.shape[0]
    if n > CHUNK_BYTES:
        raise ValueError(f"buffer of {n} bytes exceeds CHUNK_BYTES={CHUNK_BYTES}; split it first")
    prefix = np.empty(n + 1, dtype=np.uint64)
    prefix[0] = 0
    vals = _BYTE_VAL[buf]
    np.multiply(vals, _POW[:n], out=vals)
    np.cumsum(vals, out=prefix[1:])
    h = prefix[ends] - prefix[starts]
    h *= _INVPOW[starts]
    return h


def ngram_hashes(tok: np.ndarray, n: int) -> np.ndarray:
    """uint64 hash of every window of ``n`` consecutive token hashes (length ``len(tok)-n+1``)."""
    m = tok.shape[0] - n + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    g = tok[:m].copy()
    for j in range(1, n):
        g *= _Q
        g += tok[j : j + m]
    return g


@dataclass
class Window:
    """A contiguous byte range of a batch buffer holding whole documents ``[first_doc, last_doc)``
    (or one slice of a single document bigger than a chunk)."""

    lo: int
    hi: int
    first_doc: int
    last_doc: int


def windows(buf: np.ndarray, offsets: np.ndarray, chunk: int = CHUNK_BYTES,
            overlap: int = OVERLAP_BYTES) -> Iterator[Window]:
    """Group documents into windows of at most ``chunk`` bytes.

    A document bigger than ``chunk`` is cut into windows at whitespace, each starting ``overlap``
    bytes before the previous cut, so every n-gram spanning less than ``overlap`` bytes lies whole
    in some window (benchmark n-grams are far shorter). Hits from overlaps repeat; callers dedupe.
    """
    n_docs = offsets.shape[0] - 1
    i = 0
    while i < n_docs:
        j = int(np.searchsorted(offsets, offsets[i] + chunk, side="right")) - 1
        if j > i:
            yield Window(int(offsets[i]), int(offsets[j]), i, j)
            i = j
            continue
        a, b = int(offsets[i]), int(offsets[i + 1])
        s = a
        while True:
            e = min(s + chunk, b)
            cut = e
            if e < b:
                seps = np.flatnonzero(CLASS[buf[e - overlap : e]] == SEP)
                if seps.size:
                    cut = e - overlap + int(seps[-1])
            yield Window(s, cut, i, i + 1)
            if cut >= b:
                break
            lo = max(cut - overlap, s + 1)
            seps = np.flatnonzero(CLASS[buf[lo:cut]] == SEP)
            s = lo + int(seps[0]) + 1 if seps.size else cut
        i += 1

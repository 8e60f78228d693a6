"""Vectorized word tokenization and n-gram hashing over raw UTF-8 bytes.

Normalization (the Qwen2.5-Coder report's 10-gram decontamination, made exact and fast):
ASCII letters are lowercased; a token is a maximal run of ``[0-9A-Za-z_]`` or non-ASCII bytes
(so UTF-8 letters stay inside words); whitespace, punctuation and control bytes are boundaries
between tokens and are dropped, so reformatting whitespace or punctuation spacing of a text
yields the same token sequence. Punctuation is dropped rather than kept as one-byte tokens
because ten code tokens of which half are ``( , ) :`` are about four words: on the Python
standard library that flagged 559 of 3000 files (``in range ( 1 , n + 1 ) :``) against 49
with words only (see BENCHMARKS.md).

Everything works on whole Arrow string buffers at once: the bytes of a batch of documents are
classified with a lookup table, token boundaries are the nonzero steps of that class array, a
token's hash mixes its first and last 8 bytes (unaligned uint64 loads, lowercased with SWAR bit
tricks) and its length, and an n-gram's hash is a polynomial over its token hashes. Hashes can
collide, so every hit is verified on the exact token bytes before it counts (see
``corpus.decontam.core``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

SEP, WORD = 0, 1

CLASS = np.zeros(256, dtype=np.uint8)
for _b in range(256):
    _c = chr(_b)
    if _b >= 0x80 or _c == "_" or (_b < 0x80 and _c.isalnum()):
        CLASS[_b] = WORD
ALPHA = np.zeros(256, dtype=np.uint8)
ALPHA[ord("a") : ord("z") + 1] = 1
ALPHA[ord("A") : ord("Z") + 1] = 1
ALPHA[0x80:] = 1
LOWER = np.arange(256, dtype=np.uint8)
LOWER[ord("A") : ord("Z") + 1] += 32

# Reference tokenizer with the same definition (used for verification and the baseline).
TOKEN_RE = re.compile(rb"[0-9a-z_\x80-\xff]+")

_C1 = np.uint64(0x9E3779B97F4A7C15)
_C2 = np.uint64(0xC2B2AE3D27D4EB4F)
_C3 = np.uint64(0x165667B19E3779F9)
_Q = np.uint64(0xFF51AFD7ED558CCD)
_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
_ONES = 0x0101010101010101
_HIGH = np.uint64(0x8080808080808080)
_SEVEN = np.uint64(0x7F7F7F7F7F7F7F7F)
_ADD_A = np.uint64((0x80 - ord("A")) * _ONES)
_ADD_Z = np.uint64((0x80 - ord("Z") - 1) * _ONES)

CHUNK_BYTES = 4 << 20  # bytes hashed per numpy pass (bounds memory to ~30 bytes per byte)
OVERLAP_BYTES = 64 << 10  # overlap between windows of one document bigger than a chunk
_PAD = 8


def tokenize(data: bytes) -> list[bytes]:
    """The normalized tokens of ``data`` (UTF-8 bytes), by the reference regex."""
    return TOKEN_RE.findall(data.translate(_LOWER_TABLE))


_LOWER_TABLE = bytes(LOWER.tolist())


def prepare(buf: np.ndarray, doc_starts: np.ndarray | None = None) -> np.ndarray:
    """Copy of ``buf`` with a separator byte before every document start and 8 zero bytes at the
    end, so tokens never cross documents and 8-byte loads never run past the buffer. The byte
    at ``i`` of document ``k`` (``k`` counted from the first ``doc_starts`` entry) moves to
    ``i + k + 1``."""
    ds = np.zeros(1, dtype=np.int64) if doc_starts is None or doc_starts.size == 0 else doc_starts
    return np.insert(buf, np.concatenate([ds, np.full(_PAD, buf.shape[0], dtype=np.int64)]), 0)


def token_spans(padded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end offsets of every token in a ``prepare``d buffer (word bytes are 1, others 0,
    the buffer starts and ends with a 0, so the class changes alternate start, end, start...)."""
    word = CLASS[padded]
    edges = np.flatnonzero(word[1:] != word[:-1])
    return edges[0::2] + 1, edges[1::2] + 1


def _ascii_lower(x: np.ndarray) -> np.ndarray:
    """Lowercase the ASCII capitals of each byte of uint64 words, in place (SWAR)."""
    heptets = x & _SEVEN
    upper = (heptets + _ADD_A) & ~(heptets + _ADD_Z) & ~x & _HIGH
    x |= upper >> np.uint64(2)
    return x


def token_hashes(padded: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """uint64 hash of each token's lowercased bytes from its first 8 bytes, last 8 bytes and
    length: one unaligned 8-byte load each instead of a pass over every byte. Tokens longer than
    16 bytes that differ only in the middle collide; hits are verified exactly, so a collision
    costs a comparison, never a wrong removal."""
    words = np.ndarray(shape=(padded.shape[0] - 7,), dtype="<u8", buffer=padded, strides=(1,))
    length = ends - starts
    first = words[starts]
    first &= _MASKS[np.minimum(length, 8)]
    _ascii_lower(first)
    last = words[np.maximum(ends - 8, 0)]
    last *= (length > 8).astype(np.uint64)
    _ascii_lower(last)
    h = first * _C1
    h ^= last * _C2
    h ^= length.astype(np.uint64) * _C3
    h ^= h >> np.uint64(29)
    return h


# Tokens that say nothing about where a text came from: keywords and builtins of the common
# languages, and English function words. A benchmark n-gram made mostly of them
# (``for i in range n for j in range n``, ``if a b return a else return b``) is boilerplate.
STOPWORDS = frozenset(
    """
    and as assert async await break class continue def del elif else except false finally for from
    global if import in is lambda none nonlocal not or pass raise return true try while with yield
    self cls print range len int str float bool list dict set tuple type object super open map
    filter zip sum min max abs sorted reversed enumerate isinstance append extend pop keys values
    items join split strip format
    abstract boolean byte case catch char const default do double enum extends final long native
    new null package private protected public short static switch this throw throws void volatile
    var let function undefined typeof instanceof of include define ifndef endif struct unsigned
    sizeof auto signed extern goto register typedef union fn mut impl pub use match func go chan
    echo then fi done esac elif
    the an to is are was were be been being it its this that these those there here of at by on
    for with without from into onto than then so such what which who whom whose when where why how
    all any each every both either neither no nor not only own same some other can could may might
    must shall should will would do does did has have had having we you he she they them his her
    our your their my me us him if else but because while until also just very more most much
    many few one two three first second number numbers value values result results given find
    write function returns return answer let
    """.split()
)


def _stop_hashes() -> np.ndarray:
    words = sorted(STOPWORDS)
    data = " ".join(words).encode()
    padded = prepare(np.frombuffer(data, dtype=np.uint8))
    s, e = token_spans(padded)
    return np.unique(token_hashes(padded, s, e))


def informative_tokens(padded: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                       hashes: np.ndarray | None = None) -> np.ndarray:
    """True for tokens of two or more bytes holding a letter that are not in ``STOPWORDS``
    (not ``0``, ``1``, ``a``, ``x``, ``for``, ``range``, ``the``)."""
    if starts.size == 0:
        return np.zeros(0, dtype=bool)
    alpha = np.zeros(padded.shape[0] + 1, dtype=np.int64)
    np.cumsum(ALPHA[padded], out=alpha[1:])
    ok = ((ends - starts) >= 2) & ((alpha[ends] - alpha[starts]) > 0)
    if hashes is None:
        hashes = token_hashes(padded, starts, ends)
    # Token hashes can collide, so confirm the (rare) stop-word hash matches on the bytes.
    maybe = np.flatnonzero(ok & np.isin(hashes, _STOP_HASHES))
    for i in maybe.tolist():
        if padded[starts[i] : ends[i]].tobytes().translate(_LOWER_TABLE).decode("utf-8", "replace") in STOPWORDS:
            ok[i] = False
    return ok


def is_informative(tok: bytes) -> bool:
    """Scalar twin of ``informative_tokens`` for the reference implementation."""
    return (len(tok) >= 2 and any(b >= 0x80 or 0x61 <= b <= 0x7A for b in tok)
            and tok.decode("utf-8", "replace") not in STOPWORDS)


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


_STOP_HASHES = _stop_hashes()

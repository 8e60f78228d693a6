"""Tokenizing, shingling and MinHash signing of a whole batch of documents at once.

Why not datasketch: it hashes every shingle in Python (join, encode, sha1) and pays a Python
call per document. Here a batch is one contiguous byte buffer (Arrow's own string buffer, no
copy). Token hashes are polynomial hashes of their bytes, shingle hashes combine ``ngram``
token hashes and go through MurmurHash3's finalizer, and the ``num_perm`` permutations are
universal hashes ``(a*x + b) mod 2**32`` (odd ``a``: a true permutation of 32-bit values) of the
shingle hash's top 32 bits, min-reduced per document.

Two backends compute the same bits (tested): a fused numba kernel (_kernels.py, one pass over
the bytes, SIMD min over the permutations) when numba is installed, else numpy prefix sums for
tokens and torch/numpy for the permutations (``np.minimum.reduceat`` per document).

Tokenization follows BigCode's near-dedup: tokens are maximal runs of ``[A-Za-z0-9_]``; every
other byte (punctuation, whitespace, any non-ASCII byte) separates tokens. Working on bytes
makes invalid UTF-8 (lone surrogates, stray bytes) harmless. Shingles are ``ngram``
consecutive tokens of one document.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from corpus.dedup._kernels import sign_kernel

_U64 = np.uint64
MAX_HASH = np.uint32(0xFFFFFFFF)
# A window of the byte buffer processed at once bounds temporary arrays (~30 bytes per byte)
# and keeps them cache-sized.
DEFAULT_WINDOW_BYTES = 1 << 18
_SEARCH_SEP = 1 << 16  # step of the search for a separator byte past a window edge
_CHUNK_SHINGLES = 2048  # shingles per permutation chunk: 2 MiB of uint32 at 256 perms (cache-sized)


def is_token_byte(b: np.ndarray) -> np.ndarray:
    """``[A-Za-z0-9_]`` test of a uint8 array with wrapping byte arithmetic (SIMD-fast; a table
    lookup would widen every index to 64 bits)."""
    letter = b | np.uint8(0x20)
    letter -= np.uint8(ord("a"))
    out = letter < 26
    digit = b - np.uint8(ord("0"))
    out |= digit < 10
    out |= b == ord("_")
    return out


_P = _U64(0x100000001B3)  # odd polynomial base; its inverse mod 2**64 makes prefix sums shiftable
_Q = _U64(pow(0x100000001B3, -1, 1 << 64))
_C1 = _U64(0xFF51AFD7ED558CCD)
_C2 = _U64(0xC4CEB9FE1A85EC53)
_NGRAM_MULT = _U64(0x9E3779B97F4A7C15)


def fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer, in place on ``x`` (which it returns): spreads every bit."""
    tmp = np.empty_like(x)
    with np.errstate(over="ignore"):
        for mult in (_C1, _C2, None):
            np.right_shift(x, _U64(33), out=tmp)
            np.bitwise_xor(x, tmp, out=x)
            if mult is not None:
                np.multiply(x, mult, out=x)
    return x


_POWERS: list[tuple[np.ndarray, np.ndarray]] = []


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``P**i`` and ``Q**i`` mod 2**64 for i < n (cached; the cache only grows)."""
    if not _POWERS or len(_POWERS[0][0]) < n:
        size = 1 << max(12, (n - 1).bit_length())
        with np.errstate(over="ignore"):
            p = np.full(size, _P, dtype=_U64)
            p[0] = 1
            q = np.full(size, _Q, dtype=_U64)
            q[0] = 1
            _POWERS[:] = [(np.cumprod(p, dtype=_U64), np.cumprod(q, dtype=_U64))]
    return _POWERS[0]


def binary_view(content: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bytes uint8, offsets int64 [n+1], null mask) of a string/binary column, zero-copy.

    The column is reinterpreted as ``large_binary`` (no UTF-8 validation), so content with invalid
    UTF-8 is read byte for byte instead of raising. Nulls read as empty documents.
    """
    if isinstance(content, pa.ChunkedArray):
        content = content.combine_chunks() if content.num_chunks != 1 else content.chunk(0)
    if pa.types.is_string(content.type) or pa.types.is_binary(content.type):
        content = content.cast(pa.large_binary() if pa.types.is_binary(content.type) else pa.large_string())
    if pa.types.is_large_string(content.type):
        content = content.view(pa.large_binary())
    if not pa.types.is_large_binary(content.type):
        raise TypeError(f"content column must be string or binary, got {content.type}")
    n = len(content)
    bufs = content.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64, count=n + 1, offset=content.offset * 8)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    nulls = content.is_null().to_numpy(zero_copy_only=False) if content.null_count else np.zeros(n, bool)
    return data, offsets, nulls


def token_hashes(data: np.ndarray, offsets: np.ndarray, window: int = DEFAULT_WINDOW_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every token of every document, in order, and each token's document index.

    ``data[offsets[i]:offsets[i+1]]`` is document ``i``. Tokens never span documents. The buffer is
    processed in windows cut at a separator byte, so memory stays O(window) even for one huge
    line.
    """
    lo, hi = int(offsets[0]), int(offsets[-1])
    hashes: list[np.ndarray] = []
    starts: list[np.ndarray] = []
    s = lo
    while s < hi:
        e = min(s + window, hi)
        if e < hi:
            # Cut at the next separator byte or document start, whichever comes first, so no
            # token is ever split (a monster token just makes this window longer).
            bound = int(offsets[np.searchsorted(offsets, e, side="left")])
            cut = e
            while cut < bound:
                stop = min(cut + _SEARCH_SEP, bound)
                seps = np.flatnonzero(~is_token_byte(data[cut:stop]))
                if len(seps):
                    cut += int(seps[0])
                    break
                cut = stop
            e = cut
        h, st = _window_tokens(data, offsets, s, e)
        if len(h):
            hashes.append(h)
            starts.append(st)
        s = e
    if not hashes:
        return np.zeros(0, _U64), np.zeros(0, np.int64)
    all_starts = np.concatenate(starts) if len(starts) > 1 else starts[0]
    # Tokens are in position order, so each document's tokens are one run: count, then repeat.
    per_doc = np.diff(np.searchsorted(all_starts, offsets, side="left"))
    tok_doc = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), per_doc)
    return (np.concatenate(hashes) if len(hashes) > 1 else hashes[0]), tok_doc


def _window_tokens(data: np.ndarray, offsets: np.ndarray, s: int, e: int) -> tuple[np.ndarray, np.ndarray]:
    b = data[s:e]
    n = len(b)
    tok = is_token_byte(b).view(np.int8)
    edge = np.diff(tok, prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(edge == 1)
    ends = np.flatnonzero(edge == -1)
    # A document start inside a token run (previous document ended mid-token) splits the run.
    inner = offsets[(offsets > s) & (offsets < e)] - s
    glued = inner[(tok[inner - 1] == 1) & (tok[inner] == 1)]
    if len(glued):
        starts = np.union1d(starts, glued)
        ends = np.union1d(ends, glued)
    if not len(starts):
        return np.zeros(0, _U64), starts
    ppow, qpow = _powers(n + 1)
    with np.errstate(over="ignore"):
        g = np.empty(n + 1, dtype=_U64)
        g[0] = 0
        np.cumsum(np.multiply(b, qpow[:n], dtype=_U64), dtype=_U64, out=g[1:])
        h = g[ends]
        h -= g[starts]  # sum of byte * Q**j over the token
        h *= ppow[ends - 1]  # = sum of byte * P**(distance to token end): position-free
        h += (ends - starts).astype(_U64) * _NGRAM_MULT  # length mixed in
    starts += s
    return h, starts


def shingle_hashes(tok_hash: np.ndarray, tok_doc: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every window of ``ngram`` consecutive tokens within one document,
    and each shingle's document index (ascending)."""
    t = len(tok_hash)
    if t < ngram:
        return np.zeros(0, _U64), np.zeros(0, np.int64)
    m = t - ngram + 1
    with np.errstate(over="ignore"):
        sh = tok_hash[:m].copy()
        for k in range(1, ngram):
            np.multiply(sh, _NGRAM_MULT, out=sh)
            np.add(sh, tok_hash[k : k + m], out=sh)
        fmix64(sh)
    valid = tok_doc[:m] == tok_doc[ngram - 1 :]
    if valid.all():
        return sh, tok_doc[:m]
    return sh[valid], tok_doc[:m][valid]


def shingle_set(content: str | bytes, ngram: int) -> np.ndarray:
    """Sorted unique shingle hashes of one document (for true-Jaccard verification)."""
    data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
    buf = np.frombuffer(data, dtype=np.uint8)
    th, td = token_hashes(buf, np.array([0, len(buf)], dtype=np.int64))
    sh, _ = shingle_hashes(th, td, ngram)
    return np.unique(sh)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted unique hash arrays (1.0 for two empty sets)."""
    if len(a) == 0 and len(b) == 0:
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


@dataclass(frozen=True)
class MinHasher:
    """``num_perm`` seeded permutations of 32-bit shingle hashes; signs whole batches.

    Signatures depend only on a document's bytes, ``ngram`` and ``seed``: never on the batch,
    shard or position it came in (tested).
    """

    num_perm: int = 256
    ngram: int = 5
    seed: int = 42
    backend: str = "auto"  # "numba" (fused kernel), "numpy" (vectorized), or "auto": numba if installed

    def __post_init__(self) -> None:
        if self.num_perm < 1 or self.ngram < 1:
            raise ValueError(f"num_perm and ngram must be >= 1 (got {self.num_perm}, {self.ngram})")
        if self.backend not in ("auto", "numba", "numpy"):
            raise ValueError(f"backend must be auto, numba or numpy, got {self.backend!r}")
        if self.backend == "numba" and sign_kernel is None:
            raise ValueError("backend 'numba' needs the numba package (pip install numba)")
        rng = np.random.default_rng(self.seed)
        a = rng.integers(0, 1 << 32, self.num_perm, dtype=np.uint64).astype(np.uint32) | np.uint32(1)
        b = rng.integers(0, 1 << 32, self.num_perm, dtype=np.uint64).astype(np.uint32)
        object.__setattr__(self, "_a32", a)
        object.__setattr__(self, "_b32", b)

    @property
    def uses_numba(self) -> bool:
        return sign_kernel is not None and self.backend != "numpy"

    def sign_buffer(self, data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Signatures ``uint32 [n, num_perm]`` and token counts ``int64 [n]`` for n documents.

        A document with no shingle (fewer than ``ngram`` tokens) gets all ``0xFFFFFFFF``.
        """
        n = len(offsets) - 1
        if self.uses_numba:
            sig = np.full((n, self.num_perm), MAX_HASH, dtype=np.uint32)
            n_tokens = np.zeros(n, dtype=np.int64)
            if n:
                offs = np.ascontiguousarray(offsets, dtype=np.int64)
                sign_kernel(data, offs, self.ngram, self._a32, self._b32, sig, n_tokens)  # type: ignore[attr-defined]
            return sig, n_tokens
        tok_hash, tok_doc = token_hashes(data, offsets)
        n_tokens = np.bincount(tok_doc, minlength=n).astype(np.int64)
        sh, sh_doc = shingle_hashes(tok_hash, tok_doc, self.ngram)
        return self.sign_shingles(sh, sh_doc, n), n_tokens

    def sign_shingles(self, sh: np.ndarray, sh_doc: np.ndarray, n: int) -> np.ndarray:
        """Min over each document's shingles of every permutation; ``sh_doc`` ascending."""
        sig_t = np.full((self.num_perm, n), MAX_HASH, dtype=np.uint32)
        x = (sh >> _U64(32)).astype(np.uint32)
        # torch's SIMD int32 kernels are ~3x numpy's for the broadcast multiply-add; int32
        # arithmetic wraps exactly like uint32 mod 2**32, so the bits are the same.
        import torch  # only the numpy backend needs it (imported lazily: ~1 s and ~250 MB)

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # ops this small lose to thread start-up; scale with processes
        try:
            self._permute_min(x, sh_doc, sig_t)
        finally:
            torch.set_num_threads(threads)
        return np.ascontiguousarray(sig_t.T)

    def _permute_min(self, x: np.ndarray, sh_doc: np.ndarray, sig_t: np.ndarray) -> None:
        import torch

        total = len(x)
        buf = torch.empty((self.num_perm, _CHUNK_SHINGLES), dtype=torch.int32)
        a = torch.from_numpy(self._a32.view(np.int32)[:, None].copy())  # type: ignore[attr-defined]
        b = torch.from_numpy(self._b32.view(np.int32)[:, None].copy())  # type: ignore[attr-defined]
        xt = torch.from_numpy(x.view(np.int32))
        for lo in range(0, total, _CHUNK_SHINGLES):
            ds = sh_doc[lo : lo + _CHUNK_SHINGLES]
            out = buf[:, : len(ds)]
            torch.mul(a, xt[None, lo : lo + len(ds)], out=out)
            out.add_(b)
            seg = np.flatnonzero(ds[1:] != ds[:-1]) + 1
            seg = np.concatenate(([0], seg))
            mins = np.minimum.reduceat(out.numpy().view(np.uint32), seg, axis=1)
            cols = ds[seg]
            np.minimum(sig_t[:, cols], mins, out=mins)
            sig_t[:, cols] = mins

    def sign(self, contents: pa.Array | pa.ChunkedArray | list[str | bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Signatures and token counts of a column (or list) of documents."""
        if isinstance(contents, list):
            contents = pa.array(
                [c.encode("utf-8", "surrogatepass") if isinstance(c, str) else c for c in contents],
                type=pa.large_binary(),
            )
        data, offsets, _ = binary_view(contents)
        return self.sign_buffer(data, offsets)


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Fraction of equal signature slots: the MinHash estimate of Jaccard similarity."""
    return float(np.mean(sig_a == sig_b))

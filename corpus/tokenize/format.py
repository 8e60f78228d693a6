"""Token shard sets: the format ``training/`` reads (docs/STAGES.md, "Token shards").

A token shard set is a committed shard set (``_manifest.json`` written last, folder renamed
into place) holding only side files, per shard ``NNNNN``:

- ``part-NNNNN.tokens.u32``: little-endian uint32 token ids, shape ``[n_seq, seq_len]``, C order;
- ``part-NNNNN.mask.u8``: uint8 loss mask, same shape (1 = predict this token, 0 = padding);
- ``part-NNNNN.docs.u16``: little-endian uint16 document index within its row (0, 1, 2, ...
  restarting per row): equal values = same document (document-boundary attention);
- ``part-NNNNN.src.u8``: uint8 source index per token (index into ``extra["sources"]``, e.g.
  ``code``, ``text_code``, ``math``), so evaluation can report loss per source; padding
  positions carry ``PAD_SOURCE`` (255) and mask 0.

Manifest ``extra``: ``format`` (``codecorpus-tokens-v1``), ``seq_len``, ``vocab_size``,
``n_seq``, ``eos_id``, ``pad_id``, ``tokenizer_sha256``, ``special_tokens`` ({name: id}),
``sources`` (list of names), ``tokens_per_source`` / ``loss_tokens_per_source`` /
``docs_per_source`` ({name: count}) and any stage statistics. Each array file is listed in
``side_files`` with ``rows`` = its number of sequences. Readers memory-map the arrays; nothing
here imports Dagster or torch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from corpus import shards

FORMAT = "codecorpus-tokens-v1"
ARRAYS = {"tokens": ("u32", np.dtype("<u4")), "mask": ("u8", np.dtype("u1")), "docs": ("u16", np.dtype("<u2")),
          "src": ("u8", np.dtype("u1"))}
DEFAULT_SHARD_SEQS = 4096
PAD_SOURCE = 255
MAX_SOURCES = 255


def array_name(shard: int, kind: str) -> str:
    return f"part-{shard:05d}.{kind}.{ARRAYS[kind][0]}"


class TokenShardWriter:
    """Buffers packed sequences and writes them as token shards of a new, atomically committed set.

    ``extra`` must hold ``vocab_size``, ``eos_id``, ``pad_id``, ``tokenizer_sha256`` and
    ``special_tokens``; the writer adds ``format``, ``seq_len``, ``n_seq``, ``sources`` and the
    per-source counters. Use as a context manager (an exception discards everything).
    """

    def __init__(
        self,
        path: str,
        seq_len: int,
        sources: Sequence[str],
        *,
        config: Mapping[str, Any] | None = None,
        input_hashes: Sequence[str] = (),
        extra: Mapping[str, Any] | None = None,
        shard_seqs: int = DEFAULT_SHARD_SEQS,
        inputs: Sequence[str] = (),
    ) -> None:
        if not 1 <= seq_len <= 65536:
            raise ValueError(f"seq_len={seq_len}: must be in 1..65536 (document ids are uint16)")
        if len(sources) > MAX_SOURCES:
            raise ValueError(f"{len(sources)} sources: at most {MAX_SOURCES} fit a uint8 source index")
        required = {"vocab_size", "eos_id", "pad_id", "tokenizer_sha256", "special_tokens"}
        missing = required - set(extra or {})
        if missing:
            raise ValueError(f"{path}: token shard manifest extra lacks {sorted(missing)}")
        if int(extra["vocab_size"]) > 2**32:  # type: ignore[index]
            raise ValueError("vocab_size does not fit uint32")
        self.path = path
        self.seq_len = seq_len
        self.sources = list(sources)
        self.shard_seqs = shard_seqs
        self._writer = shards.ShardSetWriter(
            path, schema=None, config=config, input_hashes=input_hashes, inputs=inputs,
            extra={"format": FORMAT, "seq_len": seq_len, "sources": self.sources, **dict(extra or {})},
        )
        self._bufs: dict[str, list[np.ndarray]] = {k: [] for k in ARRAYS}
        self._buffered = 0
        self._shard = 0
        self.n_seq = 0
        self.tokens_per_source = np.zeros(len(self.sources), dtype=np.int64)
        self.loss_tokens_per_source = np.zeros(len(self.sources), dtype=np.int64)
        self.docs_per_source = np.zeros(len(self.sources), dtype=np.int64)

    def __enter__(self) -> TokenShardWriter:
        self._writer.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self._writer.abort()

    def add(self, tokens: np.ndarray, mask: np.ndarray, docs: np.ndarray, src: np.ndarray) -> None:
        """Append sequences (each array ``[n, seq_len]`` or ``[seq_len]``)."""
        tokens, mask, docs, src = (np.atleast_2d(a) for a in (tokens, mask, docs, src))
        for a in (tokens, mask, docs, src):
            if a.shape != tokens.shape or a.shape[1] != self.seq_len:
                raise ValueError(f"sequence arrays must all be [n, {self.seq_len}]; got {a.shape}")
        tokens, mask, docs, src = (np.ascontiguousarray(a, dtype=ARRAYS[k][1])
                                   for k, a in zip(("tokens", "mask", "docs", "src"), (tokens, mask, docs, src)))
        for k, a in zip(("tokens", "mask", "docs", "src"), (tokens, mask, docs, src)):
            self._bufs[k].append(a)
        n_src = len(self.sources)
        real = src != PAD_SOURCE
        self.tokens_per_source += np.bincount(src[real].ravel(), minlength=n_src)[:n_src]
        self.loss_tokens_per_source += np.bincount(src[real & (mask != 0)].ravel(), minlength=n_src)[:n_src]
        self._buffered += tokens.shape[0]
        self.n_seq += tokens.shape[0]
        while self._buffered >= self.shard_seqs:
            self._flush(self.shard_seqs)

    def count_document(self, source_index: int) -> None:
        self.docs_per_source[source_index] += 1

    def _flush(self, n: int) -> None:
        if n == 0:
            return
        joined = {k: np.concatenate(v) for k, v in self._bufs.items()}
        for k, arr in joined.items():
            out = self._writer.side_file_path(array_name(self._shard, k), rows=n)
            arr[:n].tofile(out)
            self._bufs[k] = [arr[n:]] if arr.shape[0] > n else []
        self._buffered -= n
        self._shard += 1

    @property
    def shard_writer(self) -> shards.ShardSetWriter:
        """The underlying set writer (to commit several token sets as one unit)."""
        return self._writer

    def commit(self) -> shards.Manifest:
        self.finish()
        return self._writer.commit()

    def finish(self) -> None:
        """Write the buffered sequences and the counters; the set is committed by the caller."""
        self._flush(self._buffered)
        names = self.sources
        self._writer.extra.update(
            n_seq=self.n_seq,
            n_shards=self._shard,
            tokens_per_source={s: int(c) for s, c in zip(names, self.tokens_per_source)},
            loss_tokens_per_source={s: int(c) for s, c in zip(names, self.loss_tokens_per_source)},
            docs_per_source={s: int(c) for s, c in zip(names, self.docs_per_source)},
        )

    def abort(self) -> None:
        self._writer.abort()

    @property
    def extra(self) -> dict[str, Any]:
        return self._writer.extra


@dataclass
class TokenShard:
    tokens: np.ndarray
    mask: np.ndarray
    docs: np.ndarray
    src: np.ndarray


class TokenShards:
    """Memory-mapped reader of a committed token shard set (random access by sequence index)."""

    def __init__(self, path: str) -> None:
        m = shards.read_manifest(path)
        if m is None:
            raise shards.ShardSetError(f"{path}: no {shards.MANIFEST}; materialize the token asset first")
        if m.extra.get("format") != FORMAT:
            raise shards.ShardSetError(f"{path}: not a token shard set (format {m.extra.get('format')!r})")
        self.path = path
        self.manifest = m
        self.seq_len = int(m.extra["seq_len"])
        self.sources: list[str] = list(m.extra.get("sources", []))
        side = {f["name"]: f for f in m.side_files}
        self.shards: list[TokenShard] = []
        for i in range(int(m.extra.get("n_shards", 0))):
            arrays = {}
            for kind, (_, dtype) in ARRAYS.items():
                name = array_name(i, kind)
                if name not in side:
                    raise shards.ShardSetError(f"{path}: manifest lists no {name}")
                rows = int(side[name]["rows"])
                full = os.path.join(path, name)
                expect = rows * self.seq_len * dtype.itemsize
                if os.path.getsize(full) != expect:
                    raise shards.ShardSetError(f"{full}: {os.path.getsize(full)} bytes, expected {expect} "
                                               "(truncated or foreign file; re-materialize the set)")
                arrays[kind] = np.memmap(full, dtype=dtype, mode="r", shape=(rows, self.seq_len))
            self.shards.append(TokenShard(**arrays))
        self._offsets = np.cumsum([0] + [s.tokens.shape[0] for s in self.shards])

    @property
    def extra(self) -> dict[str, Any]:
        return self.manifest.extra

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, i: int) -> TokenShard:
        if not 0 <= i < len(self):
            raise IndexError(i)
        s = int(np.searchsorted(self._offsets, i, side="right") - 1)
        j = i - int(self._offsets[s])
        sh = self.shards[s]
        return TokenShard(sh.tokens[j], sh.mask[j], sh.docs[j], sh.src[j])

    def __iter__(self) -> Iterator[TokenShard]:
        for i in range(len(self)):
            yield self[i]


def validate(path: str, max_rows: int = 256) -> list[str]:
    """Structural problems of a token shard set (empty list = sound), checking up to
    ``max_rows`` sequences per shard: ids below ``vocab_size``, document indices starting at 0
    and rising by at most 1, padding only with mask 0, sources in range."""
    ts = TokenShards(path)
    vocab = int(ts.extra["vocab_size"])
    n_src = len(ts.sources)
    problems = []
    for k, sh in enumerate(ts.shards):
        tok, mask, docs, src = (np.asarray(a[:max_rows]) for a in (sh.tokens, sh.mask, sh.docs, sh.src))
        if tok.size == 0:
            continue
        if int(tok.max()) >= vocab:
            problems.append(f"shard {k}: token id {int(tok.max())} >= vocab_size {vocab}")
        if (docs[:, 0] != 0).any():
            problems.append(f"shard {k}: a row's document index does not start at 0")
        step = np.diff(docs.astype(np.int32), axis=1)
        if ((step < 0) | (step > 1)).any():
            problems.append(f"shard {k}: document indices must rise by 0 or 1 along a row")
        pad = src == PAD_SOURCE
        if (mask[pad] != 0).any():
            problems.append(f"shard {k}: padding positions with loss mask 1")
        if (src[~pad] >= n_src).any():
            problems.append(f"shard {k}: source index outside {ts.sources}")
    if sum(s.tokens.shape[0] for s in ts.shards) != int(ts.extra.get("n_seq", -1)):
        problems.append("n_seq in the manifest differs from the arrays")
    return problems

"""The decontaminator: an index of benchmark n-grams and a streaming filter over shard sets.

Membership is tested in steps per training n-gram: a 1 MiB then a 16 MiB byte table indexed by
the top bits of the n-gram hash reject almost everything with cache-friendly gathers, the few
survivors are looked up in the sorted array of benchmark hashes, and every hash hit is confirmed
on the exact token bytes (so a hash collision can never remove a row).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus import safety, shards, stagerun
from corpus.decontam import ngrams
from corpus.decontam.benchmarks import (
    DEFAULT_BENCHMARKS,
    BenchItem,
    DecontamError,
    load_items,
    resolve_specs,
)

MIN_INFORMATIVE = 1  # with STOPWORDS: 0 false hits on 3,000 stdlib files, every benchmark item indexed
_TABLE_BITS = 24  # 16 MiB: ~1.4% false positives at 230k benchmark n-grams
_SHIFT = np.uint64(64 - _TABLE_BITS)
_SMALL_BITS = 20  # 1 MiB, stays in L2: a first pass that halves the random reads into the big table
_SMALL_SHIFT = np.uint64(64 - _SMALL_BITS)

REMOVED_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("benchmark", pa.string()),
        pa.field("task_id", pa.string()),
        pa.field("ngram", pa.string()),
        pa.field("n_tasks", pa.int32()),
        pa.field("tasks", pa.list_(pa.string())),
    ]
)


@dataclass(frozen=True)
class Hit:
    """A benchmark item sharing the n-gram ``ngram`` (normalized tokens, space-joined) with a text."""

    benchmark: str
    task_id: str
    ngram: str


MAX_EXAMPLES = 10  # first removed rows kept in the stats, for review


@dataclass
class FilterStats:
    rows_in: int = 0
    rows_kept: int = 0
    rows_removed: int = 0
    bytes_in: int = 0
    empty_or_null: int = 0
    removed_per_benchmark: dict[str, int] = field(default_factory=dict)
    tasks_hit: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    examples: list[dict[str, Any]] = field(default_factory=list)  # first removed rows, for review
    skipped: dict[str, int] = field(default_factory=dict)  # rows not scanned (invalid_utf8_<column>)
    skipped_examples: list[str] = field(default_factory=list)
    _tasks: dict[str, set[str]] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def shard_dict(self) -> dict[str, Any]:
        """``as_dict`` plus the distinct task ids hit (what ``merge`` needs to count them)."""
        return self.as_dict() | {"task_ids": {b: sorted(t) for b, t in self._tasks.items()}}

    def merge(self, other: Mapping[str, Any]) -> None:
        """Add one shard's ``shard_dict``; merged in input order this equals one sequential pass."""
        for k in ("rows_in", "rows_kept", "rows_removed", "bytes_in", "empty_or_null"):
            setattr(self, k, getattr(self, k) + int(other[k]))
        for k in ("removed_per_benchmark", "skipped"):
            mine = getattr(self, k)
            for key, v in other[k].items():
                mine[key] = mine.get(key, 0) + v
        for b, ids in other["task_ids"].items():
            self._tasks.setdefault(b, set()).update(ids)
        self.tasks_hit = {b: len(t) for b, t in sorted(self._tasks.items())}
        self.examples.extend(other["examples"][: max(0, MAX_EXAMPLES - len(self.examples))])
        self.skipped_examples.extend(other["skipped_examples"][: max(0, 20 - len(self.skipped_examples))])


class Decontaminator:
    """N-gram overlap detector for a fixed set of benchmark items (see module docstring)."""

    def __init__(self, items: Sequence[BenchItem], ngram: int = 10, fingerprint: Mapping[str, Any] | None = None,
                 min_informative: int = MIN_INFORMATIVE) -> None:
        if ngram < 1:
            raise DecontamError(f"ngram must be >= 1, got {ngram}")
        if not 0 <= min_informative <= ngram:
            raise DecontamError(f"min_informative must be in [0, ngram={ngram}], got {min_informative}")
        self.n = ngram
        self.min_informative = min_informative
        self.items = list(items)
        self._fingerprint = dict(fingerprint or {"ngram": ngram, "items": len(self.items)})
        self._item_tokens: dict[int, list[bytes]] = {}
        self.skipped_short = 0
        self._build()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(
        cls,
        ngram: int = 10,
        benchmarks: Sequence[str] = DEFAULT_BENCHMARKS,
        extra: Iterable[Any] = (),
        min_informative: int = MIN_INFORMATIVE,
    ) -> Decontaminator:
        """Index the bundled ``benchmarks`` (humaneval, mbpp, gsm8k, math) plus ``extra``
        benchmark files (``BenchmarkSpec``, mappings or ``PATH:NAME:FIELDS[:ID]`` strings).

        Benchmark n-grams with fewer than ``min_informative`` informative tokens (two or more
        bytes with a letter, not a keyword/builtin/function word from ``ngrams.STOPWORDS``) are
        not indexed: ``1 2 3 4 5 6 7 8 9 10`` or ``for i in range n for j in range n`` are in
        thousands of real files and say nothing about contamination."""
        specs = resolve_specs(list(benchmarks), list(extra))
        report = load_items(specs)
        fp = {
            "ngram": ngram,
            "min_informative": min_informative,
            "normalization": "ascii-lower/words-v1",
            "stopwords_sha256": hashlib.sha256(" ".join(sorted(ngrams.STOPWORDS)).encode()).hexdigest()[:16],
            "benchmarks": [
                {"name": s.name, "fields": list(s.fields), "id_field": s.id_field, "sha256": s.file_sha256()}
                for s in specs
            ],
        }
        return cls(report.items, ngram=ngram, fingerprint=fp, min_informative=min_informative)

    def _build(self) -> None:
        texts = [it.text.encode("utf-8", "surrogatepass") for it in self.items]
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        buf = np.frombuffer(b"".join(texts), dtype=np.uint8)
        keys, item_idx, tok_pos = [], [], []
        for w in ngrams.windows(buf, offsets):
            if (w.lo, w.hi) != (offsets[w.first_doc], offsets[w.last_doc]):
                # An item split across windows (> CHUNK_BYTES); benchmark items are a few KB.
                it = self.items[w.first_doc]
                raise DecontamError(f"benchmark {it.benchmark!r} item {it.task_id!r} is too large to index "
                                    f"(> {ngrams.CHUNK_BYTES} bytes)")
            padded, doc_starts = _prepare_window(buf, offsets, w)
            starts, ends = ngrams.token_spans(padded)
            th = ngrams.token_hashes(padded, starts, ends)
            g = ngrams.ngram_hashes(th, self.n)
            if g.size == 0:
                continue
            tok_doc = np.searchsorted(doc_starts, starts, side="right") - 1
            info = np.zeros(starts.size + 1, dtype=np.int64)
            np.cumsum(ngrams.informative_tokens(padded, starts, ends, th), out=info[1:])
            valid = (tok_doc[: g.size] == tok_doc[self.n - 1 :]) & (
                info[self.n :] - info[: g.size] >= self.min_informative
            )
            first_tok = np.searchsorted(tok_doc, np.arange(w.last_doc - w.first_doc), side="left")
            k = np.flatnonzero(valid)
            keys.append(g[k])
            item_idx.append((tok_doc[k] + w.first_doc).astype(np.int32))
            tok_pos.append((k - first_tok[tok_doc[k]]).astype(np.int32))
        if keys:
            allk = np.concatenate(keys)
            order = np.argsort(allk, kind="stable")
            self._keys = allk[order]
            self._item = np.concatenate(item_idx)[order]
            self._pos = np.concatenate(tok_pos)[order]
        else:
            self._keys = np.empty(0, np.uint64)
            self._item = np.empty(0, np.int32)
            self._pos = np.empty(0, np.int32)
        indexed = set(np.unique(self._item).tolist())
        self.skipped_short += len(self.items) - len(indexed)
        self._table = np.zeros(1 << _TABLE_BITS, dtype=bool)
        self._table[self._keys >> _SHIFT] = True
        self._small = np.zeros(1 << _SMALL_BITS, dtype=bool)
        self._small[self._keys >> _SMALL_SHIFT] = True

    @property
    def fingerprint(self) -> dict[str, Any]:
        """What the result depends on (ngram, normalization, benchmark files and fields): hash it
        into the stage config so that changing benchmarks re-runs the filter."""
        return dict(self._fingerprint)

    @property
    def n_ngrams(self) -> int:
        return int(self._keys.size)

    def benchmark_names(self) -> list[str]:
        return sorted({it.benchmark for it in self.items})

    def _tokens_of_item(self, i: int) -> list[bytes]:
        toks = self._item_tokens.get(i)
        if toks is None:
            toks = ngrams.tokenize(self.items[i].text.encode("utf-8", "surrogatepass"))
            self._item_tokens[i] = toks
        return toks

    # ------------------------------------------------------------------ scanning
    def _scan(self, buf: np.ndarray, offsets: np.ndarray) -> dict[int, list[Hit]]:
        """Verified hits per document index, best-matching benchmark item first."""
        out: dict[int, dict[tuple[str, str], list]] = {}
        n = self.n
        if self._keys.size == 0:
            return out
        for w in ngrams.windows(buf, offsets):
            if w.hi - w.lo < n:
                continue
            padded, doc_starts = _prepare_window(buf, offsets, w)
            starts, ends = ngrams.token_spans(padded)
            if starts.size < n:
                continue
            g = ngrams.ngram_hashes(ngrams.token_hashes(padded, starts, ends), n)
            cand = np.flatnonzero(self._small[g >> _SMALL_SHIFT])
            cand = cand[self._table[g[cand] >> _SHIFT]]
            if cand.size == 0:
                continue
            gc = g[cand]
            lo = np.searchsorted(self._keys, gc, side="left")
            found = self._keys[np.minimum(lo, self._keys.size - 1)] == gc
            if not found.any():
                continue
            k, lo = cand[found], lo[found]
            hi = np.searchsorted(self._keys, gc[found], side="right")
            d0 = np.searchsorted(doc_starts, starts[k], side="right") - 1
            same = d0 == np.searchsorted(doc_starts, starts[k + n - 1], side="right") - 1
            k, lo, hi, d0 = k[same], lo[same], hi[same], d0[same]
            if k.size == 0:
                continue
            # One row per (text n-gram, benchmark n-gram with that hash), grouped by (doc, item).
            reps = hi - lo
            kk = np.repeat(k, reps)
            pidx = np.repeat(lo - np.cumsum(reps) + reps, reps) + np.arange(int(reps.sum()))
            dd = np.repeat(d0, reps)
            items = self._item[pidx]
            order = np.lexsort((kk, items, dd))
            kk, pidx, dd, items = kk[order], pidx[order], dd[order], items[order]
            first = np.flatnonzero(np.r_[True, (dd[1:] != dd[:-1]) | (items[1:] != items[:-1])])
            last = np.r_[first[1:], dd.size]
            for a, b in zip(first.tolist(), last.tolist(), strict=True):
                item, doc = int(items[a]), w.first_doc + int(dd[a])
                ngram = self._verify(padded, starts, ends, kk[a:b], pidx[a:b], item)
                if ngram is None:  # every hash match of this pair was a collision
                    continue
                it = self.items[item]
                entry = out.setdefault(doc, {}).setdefault((it.benchmark, it.task_id), [ngram, set()])
                # Match positions relative to the document, so window overlaps are not counted twice
                # (they rank items; the removal itself rests on the verified n-gram above).
                shift = max(0, w.lo - int(offsets[doc])) - int(doc_starts[int(dd[a])])
                entry[1].update((starts[kk[a:b]] + shift).tolist())
        return {doc: _ranked(hits) for doc, hits in out.items()}

    def _verify(self, padded: np.ndarray, starts: np.ndarray, ends: np.ndarray, ks: np.ndarray,
                pidx: np.ndarray, item: int) -> str | None:
        """The first of the hash matches ``ks`` (text n-gram starts) whose tokens equal the benchmark
        item's tokens at ``self._pos[pidx]``, as text; None if all were hash collisions."""
        n = self.n
        item_toks = self._tokens_of_item(item)
        for k, p in zip(ks.tolist(), pidx.tolist(), strict=True):
            toks = [padded[s:e].tobytes().translate(ngrams._LOWER_TABLE)
                    for s, e in zip(starts[k : k + n].tolist(), ends[k : k + n].tolist(), strict=True)]
            tp = int(self._pos[p])
            if item_toks[tp : tp + n] == toks:
                return b" ".join(toks).decode("utf-8", "replace")
        return None

    def find(self, text: str | bytes | None) -> list[Hit]:
        """Benchmark items sharing at least one n-gram with ``text`` (empty list: clean), the item
        with the most matching n-grams first; ``ngram`` is the first match in the text."""
        if not text:
            return []
        data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
        buf = np.frombuffer(data, dtype=np.uint8)
        return self._scan(buf, np.array([0, len(data)], dtype=np.int64)).get(0, [])

    def find_array(self, column: pa.Array | pa.ChunkedArray) -> dict[int, list[Hit]]:
        """Hits per row index of a string column (null rows count as empty), zero-copy on Arrow buffers."""
        if isinstance(column, pa.ChunkedArray):
            out: dict[int, list[Hit]] = {}
            base = 0
            for chunk in column.chunks:
                for i, h in self.find_array(chunk).items():
                    out[base + i] = h
                base += len(chunk)
            return out
        buf, offsets = _arrow_bytes(column)
        return self._scan(buf, offsets)

    # ------------------------------------------------------------------ shard sets
    def filter_shard_set(
        self,
        in_path: str,
        out_path: str,
        removed_path: str,
        text_column: str = "content",
        config: Mapping[str, Any] | None = None,
        input_hashes: Iterable[str] = (),
        batch_size: int = shards.DEFAULT_ROW_GROUP_ROWS,
        max_rows: int | None = None,
        invalid_text: str | None = None,
        executor: Any = None,
    ) -> FilterStats:
        """Stream ``in_path`` (a shard set or a folder/file of Parquet), writing rows without any
        benchmark n-gram to ``out_path`` (same schema: extra columns pass through) and one row per
        removed input row to ``removed_path`` (``id``, ``benchmark``, ``task_id``, ``ngram``...).

        One task per input file runs on ``executor`` (corpus.executor); the index travels to
        each worker once as shared state, and the bytes do not depend on the executor."""
        t0 = time.perf_counter()
        files = shards.list_parquet_inputs(in_path)
        for f in files:  # every input's columns are checked before any work starts
            _check_columns(f, shards.parquet_file_schema(f), text_column)
        schema = safety.text_schema(shards.parquet_file_schema(files[0]), [text_column])
        stats = FilterStats()

        def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
            for r in results:
                stats.merge(r["stats"])
            stats.seconds = time.perf_counter() - t0
            return {"decontam": stats.as_dict() | {"max_rows": max_rows, "input_files": len(files),
                                                   "fingerprint": self.fingerprint}}

        policy = invalid_text or safety.default_policy()
        stagerun.run_split_stage(
            in_path, files, {"kept": (out_path, schema), "removed": (removed_path, REMOVED_SCHEMA)},
            lambda t: _DecontamShardTask(text_column, t["kept"], t["removed"], batch_size, policy),
            config=self.config_for(config, text_column), input_hashes=list(input_hashes), max_rows=max_rows,
            executor=executor, shared=self, passthrough=(safety.InvalidTextError, DecontamError),
            summarize=summarize)
        return stats

    def config_for(self, config: Mapping[str, Any] | None, text_column: str) -> dict[str, Any]:
        """The config dict ``filter_shard_set`` hashes into the manifests (for ``shards.up_to_date``)."""
        return dict(config or {}) | {"decontam": self.fingerprint, "text_column": text_column}

    def _filter_batch(self, batch: pa.RecordBatch, text_column: str, kept_w: shards.PartWriter,
                      rem_w: shards.PartWriter, stats: FilterStats, where: str, row_base: int = 0) -> None:
        col = batch.column(text_column)
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            raise DecontamError(f"{where}: column {text_column!r} has type {col.type}, expected a string column")
        stats.rows_in += batch.num_rows
        lengths = pc.binary_length(col)
        stats.bytes_in += int(pc.sum(lengths).as_py() or 0)
        stats.empty_or_null += int(pc.sum(pc.fill_null(pc.equal(lengths, 0), True)).as_py() or 0)
        hits = self.find_array(col)
        if not hits:
            kept_w.write_batch(batch)
            stats.rows_kept += batch.num_rows
            return
        mask = np.ones(batch.num_rows, dtype=bool)
        mask[list(hits)] = False
        kept = batch.filter(pa.array(mask))
        kept_w.write_batch(kept)
        stats.rows_kept += kept.num_rows
        ids = batch.column("id").to_pylist() if "id" in batch.schema.names else [None] * batch.num_rows
        rows = []
        for i in sorted(hits):
            h = hits[i]
            rows.append({
                "id": ids[i] if ids[i] is not None else f"row-{row_base + stats.rows_in - batch.num_rows + i}",
                "benchmark": h[0].benchmark,
                "task_id": h[0].task_id,
                "ngram": h[0].ngram,
                "n_tasks": len(h),
                "tasks": [f"{x.benchmark}:{x.task_id}" for x in h],
            })
            for b in sorted({x.benchmark for x in h}):
                stats.removed_per_benchmark[b] = stats.removed_per_benchmark.get(b, 0) + 1
            for x in h:
                stats._tasks.setdefault(x.benchmark, set()).add(x.task_id)
        stats.tasks_hit = {b: len(t) for b, t in sorted(stats._tasks.items())}
        rem_w.write_rows(rows)
        stats.rows_removed += len(rows)
        room = MAX_EXAMPLES - len(stats.examples)
        stats.examples.extend({k: r[k] for k in ("id", "benchmark", "task_id", "ngram")} for r in rows[:max(room, 0)])


def _ranked(hits: dict[tuple[str, str], list]) -> list[Hit]:
    """Hits ordered by how many n-gram positions matched (most first), then by name."""
    order = sorted(hits.items(), key=lambda kv: (-len(kv[1][1]), kv[0]))
    return [Hit(b, t, entry[0]) for (b, t), entry in order]


def _prepare_window(buf: np.ndarray, offsets: np.ndarray, w: ngrams.Window) -> tuple[np.ndarray, np.ndarray]:
    """The window's bytes with separators between documents, and each document's start in them."""
    doc_starts = offsets[w.first_doc : w.last_doc] - w.lo
    if w.last_doc - w.first_doc == 1:
        doc_starts = doc_starts[:1] * 0
    padded = ngrams.prepare(buf[w.lo : w.hi], doc_starts)
    return padded, doc_starts + np.arange(1, doc_starts.size + 1)


def _arrow_bytes(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(bytes, int64 offsets rebased to 0) of a string array; nulls become empty strings."""
    if column.null_count:
        column = pc.fill_null(column, "")
    if pa.types.is_string(column.type):
        off_dtype = np.int32
    elif pa.types.is_large_string(column.type):
        off_dtype = np.int64
    else:
        raise DecontamError(f"expected a string column, got {column.type}")
    n = len(column)
    bufs = column.buffers()
    offsets = np.frombuffer(bufs[1], dtype=off_dtype)[column.offset : column.offset + n + 1].astype(np.int64)
    if bufs[2] is None or n == 0:
        return np.empty(0, dtype=np.uint8), np.zeros(n + 1, dtype=np.int64)
    data = np.frombuffer(bufs[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return data, offsets - offsets[0]


@dataclass(frozen=True)
class _DecontamShardTask:
    """Decontaminate one input file into its own kept and removed parts (runs on any worker;
    the Decontaminator arrives once per worker as the executor's shared state)."""

    text_column: str
    kept: shards.PartTarget
    removed: shards.PartTarget
    batch_size: int
    policy: str

    def __call__(self, job: stagerun.ShardJob, d: Decontaminator) -> dict[str, Any]:
        stats = FilterStats()
        check = safety.TextCheck(self.policy)
        with stagerun.part_writers(kept=self.kept.writer(job.index), removed=self.removed.writer(job.index)) as w:
            for batch in stagerun.job_batches(job, self.batch_size, [self.text_column], check):
                d._filter_batch(batch, self.text_column, w["kept"], w["removed"], stats, job.file, job.row_offset)
            parts = {name: pw.finish() for name, pw in w.items()}
        stats.skipped, stats.skipped_examples = dict(check.skipped), list(check.examples)
        return {"parts": parts, "stats": stats.shard_dict()}


def _check_columns(path: str, schema: pa.Schema, text_column: str) -> None:
    if text_column not in schema.names:
        raise DecontamError(
            f"{path}: no text column {text_column!r} (columns: {schema.names}); "
            "pass the right column (code rows: 'content', text rows: 'text')"
        )

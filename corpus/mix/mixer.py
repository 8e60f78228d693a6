"""Build the pre-training mixture: seeded up/down-sampling of each source to its token target.

Output rows (``MIX_SCHEMA``), one per emitted document copy:

- ``id``: unique per row: the upstream row id, suffixed ``~{epoch}`` for repeated copies;
- ``doc_id``: the upstream row id (the same for every copy; used for train/val splits);
- ``source``: ``code`` | ``synthetic`` | ``text_code`` | ``general`` | ``math``;
- ``language``: programming language for code rows, null for text;
- ``repo``, ``path``: repository and file path for code rows (``path`` holds the URL for text);
- ``text``: the document content;
- ``n_tokens``: token count used for budgeting: the byte proxy (see :mod:`corpus.mix.budget`)
  or, when a counting tokenizer is configured, its exact count;
- ``epoch``: 0 for the first copy of a document, 1.. for up-sampled repeats.

Two streaming passes over the inputs: the first reads only ids and sizes (to plan), the second
re-reads the selected rows and writes them. Per source the plan takes ``floor(target/available)``
full epochs plus a seeded subset (documents ranked by ``xxh64(seed, source, id)``) whose tokens
come closest to the remainder, so each source lands within one document of its target. Output
interleaves the input streams by progress toward their targets, so any prefix of the mixture
has roughly the target ratios.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from corpus import shards
from corpus.mix.budget import SOURCES, Shares, effective_shares, plan_budget, proxy_tokens

MIX_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("language", pa.string()),
        pa.field("repo", pa.string()),
        pa.field("path", pa.string()),
        pa.field("text", pa.large_string()),
        pa.field("n_tokens", pa.int64()),
        pa.field("epoch", pa.int32()),
    ]
)

CODE_SOURCES = {"code", "synthetic"}


@dataclass(frozen=True)
class MixInput:
    """One committed upstream shard set (one partition of one source)."""

    source: str
    path: str
    partition: str = shards.ALL_PARTITIONS


@dataclass
class _Scanned:
    inp: MixInput
    keys: np.ndarray  # uint64 seeded ranks
    tokens: np.ndarray  # int64 proxy tokens, 0 = skipped row
    reps: np.ndarray | None = None


@dataclass
class MixReport:
    """Everything the asset shows: plan, notes, per-source and per-language accounting."""

    total_target: int = 0
    targets: dict[str, int] = field(default_factory=dict)
    shares: dict[str, float] = field(default_factory=dict)
    available_tokens: dict[str, int] = field(default_factory=dict)
    available_docs: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    docs: dict[str, int] = field(default_factory=dict)
    unique_docs: dict[str, int] = field(default_factory=dict)
    tokens_by_language: dict[tuple[str, str], int] = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    inputs: int = 0
    rows: int = 0

    def actual_shares(self) -> dict[str, float]:
        tot = sum(self.tokens.values())
        return {s: (t / tot if tot else 0.0) for s, t in self.tokens.items()}


def _text_column(path: str) -> str:
    names = shards.read_schema(path).names
    for c in ("content", "text"):
        if c in names:
            return c
    raise shards.ShardSetError(f"{path}: has neither a 'content' nor a 'text' column (columns: {names})")


TokenCounter = Callable[[list[str]], list[int]]


def _valid_tokens(batch: pa.RecordBatch, text_col: str, counter: TokenCounter | None = None
                  ) -> tuple[np.ndarray, dict[str, int]]:
    """Tokens per row (proxy, or ``counter``'s exact counts) with 0 for rows that cannot be
    used, and the skip reasons."""
    text = batch.column(text_col)
    ids = batch.column("id")
    if counter is None:
        tokens = proxy_tokens(text).to_numpy(zero_copy_only=False).astype(np.int64)
    else:
        tokens = np.maximum(np.asarray(counter([t or "" for t in text.to_pylist()]), dtype=np.int64), 1)
    empty = pc.fill_null(pc.equal(pc.binary_length(pc.cast(text, pa.large_binary())), 0), True)
    no_id = pc.fill_null(pc.equal(pc.utf8_length(ids), 0), True)
    empty_np = empty.to_numpy(zero_copy_only=False)
    no_id_np = no_id.to_numpy(zero_copy_only=False) & ~empty_np
    tokens[empty_np | no_id_np] = 0
    return tokens, {"empty document": int(empty_np.sum()), "missing id": int(no_id_np.sum())}


def _batches(inp: MixInput, columns: list[str], max_docs: int) -> Iterator[pa.RecordBatch]:
    seen = 0
    for b in shards.iter_batches(inp.path, columns=columns):
        if max_docs and seen + b.num_rows > max_docs:
            b = b.slice(0, max_docs - seen)
        if b.num_rows:
            yield b
        seen += b.num_rows
        if max_docs and seen >= max_docs:
            return


def _scan(inp: MixInput, seed: int, max_docs: int, report: MixReport, counter: TokenCounter | None) -> _Scanned:
    col = _text_column(inp.path)
    keys, toks = [], []
    for b in _batches(inp, ["id", col], max_docs):
        t, skips = _valid_tokens(b, col, counter)
        report.skipped.update({f"{inp.source}: {k}": v for k, v in skips.items() if v})
        ids = b.column("id").to_pylist()
        keys.append(np.fromiter(
            (xxhash.xxh64_intdigest(f"{seed}\x00{inp.source}\x00{i}") for i in ids), dtype=np.uint64, count=len(ids)
        ))
        toks.append(t)
    if not keys:
        return _Scanned(inp, np.zeros(0, np.uint64), np.zeros(0, np.int64))
    return _Scanned(inp, np.concatenate(keys), np.concatenate(toks))


def _select(scans: Sequence[_Scanned], target: int) -> None:
    """Set ``reps`` (copies per row) so the source's tokens come closest to ``target``."""
    tokens = np.concatenate([s.tokens for s in scans])
    keys = np.concatenate([s.keys for s in scans])
    avail = int(tokens.sum())
    reps = np.zeros(len(tokens), dtype=np.int32)
    if avail > 0:
        full, rest = divmod(target, avail)
        reps[tokens > 0] = full
        order = np.lexsort((np.arange(len(keys)), keys))
        order = order[tokens[order] > 0]
        reps[order[_fill(tokens[order], rest)]] += 1
    off = 0
    for s in scans:
        s.reps = reps[off : off + len(s.tokens)]
        off += len(s.tokens)


def _fill(sizes: np.ndarray, goal: int) -> np.ndarray:
    """Positions (in seeded order) whose sizes sum closest to ``goal``: the seeded prefix that
    fits, then first-fit over the rest, then one more document if that lands closer."""
    cum = np.cumsum(sizes)
    k = int(np.searchsorted(cum, goal, side="right"))  # sizes[:k] sum to <= goal
    picked = list(range(k))
    gap = goal - (int(cum[k - 1]) if k else 0)
    overshoot = None
    for j in range(k, len(sizes)):
        if gap == 0:
            break
        s = int(sizes[j])
        if s <= gap:
            picked.append(j)
            gap -= s
        elif overshoot is None or s < sizes[overshoot]:
            overshoot = j
    if gap and overshoot is not None and int(sizes[overshoot]) - gap < gap:
        picked.append(overshoot)
    return np.asarray(sorted(picked), dtype=np.int64)


def _stream(sc: _Scanned, max_docs: int) -> Iterator[pa.Table]:
    """Selected rows of one input as MIX_SCHEMA tables, epoch by epoch."""
    assert sc.reps is not None
    if not len(sc.reps) or sc.reps.max() == 0:
        return
    col = _text_column(sc.inp.path)
    names = shards.read_schema(sc.inp.path).names
    is_code = sc.inp.source in CODE_SOURCES
    cols = ["id", col] + [c for c in (("repo", "path", "language") if is_code else ("url",)) if c in names]
    for epoch in range(int(sc.reps.max())):
        off = 0
        for b in _batches(sc.inp, cols, max_docs):
            r = sc.reps[off : off + b.num_rows]
            off += b.num_rows
            idx = np.nonzero(r > epoch)[0]
            if not len(idx):
                continue
            t = pa.Table.from_batches([b]).take(pa.array(idx))
            n = t.num_rows
            ids = t.column("id")
            tok = sc.tokens[off - b.num_rows + idx]

            def col_or_null(name: str, t: pa.Table = t, n: int = n) -> pa.Array:
                return t.column(name) if name in t.column_names else pa.nulls(n, pa.string())

            yield pa.table(
                {
                    "id": ids if epoch == 0 else pc.binary_join_element_wise(ids, pa.scalar(f"~{epoch}"), ""),
                    "doc_id": ids,
                    "source": pa.array([sc.inp.source] * n, pa.string()),
                    "language": col_or_null("language") if is_code else pa.nulls(n, pa.string()),
                    "repo": col_or_null("repo") if is_code else pa.nulls(n, pa.string()),
                    "path": col_or_null("path") if is_code else col_or_null("url"),
                    "text": t.column(col),
                    "n_tokens": pa.array(tok, pa.int64()),
                    "epoch": pa.array(np.full(n, epoch, np.int32)),
                },
                schema=MIX_SCHEMA,
            )


def plan_and_write(
    inputs: Sequence[MixInput],
    writer: shards.ShardSetWriter,
    *,
    shares: Shares = Shares(),
    total_tokens: int = 0,
    max_epochs: float = 4.0,
    seed: int = 0,
    max_docs_per_input: int = 0,
    count_tokens: TokenCounter | None = None,
) -> MixReport:
    """Scan ``inputs``, plan per-source targets, and stream the mixture into ``writer``.

    ``count_tokens`` (texts -> token counts, e.g. a FastEncoder over an existing tokenizer)
    replaces the byte proxy when exact budgeting under a known tokenizer is wanted.
    """
    report = MixReport(inputs=len(inputs))
    for inp in inputs:
        if inp.source not in SOURCES:
            raise ValueError(f"unknown mixture source {inp.source!r} for {inp.path}; expected one of {list(SOURCES)}")
    scans = [_scan(inp, seed, max_docs_per_input, report, count_tokens) for inp in inputs]
    by_source: dict[str, list[_Scanned]] = defaultdict(list)
    for s in scans:
        by_source[s.inp.source].append(s)
    report.available_tokens = {s: int(sum(x.tokens.sum() for x in by_source.get(s, []))) for s in SOURCES}
    report.available_docs = {s: int(sum((x.tokens > 0).sum() for x in by_source.get(s, []))) for s in SOURCES}
    eff, notes = effective_shares(shares.per_source(), report.available_tokens)
    report.notes += notes
    total, targets, notes = plan_budget(eff, report.available_tokens, total_tokens, max_epochs)
    report.notes += notes
    report.total_target, report.targets, report.shares = total, targets, eff
    for src, group in by_source.items():
        _select(group, targets.get(src, 0))
    # Interleave the streams by progress toward their own targets (deterministic).
    streams = []
    for i, sc in enumerate(scans):
        assert sc.reps is not None
        goal = int((sc.reps.astype(np.int64) * sc.tokens).sum())
        if goal:
            streams.append((i, goal, _stream(sc, max_docs_per_input)))
    heap = [(0.0, i) for i, _, _ in streams]
    meta = {i: (goal, it) for i, goal, it in streams}
    done_tokens: dict[int, int] = defaultdict(int)
    unique: dict[str, int] = defaultdict(int)
    heapq.heapify(heap)
    while heap:
        _, i = heapq.heappop(heap)
        goal, it = meta[i]
        chunk = next(it, None)
        if chunk is None:
            continue
        writer.write_batch(chunk)
        ntok = int(pc.sum(chunk.column("n_tokens")).as_py() or 0)
        done_tokens[i] += ntok
        src = scans[i].inp.source
        report.tokens[src] = report.tokens.get(src, 0) + ntok
        report.docs[src] = report.docs.get(src, 0) + chunk.num_rows
        unique[src] += int(pc.sum(pc.equal(chunk.column("epoch"), 0)).as_py() or 0)
        langs = chunk.column("language").to_pylist()
        for lang, n in zip(langs, chunk.column("n_tokens").to_pylist()):
            key = (src, lang or "-")
            report.tokens_by_language[key] = report.tokens_by_language.get(key, 0) + n
        heapq.heappush(heap, (done_tokens[i] / goal, i))
    report.unique_docs = dict(unique)
    report.rows = sum(report.docs.values())
    return report


def discover_inputs(root: str, assets: Mapping[str, str] | None = None) -> tuple[list[MixInput], dict[str, str]]:
    """Every committed partition of every upstream asset, and a status note per missing source."""
    assets = assets or {s: a for s, (_, a) in SOURCES.items()}
    inputs: list[MixInput] = []
    status: dict[str, str] = {}
    for source, asset in assets.items():
        keys = shards.committed_partitions(root, asset)
        if not keys:
            status[source] = f"missing: no committed partition of {asset!r}"
            continue
        for k in keys:
            inputs.append(MixInput(source, shards.shard_set_path(root, asset, k), k))
        status[source] = f"{len(keys)} partition(s) of {asset!r}"
    return inputs, status

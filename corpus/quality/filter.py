"""Apply a RuleSet to code rows: vectorized metrics per record batch, streaming by shard.

Each batch is evaluated once for every rule that applies to its language(s); a row is dropped by
the first rule (file order) that fires, and every rule that fired is recorded, so one run shows
both what was removed and what each rule alone would remove. Character-class and line metrics
come from numpy over the Arrow buffers (``bytestats``), regex metrics from polars expressions,
and the parser rule (tree-sitter) runs last, only on rows the cheap rules kept.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from corpus import safety, shards, stagerun
from corpus.quality.bytestats import BYTE_METRICS, byte_metrics
from corpus.quality.metrics import METRICS, parse_errors
from corpus.quality.rules import Rule, RuleSet

EMPTY_RULE = "empty_content"
# Metrics evaluated only on rows that no cheaper rule dropped (their "fired" counts cover those).
EXPENSIVE_METRICS = {"python_parse_error"}

DROPPED_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("rule", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("language", pa.string()),
        pa.field("bytes", pa.int64()),
        pa.field("fired", pa.list_(pa.string())),
    ]
)


class QualityInputError(ValueError):
    """Input rows the filter cannot judge (missing column, wrong type); names the file."""


EXAMPLES_PER_RULE = 3  # first dropped rows kept per rule, for review in metadata


@dataclass
class QualityStats:
    rows_in: int = 0
    rows_kept: int = 0
    bytes_in: int = 0
    bytes_kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # first rule that fired -> rows
    dropped_bytes: dict[str, int] = field(default_factory=dict)
    fired: dict[str, int] = field(default_factory=dict)  # every rule that fired -> rows
    per_language: dict[str, list[int]] = field(default_factory=dict)  # language -> [in, kept]
    examples: dict[str, list[list[Any]]] = field(default_factory=dict)  # rule -> first [id, value] pairs
    seconds: float = 0.0
    skipped: dict[str, int] = field(default_factory=dict)  # rows not evaluated (invalid_utf8_content)
    skipped_examples: list[str] = field(default_factory=list)  # "file row N column c"

    @property
    def rows_dropped(self) -> int:
        return self.rows_in - self.rows_kept

    def kept_fraction(self) -> dict[str, float]:
        return {k: (v[1] / v[0] if v[0] else 0.0) for k, v in sorted(self.per_language.items())}

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__) | {"rows_dropped": self.rows_dropped}

    def merge(self, other: Mapping[str, Any]) -> None:
        """Add one shard's stats (``as_dict`` form); merged in input order this equals the stats
        of one sequential pass (same sums, same first examples, same key order)."""
        for k in ("rows_in", "rows_kept", "bytes_in", "bytes_kept"):
            setattr(self, k, getattr(self, k) + int(other[k]))
        for k in ("dropped", "dropped_bytes", "fired", "skipped"):
            mine = getattr(self, k)
            for key, v in other[k].items():
                mine[key] = mine.get(key, 0) + v
        for lang, (n_in, n_kept) in other["per_language"].items():
            entry = self.per_language.setdefault(lang, [0, 0])
            entry[0] += n_in
            entry[1] += n_kept
        for rule, ex in other["examples"].items():
            mine_ex = self.examples.setdefault(rule, [])
            mine_ex.extend(list(e) for e in ex[: max(0, EXAMPLES_PER_RULE - len(mine_ex))])
        self.skipped_examples.extend(other["skipped_examples"][: max(0, 20 - len(self.skipped_examples))])


class QualityFilter:
    """Evaluates a RuleSet on Arrow batches of code rows (``content`` + ``language`` + ``id``)."""

    def __init__(self, rules: RuleSet, content_column: str = "content") -> None:
        self.rules = rules
        self.content_column = content_column

    def evaluate(self, batch: pa.RecordBatch | pa.Table, language: str) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """(keep mask, dropped rows) for a batch; rows are judged by their ``language`` column
        when present (null: ``language``), else all by ``language``."""
        n = batch.num_rows
        keep = np.ones(n, dtype=bool)
        dropped: list[dict[str, Any]] = []
        if n == 0:
            return keep, dropped
        content = batch.column(self.content_column)
        if "language" in batch.schema.names:
            langs = pc.fill_null(batch.column("language"), language).to_numpy(zero_copy_only=False)
            langs = np.char.lower(langs.astype(str))
        else:
            langs = np.full(n, language.lower())
        ids = batch.column("id").to_pylist() if "id" in batch.schema.names else [f"row-{i}" for i in range(n)]
        nbytes = pc.fill_null(pc.binary_length(content), 0).to_numpy(zero_copy_only=False)
        for lang in np.unique(langs).tolist():
            rows = np.flatnonzero(langs == lang)
            sub = content if rows.size == n else content.take(pa.array(rows))
            first, values, fired = self._judge(sub, lang)
            for j, i in enumerate(rows.tolist()):
                if first[j] is not None:
                    keep[i] = False
                    dropped.append({
                        "id": ids[i],
                        "rule": first[j],
                        "value": values[j],
                        "language": lang,
                        "bytes": int(nbytes[i]),
                        "fired": fired[j],
                    })
        return keep, dropped

    def _judge(self, content: pa.Array | pa.ChunkedArray, lang: str
               ) -> tuple[list[str | None], list[float | None], list[list[str]]]:
        rules = self.rules.for_language(lang)
        if isinstance(content, pa.ChunkedArray):
            content = content.combine_chunks()
        if pa.types.is_string(content.type):
            content = content.cast(pa.large_string())
        needed = {r.metric for r in rules}
        cols, needs_regex = byte_metrics(content)
        chars = cols["chars"]
        exact = {m for m in BYTE_METRICS if m not in ("alnum_fraction", "alpha_fraction", "chars_per_token")}
        regex_metrics = sorted(m for m in needed if m in METRICS and m not in exact)
        ascii_only = [m for m in regex_metrics if m in BYTE_METRICS]  # from bytes unless the row is non-ASCII
        full = [m for m in regex_metrics if m not in BYTE_METRICS]
        if full:
            table = _metric_frame(content, full, lang)
            cols.update({m: table.get_column(m).to_numpy() for m in full})
        if ascii_only and needs_regex.any():
            rows = np.flatnonzero(needs_regex)
            table = _metric_frame(content.take(pa.array(rows)), ascii_only, lang)
            for m in ascii_only:
                cols[m] = cols[m].copy()
                cols[m][rows] = table.get_column(m).to_numpy()
        n = len(content)
        empty = chars == 0
        first: list[str | None] = [EMPTY_RULE if e else None for e in empty.tolist()]
        values: list[float | None] = [0.0 if e else None for e in empty.tolist()]
        fired: list[list[str]] = [[EMPTY_RULE] if e else [] for e in empty.tolist()]
        for rule in sorted(rules, key=lambda r: r.metric in EXPENSIVE_METRICS):
            if rule.metric in EXPENSIVE_METRICS and rule.metric not in cols:
                # Parsing costs ~100x a regex pass: judge only rows no cheap rule dropped.
                todo = np.flatnonzero(np.array([f is None for f in first], dtype=bool))
                vals = np.zeros(n, dtype=np.float64)
                if todo.size:
                    sub = content.take(pa.array(todo)).to_pylist()
                    vals[todo] = np.asarray(parse_errors(sub), dtype=np.float64)
                cols[rule.metric] = vals
            v = cols[rule.metric]
            hit = _fires(rule, lang, v) & (chars >= rule.min_chars) & ~empty
            for i in np.flatnonzero(hit).tolist():
                fired[i].append(rule.name)
                if first[i] is None:
                    first[i] = rule.name
                    values[i] = float(v[i])
        assert len(first) == n
        return first, values, fired

    def filter_shard_set(
        self,
        in_path: str,
        out_path: str,
        dropped_path: str,
        language: str,
        config: Mapping[str, Any] | None = None,
        input_hashes: Iterable[str] = (),
        batch_size: int = 1000,
        max_rows: int | None = None,
        invalid_text: str | None = None,
        executor: Any = None,
    ) -> QualityStats:
        """Stream ``in_path`` (shard set or Parquet folder/file) into kept rows at ``out_path``
        (input schema, extra columns passed through) and ``dropped_path`` (id, rule, value...),
        committed as one unit. Content that is not UTF-8 is skipped and counted, or fails the run
        (``invalid_text``); binary content columns are read as UTF-8 text.

        One task per input file runs on ``executor`` (corpus.executor; default: this process);
        the output is the same bytes whatever the executor and worker count, and a re-run after
        a kill finishes only the files that were not done."""
        t0 = time.perf_counter()
        files = shards.list_parquet_inputs(in_path)
        col = self.content_column
        for f in files:  # every input's columns are checked before any work starts
            _check_content_column(f, col)
        schema = safety.text_schema(shards.parquet_file_schema(files[0]), [col])
        stats = QualityStats()

        def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
            for r in results:
                stats.merge(r["stats"])
            stats.seconds = time.perf_counter() - t0
            return {"quality": stats.as_dict() | {"max_rows": max_rows, "input_files": len(files),
                                                  "rules": self.rules.fingerprint, "rules_path": self.rules.path}}

        policy = invalid_text or safety.default_policy()
        stagerun.run_split_stage(
            in_path, files, {"kept": (out_path, schema), "dropped": (dropped_path, DROPPED_SCHEMA)},
            lambda t: _QualityShardTask(language, t["kept"], t["dropped"], batch_size, policy),
            config=self.config_for(config, language), input_hashes=list(input_hashes), max_rows=max_rows,
            executor=executor, shared=self, passthrough=(safety.InvalidTextError, QualityInputError),
            summarize=summarize)
        return stats

    def config_for(self, config: Mapping[str, Any] | None, language: str) -> dict[str, Any]:
        """The config dict ``filter_shard_set`` hashes into the manifests (for ``shards.up_to_date``)."""
        return dict(config or {}) | {"rules": self.rules.fingerprint, "language": language,
                                     "content_column": self.content_column}

    def _filter_batch(self, batch: pa.RecordBatch, language: str, kept_w: shards.PartWriter,
                      drop_w: shards.PartWriter, stats: QualityStats) -> None:
        keep, dropped = self.evaluate(batch, language)
        content = batch.column(self.content_column)
        nbytes = pc.fill_null(pc.binary_length(content), 0).to_numpy(zero_copy_only=False)
        stats.rows_in += batch.num_rows
        stats.bytes_in += int(nbytes.sum())
        stats.rows_kept += int(keep.sum())
        stats.bytes_kept += int(nbytes[keep].sum())
        kept_w.write_batch(batch.filter(pa.array(keep)) if not keep.all() else batch)
        drop_w.write_rows(dropped)
        if "language" in batch.schema.names:
            langs = pc.fill_null(batch.column("language"), language).to_pylist()
        else:
            langs = [language] * batch.num_rows
        for lang, k in zip(langs, keep.tolist(), strict=True):
            entry = stats.per_language.setdefault(str(lang).lower(), [0, 0])
            entry[0] += 1
            entry[1] += int(k)
        for d in dropped:
            ex = stats.examples.setdefault(d["rule"], [])
            if len(ex) < EXAMPLES_PER_RULE:
                ex.append([d["id"], d["value"]])
            stats.dropped[d["rule"]] = stats.dropped.get(d["rule"], 0) + 1
            stats.dropped_bytes[d["rule"]] = stats.dropped_bytes.get(d["rule"], 0) + d["bytes"]
            for r in d["fired"]:
                stats.fired[r] = stats.fired.get(r, 0) + 1


def _check_content_column(f: str, col: str) -> None:
    fschema = shards.parquet_file_schema(f)
    if col not in fschema.names:
        raise QualityInputError(f"{f}: no column {col!r} (columns: {fschema.names}); quality filters need code rows")
    ctype = fschema.field(col).type
    if not (pa.types.is_string(ctype) or pa.types.is_large_string(ctype)
            or pa.types.is_binary(ctype) or pa.types.is_large_binary(ctype)):
        raise QualityInputError(f"{f}: column {col!r} has type {ctype}, expected string (or UTF-8 binary)")


@dataclass(frozen=True)
class _QualityShardTask:
    """Filter one input file into its own kept and dropped parts (runs on any worker; the
    QualityFilter arrives as the executor's shared state)."""

    language: str
    kept: shards.PartTarget
    dropped: shards.PartTarget
    batch_size: int
    policy: str

    def __call__(self, job: stagerun.ShardJob, filt: QualityFilter) -> dict[str, Any]:
        stats = QualityStats()
        check = safety.TextCheck(self.policy)
        with stagerun.part_writers(kept=self.kept.writer(job.index), dropped=self.dropped.writer(job.index)) as w:
            for batch in stagerun.job_batches(job, self.batch_size, [filt.content_column], check):
                filt._filter_batch(batch, self.language, w["kept"], w["dropped"], stats)
            parts = {name: pw.finish() for name, pw in w.items()}
        stats.skipped, stats.skipped_examples = dict(check.skipped), list(check.examples)
        return {"parts": parts, "stats": stats.as_dict()}


def _metric_frame(content: pa.Array, metrics: list[str], lang: str) -> pl.DataFrame:
    """Regex-based metrics (polars, vectorized in Rust); common subexpressions computed once."""
    df = pl.DataFrame({"c": pl.Series("c", content)})
    c = pl.col("c")
    return df.lazy().select([METRICS[m](c, lang).alias(m) for m in metrics]).collect()


def _fires(rule: Rule, lang: str, v: np.ndarray) -> np.ndarray:
    b = rule.bounds_for(lang)
    if b.is_true:
        return v >= 0.5
    hit = np.zeros(v.shape[0], dtype=bool)
    if b.above is not None:
        hit |= v > b.above
    if b.below is not None:
        hit |= v < b.below
    return hit

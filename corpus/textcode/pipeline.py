"""Shard-set level operations of the text path, shared by the Dagster assets and the CLI.

Each function streams its inputs, writes one shard set atomically with ShardSetWriter and
returns the manifest plus the stage's statistics.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import xxhash

from corpus import safety, shards
from corpus.schemas import extend_schema, text_row_id
from corpus.textcode import classifier as clf_mod
from corpus.textcode.codestrip import strip_code
from corpus.textcode.dedup import ExactDedup, text_fingerprint
from corpus.textcode.ingest import Doc, ReadOptions, iter_specs
from corpus.textcode.langid import LanguageIdentifier, make_language_identifier
from corpus.textcode.mathtext import math_score
from corpus.textcode.skips import SkipCounter
from corpus.textcode.staged import (
    SEED_SCHEMA,
    RecallConfig,
    RecallStats,
    StageStats,
    filter_stage,
    recall_examples,
    score_split,
    seed_examples,
    stage_schema,
)
from corpus.textcode.webtext import WEB_TEXT_SCHEMA, IngestConfig, IngestStats, filter_docs, write_rows

MODEL_FILE = "model.bin"
EVAL_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("label", pa.int8()),
        pa.field("score", pa.float32()),
    ]
)
GENERAL_SCHEMA = extend_schema(WEB_TEXT_SCHEMA, pa.field("code_ratio", pa.float32()))
MATH_SCHEMA = extend_schema(WEB_TEXT_SCHEMA, pa.field("math_score", pa.float32()))


# --------------------------------------------------------------------------- ingest


def earlier_batch_keys(paths: Sequence[str]) -> ExactDedup:
    """An ExactDedup pre-loaded with the URLs and text hashes of committed web-text sets."""
    dedup = ExactDedup()
    for p in paths:
        for b in shards.iter_batches(p, columns=["url", "text_hash"]):
            dedup.seed(b.column("url").to_pylist(), b.column("text_hash").to_pylist())
    return dedup


def ingest(
    docs: Iterable[Doc],
    out_path: str,
    cfg: IngestConfig,
    skips: SkipCounter,
    *,
    config: Mapping[str, Any],
    input_hashes: Sequence[str] = (),
    dedup: ExactDedup | None = None,
    extra: Mapping[str, Any] | None = None,
    inputs: Sequence[str] = (),
) -> tuple[shards.Manifest, IngestStats]:
    """Filter + dedup documents into a WEB_TEXT_SCHEMA shard set (``inputs``: the source paths,
    which the output must not overlap). If every input file failed, nothing is committed."""
    stats = IngestStats()
    lid = make_language_identifier(cfg.lid_model_path)
    with shards.ShardSetWriter(out_path, WEB_TEXT_SCHEMA, config=config, input_hashes=input_hashes,
                               extra=dict(extra or {}), inputs=inputs) as w:
        write_rows(filter_docs(docs, cfg, skips, dedup, lid, stats), w)
        refuse_if_inputs_failed(stats, skips, out_path)
        w.extra.update(ingest_extra(stats, skips, lid.name) | {"empty_input": stats.docs_seen == 0})
    return shards.read_manifest(out_path), stats  # type: ignore[return-value]


# File-level reasons: the input could not be read at all (as opposed to documents filtered out).
FILE_FAILURES = ("corrupt_gzip", "corrupt_parquet", "no_warc_records", "not_a_warc_stream", "truncated_gzip",
                 "unreadable_file", "unsupported_file_type")


class InputsFailedError(ValueError):
    """No document could be read because every input file failed; the previous set is kept."""


def refuse_if_inputs_failed(stats: IngestStats, skips: SkipCounter, out_path: str) -> None:
    """Inputs that all failed must not replace a good set with an empty one."""
    failed = {r: skips[r] for r in FILE_FAILURES if skips[r]}
    if stats.docs_seen == 0 and failed:
        examples = "; ".join(f"{r}: {', '.join(skips.examples.get(r, []))}" for r in failed)
        raise InputsFailedError(
            f"{out_path}: no document could be read, every input failed ({examples}); the previous set "
            "is kept. Point the ingest at WARC/WET, JSONL or Parquet text files and re-run"
        )


def ingest_extra(stats: IngestStats, skips: SkipCounter, lid_name: str) -> dict[str, Any]:
    return {
        "docs_seen": stats.docs_seen,
        "kept": stats.kept,
        "chars": stats.chars,
        "languages": dict(stats.languages.most_common(20)),
        "sources": dict(stats.sources),
        "skips": skips.as_dict(),
        "lid": lid_name,
    }


# --------------------------------------------------------------------------- seed classifier


@dataclass
class SeedStats:
    positives: Counter[str] = field(default_factory=Counter)  # split -> count
    negatives: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0


def _split(doc_id: str, holdout_fraction: float, seed: int) -> str:
    return "holdout" if xxhash.xxh64_intdigest(doc_id.encode(), seed=seed) / 2**64 < holdout_fraction else "train"


def build_seed_examples(
    positives: Sequence[str],
    negatives: Sequence[str],
    out_path: str,
    skips: SkipCounter,
    *,
    holdout_fraction: float = 0.2,
    max_docs_per_class: int | None = None,
    min_chars: int = 200,
    seed: int = 0,
    opts: ReadOptions = ReadOptions(),
    config: Mapping[str, Any],
) -> tuple[shards.Manifest, SeedStats]:
    """Labelled seed table (SEED_SCHEMA, score = null) with a deterministic train/holdout
    split by id hash; exact duplicates (also across the two classes) are dropped."""
    if not positives or not negatives:
        raise ValueError("seed classifier needs at least one positive and one negative source")
    stats = SeedStats()
    seen = ExactDedup()

    def rows(specs: Sequence[str], label: int, counter: Counter[str]) -> Iterator[dict]:
        n = 0
        for doc in iter_specs(specs, skips, opts):
            if max_docs_per_class is not None and n >= max_docs_per_class:
                return
            if len(doc.text) < min_chars:
                skips.add("too_short", doc.url)
                continue
            if seen.check("", text_fingerprint(doc.text)):  # text only: URLs may repeat across sources
                stats.duplicates += 1
                skips.add("duplicate_text", doc.url)
                continue
            rid = text_row_id(doc.url, doc.text)
            sp = _split(rid, holdout_fraction, seed)
            counter[sp] += 1
            n += 1
            yield {"id": rid, "url": doc.url, "text": doc.text, "source": doc.source, "label": label,
                   "split": sp, "score": None}

    with shards.ShardSetWriter(out_path, SEED_SCHEMA, config=config,
                               inputs=safety.local_inputs([*positives, *negatives])) as w:
        write_rows(rows(positives, 1, stats.positives), w)
        write_rows(rows(negatives, 0, stats.negatives), w)
        w.extra.update({"positives": dict(stats.positives), "negatives": dict(stats.negatives),
                        "duplicates": stats.duplicates, "skips": skips.as_dict()})
        # Raised inside the writer block, so an unusable seed table is never committed.
        for cls, counter in (("positive", stats.positives), ("negative", stats.negatives)):
            if not counter.get("train") or not counter.get("holdout"):
                raise ValueError(
                    f"seed {cls} sources gave {dict(counter)} documents; need some in both the train and "
                    "holdout splits (add sources, lower min_chars or raise max_docs_per_class)"
                )
    return shards.read_manifest(out_path), stats  # type: ignore[return-value]


@dataclass
class TrainResult:
    manifest: shards.Manifest
    report: clf_mod.EvalReport
    train_examples: Counter[int]
    model_bytes: int


def train_and_write(
    examples: Iterable[tuple[str, int]],
    seed_path: str,
    out_path: str,
    params: clf_mod.TrainParams,
    *,
    threshold: float = 0.5,
    config: Mapping[str, Any],
    input_hashes: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train a model on ``examples``, evaluate it on the seed holdout split, and commit the
    eval table (EVAL_SCHEMA) with ``model.bin`` as a side file of the same shard set."""
    counts: Counter[int] = Counter()

    def counted() -> Iterator[tuple[str, int]]:
        for text, label in examples:
            counts[label] += 1
            yield text, label

    workdir = _workdir(out_path)
    model = clf_mod.train(counted(), params, workdir=workdir)
    scores, labels = score_split(seed_path, model, "holdout")
    report = clf_mod.evaluate(scores, labels, threshold)
    with shards.ShardSetWriter(out_path, EVAL_SCHEMA, config=config, input_hashes=input_hashes, inputs=[seed_path],
                               extra=dict(extra or {})) as w:
        ids, urls = [], []
        for b in shards.iter_batches(seed_path, columns=["id", "url", "split"]):
            for rid, url, sp in zip(*(b.column(c).to_pylist() for c in ("id", "url", "split"))):
                if sp == "holdout":
                    ids.append(rid)
                    urls.append(url)
        w.write_batch(pa.table({"id": ids, "url": urls, "label": pa.array(labels, pa.int8()),
                                "score": pa.array(scores, pa.float32())}, schema=EVAL_SCHEMA))
        _save_model(w, model)
        w.extra.update({"metrics": report.as_dict(), "params": params.as_dict(),
                        "train_examples": {"positive": counts[1], "negative": counts[0]}})
    manifest = shards.read_manifest(out_path)
    assert manifest is not None
    size = next(f["bytes"] for f in manifest.side_files if f["name"] == MODEL_FILE)
    return TrainResult(manifest, report, counts, size)


def _workdir(out_path: str) -> str | None:
    if "://" in out_path:
        return None
    parent = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(parent, exist_ok=True)
    return parent


def _save_model(w: shards.ShardSetWriter, model: clf_mod.TextCodeClassifier) -> None:
    try:
        clf_mod.save(model, w.side_file_path(MODEL_FILE))
    except shards.ShardSetError:
        with tempfile.TemporaryDirectory() as tmp:
            p = os.path.join(tmp, MODEL_FILE)
            clf_mod.save(model, p)
            with open(p, "rb") as fh:
                w.add_side_file(MODEL_FILE, fh.read())


def model_path(classifier_set: str) -> str:
    """The committed ``model.bin`` of a classifier shard set (local data roots)."""
    return shards.side_file(classifier_set, MODEL_FILE)


def retrain(
    pairs: Sequence[tuple[str, str]],
    seed_path: str,
    out_path: str,
    params: clf_mod.TrainParams,
    recall: RecallConfig,
    *,
    include_seed: bool = True,
    url_depth: int = 1,
    config: Mapping[str, Any],
    input_hashes: Sequence[str] = (),
) -> tuple[TrainResult, RecallStats]:
    """A classifier retrained on the previous stage's recall (+ seed train split)."""
    rstats = RecallStats()

    def examples() -> Iterator[tuple[str, int]]:
        if include_seed:
            yield from seed_examples(seed_path, "train")
        yield from recall_examples(pairs, recall, rstats, depth=url_depth)

    result = train_and_write(examples(), seed_path, out_path, params, config=config, input_hashes=input_hashes)
    return result, rstats


# --------------------------------------------------------------------------- stages


def run_stage(
    in_path: str,
    out_path: str,
    model_file: str,
    stage: int,
    threshold: float,
    *,
    config: Mapping[str, Any],
    input_hashes: Sequence[str] = (),
    max_tokens: int = 1024,
) -> tuple[shards.Manifest, StageStats]:
    """One hierarchical-filter stage over one batch: input columns + ``stage_<k>_score``."""
    model = clf_mod.TextCodeClassifier.load(model_file, max_tokens=max_tokens)
    schema = stage_schema(shards.read_schema(in_path), stage)
    with shards.ShardSetWriter(out_path, schema, config=config, input_hashes=input_hashes,
                               inputs=[in_path, model_file]) as w:
        stats = filter_stage(in_path, w, model, stage, threshold)
        w.extra.update({"stage": stage, "threshold": threshold, "docs_in": stats.docs_in, "kept": stats.kept,
                        "hist_all": stats.hist_all, "hist_kept": stats.hist_kept})
    return shards.read_manifest(out_path), stats  # type: ignore[return-value]


# --------------------------------------------------------------------------- math / general


@dataclass
class StripStats:
    docs: int = 0
    dropped_code_ratio: int = 0
    lines_removed: int = 0
    chars_removed: int = 0


def _filter_scored(scored: Iterable[tuple[Doc, float]], column: str, cfg: IngestConfig, skips: SkipCounter,
                   lid: LanguageIdentifier, stats: IngestStats) -> Iterator[dict]:
    """Rows of ``filter_docs`` over documents that each carry a value (code ratio, math score),
    the value added as ``column``: shared by general_text and math_text."""
    values: dict[str, float] = {}

    def docs() -> Iterator[Doc]:
        for doc, value in scored:
            values[doc.url] = value
            yield doc

    for row in filter_docs(docs(), cfg, skips, None, lid, stats):
        row[column] = values.pop(row["url"], 0.0)
        values.clear()
        yield row


def general_text(
    specs: Sequence[str],
    out_path: str,
    cfg: IngestConfig,
    skips: SkipCounter,
    *,
    max_code_ratio: float = 0.3,
    opts: ReadOptions = ReadOptions(),
    config: Mapping[str, Any],
) -> tuple[shards.Manifest, IngestStats, StripStats]:
    """General text with code removed (GENERAL_SCHEMA: + ``code_ratio`` of the original)."""
    stats, sstats = IngestStats(), StripStats()
    lid = make_language_identifier(cfg.lid_model_path)

    def stripped() -> Iterator[tuple[Doc, float]]:
        for doc in iter_specs(specs, skips, opts):
            sstats.docs += 1
            r = strip_code(doc.text, max_code_ratio)
            if r.text is None:
                sstats.dropped_code_ratio += 1
                skips.add("code_ratio_above_max", doc.url)
                continue
            sstats.lines_removed += r.removed_lines
            sstats.chars_removed += r.code_chars
            yield Doc(url=doc.url, text=r.text, source=doc.source), r.code_ratio

    with shards.ShardSetWriter(out_path, GENERAL_SCHEMA, config=config, inputs=safety.local_inputs(specs)) as w:
        write_rows(_filter_scored(stripped(), "code_ratio", cfg, skips, lid, stats), w)
        w.extra.update(ingest_extra(stats, skips, lid.name) | {"strip": sstats.__dict__.copy()})
    return shards.read_manifest(out_path), stats, sstats  # type: ignore[return-value]


def math_text(
    specs: Sequence[str],
    out_path: str,
    cfg: IngestConfig,
    skips: SkipCounter,
    *,
    min_math_score: float = 0.2,
    opts: ReadOptions = ReadOptions(),
    config: Mapping[str, Any],
) -> tuple[shards.Manifest, IngestStats, list[int]]:
    """Math text from configured sources, kept if its lexical math score passes
    (MATH_SCHEMA: + ``math_score``); returns the score histogram of all candidates."""
    from corpus.textcode.classifier import histogram

    stats = IngestStats()
    lid = make_language_identifier(cfg.lid_model_path)
    hist = [0] * 10

    def scored() -> Iterator[tuple[Doc, float]]:
        for doc in iter_specs(specs, skips, opts):
            s = math_score(doc.text)
            for i, c in enumerate(histogram([s])):
                hist[i] += c
            if s < min_math_score:
                skips.add("low_math_score", doc.url)
                continue
            yield doc, s

    with shards.ShardSetWriter(out_path, MATH_SCHEMA, config=config, inputs=safety.local_inputs(specs)) as w:
        write_rows(_filter_scored(scored(), "math_score", cfg, skips, lid, stats), w)
        w.extra.update(ingest_extra(stats, skips, lid.name) | {"math_score_hist": hist})
    return shards.read_manifest(out_path), stats, hist  # type: ignore[return-value]

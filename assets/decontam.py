"""Benchmark decontamination assets: 10-gram overlap with HumanEval, MBPP, GSM8K, MATH (+ extra files).

* ``code_clean`` + ``code_clean_removed`` per language, from ``code_quality`` (column ``content``);
* ``text_code_clean`` (+ ``_removed``) per text batch, from ``text_code`` (column ``text``);
* ``math_clean`` / ``general_clean`` (+ ``_removed``), unpartitioned, from ``math_text`` / ``general_text``.

Each ``*_clean`` set holds the input rows (all columns) that share no benchmark n-gram; the
``*_removed`` set has one row per removed input row (``id``, ``benchmark``, ``task_id``,
``ngram``). Two blocking checks guard every clean set: the counts add up (kept + removed = input)
and an independent plain-Python re-check of a sample of kept rows finds no benchmark n-gram.
"""


import functools
from collections.abc import Sequence

import dagster as dg
from pydantic import Field

from assets.common import counts_table, manifest_metadata, md_table, report_sets, upstream_hashes
from assets.partitions import language_partitions, text_batch_partitions
from assets.resources import CorpusResource, ExecutorResource
from corpus import shards
from corpus.decontam import DEFAULT_BENCHMARKS, DecontamError, Decontaminator, SetDecontaminator
from corpus.executor import ExecutorError, TaskError

TINY_MAX_ROWS = 2_000


class DecontamConfig(dg.Config):
    ngram: int = Field(default=10, description="n-gram length in normalized word tokens (Qwen2.5-Coder: 10)")
    benchmarks: list[str] = Field(default=list(DEFAULT_BENCHMARKS), description="bundled benchmark sets")
    extra: list[str] = Field(
        default=[], description="extra benchmark files as PATH:NAME:FIELD[,FIELD...][:ID_FIELD] (JSONL/.gz/Parquet)"
    )
    min_informative: int = Field(
        default=1, description="benchmark n-grams need this many informative tokens (>= 2 chars with a letter, "
        "not a keyword/builtin/function word) to be indexed; 0 = index every n-gram (the report's plain rule)"
    )
    max_rows: int = Field(default=-1, description="cap on input rows; -1 = all (profile tiny: 2000)")
    recheck_sample: int = Field(default=2_000, description="kept rows re-checked by the blocking asset check")


@functools.lru_cache(maxsize=4)
def _decontaminator(ngram: int, benchmarks: tuple[str, ...], extra: tuple[str, ...],
                    min_informative: int) -> Decontaminator:
    return Decontaminator.from_config(ngram=ngram, benchmarks=benchmarks, extra=extra,
                                      min_informative=min_informative)


def decontaminator_for(config: DecontamConfig) -> Decontaminator:
    try:
        return _decontaminator(config.ngram, tuple(config.benchmarks), tuple(config.extra), config.min_informative)
    except DecontamError as exc:
        raise dg.Failure(description=f"decontam config: {exc}") from exc


def _run_decontam(context: dg.AssetExecutionContext, config: DecontamConfig, corpus: CorpusResource,
                  executor: ExecutorResource, name: str, upstream: str, text_column: str) -> tuple[dg.MaterializeResult, dg.MaterializeResult]:
    part = context.partition_key if context.has_partition_key else None
    src = corpus.path(upstream, part)
    out, removed = corpus.path(name, part), corpus.path(f"{name}_removed", part)
    hashes = upstream_hashes(corpus, [upstream], part)
    d = decontaminator_for(config)
    cap = config.max_rows if config.max_rows >= 0 else (TINY_MAX_ROWS if corpus.tiny else None)
    stage_cfg = {"max_rows": cap, "recheck_sample": config.recheck_sample}
    full_cfg = d.config_for(stage_cfg, text_column)
    chash = shards.stable_hash(full_cfg)
    kept_m, rem_m = shards.up_to_date(out, chash, hashes), shards.up_to_date(removed, chash, hashes)
    if kept_m is not None and rem_m is not None:
        context.log.info("%s: upstream and config unchanged; keeping %s", name, out)
        return (
            dg.MaterializeResult(asset_key=name, metadata=manifest_metadata(out, kept_m, reused=True)),
            dg.MaterializeResult(asset_key=f"{name}_removed", metadata=manifest_metadata(removed, rem_m, reused=True)),
        )
    try:
        with executor.open() as ex:
            stats = d.filter_shard_set(src, out, removed, text_column=text_column, config=stage_cfg,
                                       input_hashes=hashes, max_rows=cap, executor=ex)
    except (DecontamError, shards.ShardSetError, TaskError, ExecutorError) as exc:
        raise dg.Failure(description=f"{name}: {exc}") from exc
    kept_m, rem_m = shards.read_manifest(out), shards.read_manifest(removed)
    assert kept_m is not None and rem_m is not None
    mb = stats.bytes_in / 1e6
    per_bench = [[b, stats.removed_per_benchmark.get(b, 0), stats.tasks_hit.get(b, 0)] for b in d.benchmark_names()]
    meta = manifest_metadata(out, kept_m) | {
        "input_rows": stats.rows_in,
        "kept_rows": stats.rows_kept,
        "dropped_rows": stats.rows_removed,
        "dropped_fraction": round(stats.rows_removed / stats.rows_in, 6) if stats.rows_in else 0.0,
        "hits_per_benchmark": md_table(["benchmark", "rows removed", "distinct tasks hit"], per_bench),
        "removed_examples": md_table(["id", "benchmark", "task_id", "first shared n-gram"],
                                     [[e["id"], e["benchmark"], e["task_id"], e["ngram"]] for e in stats.examples]),
        "benchmark_ngrams_indexed": d.n_ngrams,
        "benchmark_items_not_indexed": d.skipped_short,
        "ngram": config.ngram,
        "throughput_mb_s": round(mb / stats.seconds, 2) if stats.seconds else 0.0,
        "skip_reasons": counts_table({"empty or null text (kept, nothing to match)": stats.empty_or_null}),
        "input_capped_at": cap if cap is not None else "none",
    }
    context.log.info("%s: %d rows in, %d removed (%s)", name, stats.rows_in, stats.rows_removed,
                     stats.removed_per_benchmark)
    return (
        dg.MaterializeResult(asset_key=name, metadata=meta),
        dg.MaterializeResult(
            asset_key=f"{name}_removed",
            metadata=manifest_metadata(removed, rem_m) | {"hits_per_benchmark": counts_table(
                stats.removed_per_benchmark, key="benchmark", value="rows removed")},
        ),
    )


def _sample_rows(path: str, column: str, limit: int) -> list[str | None]:
    """Up to ``limit`` values of ``column``, spread evenly over the set (deterministic)."""
    total = shards.count_rows(path)
    if total == 0 or limit <= 0:
        return []
    step = max(1, total // limit)
    out: list[str | None] = []
    seen = 0
    for batch in shards.iter_batches(path, columns=[column]):
        vals = batch.column(0).to_pylist()
        first = (-seen) % step
        out.extend(vals[first::step])
        seen += len(vals)
        if len(out) >= limit:
            break
    return out[:limit]


def make_decontam_asset(name: str, upstream: str, text_column: str,
                        partitions_def: dg.PartitionsDefinition | None, group: str, what: str) -> dg.AssetsDefinition:
    """A ``<name>`` + ``<name>_removed`` multi-asset over ``upstream`` with its two blocking checks."""

    @dg.multi_asset(
        name=name,
        specs=[
            dg.AssetSpec(name, deps=[upstream], group_name=group, partitions_def=partitions_def,
                         description=f"{what} with no 10-gram overlap with HumanEval/MBPP/GSM8K/MATH",
                         automation_condition=dg.AutomationCondition.eager(), kinds={"parquet"}),
            dg.AssetSpec(f"{name}_removed", deps=[upstream], group_name=group, partitions_def=partitions_def,
                         description=f"rows of {upstream} removed by decontamination (id, benchmark, task_id, ngram)",
                         automation_condition=dg.AutomationCondition.eager(), kinds={"parquet"}),
        ],
        partitions_def=partitions_def,
        can_subset=True,
        check_specs=[
            dg.AssetCheckSpec("counts_add_up", asset=name, blocking=True,
                              description="kept + removed rows = input rows"),
            dg.AssetCheckSpec("no_benchmark_ngrams", asset=name, blocking=True,
                              description="independent re-check of a sample of kept rows finds no benchmark n-gram"),
        ],
    )
    def _asset(context: dg.AssetExecutionContext, config: DecontamConfig, corpus: CorpusResource,
               executor: ExecutorResource):
        # Both shard sets are always (re)built together; both record a materialization when rewritten.
        kept, removed = _run_decontam(context, config, corpus, executor, name, upstream, text_column)
        part = context.partition_key if context.has_partition_key else None
        reused = bool(kept.metadata and kept.metadata.get("reused_existing") is True)
        yield from report_sets(context, [kept, removed], rewritten=not reused)
        checks = context.selected_asset_check_keys
        if dg.AssetCheckKey(dg.AssetKey(name), "counts_add_up") in checks:
            yield _check_counts(corpus, name, upstream, part)
        if dg.AssetCheckKey(dg.AssetKey(name), "no_benchmark_ngrams") in checks:
            yield _check_clean(corpus, config, name, text_column, part)

    return _asset


def _check_counts(corpus: CorpusResource, name: str, upstream: str, part: str | None) -> dg.AssetCheckResult:
    out, removed, src = corpus.path(name, part), corpus.path(f"{name}_removed", part), corpus.path(upstream, part)
    km, rm, um = shards.read_manifest(out), shards.read_manifest(removed), shards.read_manifest(src)
    if km is None or rm is None or um is None:
        return dg.AssetCheckResult(check_name="counts_add_up", asset_key=name, passed=False,
                                   metadata={"error": "a shard set is not committed"})
    summary = km.extra.get("decontam", {})
    rows_in = summary.get("rows_in", -1)
    cap = summary.get("max_rows")
    expected_in = um.rows if cap is None else min(um.rows, cap)
    ok = km.rows + rm.rows == rows_in == expected_in
    return dg.AssetCheckResult(
        check_name="counts_add_up", asset_key=name, passed=ok,
        metadata={"kept": km.rows, "removed": rm.rows, "input_read": rows_in, "input_rows": um.rows,
                  "cap": cap if cap is not None else "none"},
    )


def _check_clean(corpus: CorpusResource, config: DecontamConfig, name: str, text_column: str,
                 part: str | None) -> dg.AssetCheckResult:
    d = decontaminator_for(config)
    ref = _reference(config.ngram, tuple(config.benchmarks), tuple(config.extra), config.min_informative)
    sample = _sample_rows(corpus.path(name, part), text_column, config.recheck_sample)
    dirty = [h for t in sample if (h := ref.find(t))]
    return dg.AssetCheckResult(
        check_name="no_benchmark_ngrams", asset_key=name, passed=not dirty,
        metadata={"rows_rechecked": len(sample), "rows_with_benchmark_ngrams": len(dirty),
                  "examples": md_table(["benchmark", "task_id", "ngram"], [h[0] for h in dirty[:5]]),
                  "benchmarks": ", ".join(d.benchmark_names())},
    )


@functools.lru_cache(maxsize=2)
def _reference(ngram: int, benchmarks: tuple[str, ...], extra: tuple[str, ...], min_informative: int
               ) -> SetDecontaminator:
    d = _decontaminator(ngram, benchmarks, extra, min_informative)
    return SetDecontaminator(d.items, ngram=ngram, min_informative=min_informative)


_SPECS: Sequence[tuple[str, str, str, dg.PartitionsDefinition | None, str, str]] = (
    ("code_clean", "code_quality", "content", language_partitions, "code", "Code files"),
    ("text_code_clean", "text_code", "text", text_batch_partitions, "text", "Code-related web text"),
    ("math_clean", "math_text", "text", None, "text", "Math web text"),
    ("general_clean", "general_text", "text", None, "text", "General web text"),
)

_assets = [make_decontam_asset(*spec) for spec in _SPECS]
code_clean, text_code_clean, math_clean, general_clean = _assets

defs = dg.Definitions(assets=_assets)

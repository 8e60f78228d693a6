"""Dedup asset: ``code_dedup`` (per language) and its ``code_dedup_clusters`` table.

Exact dedup on normalized content plus MinHash-LSH near dedup (The Stack / StarCoder recipe);
the work is in corpus.dedup, this module maps Dagster config and resources onto it and reports
what happened (duplicates, clusters, a cluster-size histogram, time per phase).
"""

import dagster as dg
import duckdb
from pydantic import Field

from assets.common import counts_table, manifest_metadata, md_table, report_sets, upstream_hashes
from assets.partitions import language_partitions
from assets.resources import CorpusResource, ExecutorResource
from corpus import shards
from corpus.dedup import DEFAULT_KEEP_POLICY, PERMISSIVE_LICENSES, DedupConfig, DedupInputError, run_dedup
from corpus.dedup.pipeline import parquet_list_sql
from corpus.executor import ExecutorError, TaskError

UPSTREAM = "code_files"
CLUSTERS_TABLE = "code_dedup_clusters"


class DedupAssetConfig(dg.Config):
    threshold: float = Field(default=0.7, description="Jaccard similarity at or above which files are near duplicates")
    ngram: int = Field(default=5, description="tokens per shingle")
    num_perm: int = Field(default=256, description="MinHash permutations")
    min_tokens: int = Field(default=10, description="shorter files are only exact-deduplicated (kept, own cluster)")
    bands: int | None = Field(default=None, description="LSH bands; None = chosen for the threshold (with rows)")
    rows: int | None = Field(default=None, description="LSH rows per band; None = chosen for the threshold")
    verify: bool = Field(default=True, description="drop candidate pairs whose true Jaccard is below threshold")
    keep_policy: list[str] = Field(
        default=list(DEFAULT_KEEP_POLICY),
        description="which row of a cluster is kept, criteria in order: license, stars, forks, revision_date, id",
    )
    permissive_licenses: list[str] = Field(default=sorted(PERMISSIVE_LICENSES))
    seed: int = Field(default=42, description="seed of the MinHash permutations")
    memory_limit: str = Field(default="1GB", description="DuckDB memory cap for the reduce (spills beyond)")
    threads: int = Field(default=1, description="DuckDB threads for the reduce (output does not depend on it)")
    force: bool = Field(default=False, description="recompute even if the output is up to date")


def dedup_config(config: DedupAssetConfig) -> DedupConfig:
    try:
        return DedupConfig(
            threshold=config.threshold, ngram=config.ngram, num_perm=config.num_perm, min_tokens=config.min_tokens,
            bands=config.bands, rows=config.rows, verify=config.verify, keep_policy=tuple(config.keep_policy),
            permissive_licenses=tuple(config.permissive_licenses), seed=config.seed,
            memory_limit=config.memory_limit, threads=config.threads,
        )
    except ValueError as exc:
        raise dg.Failure(description=f"code_dedup config: {exc}") from exc


def stage_metadata(stats: dict) -> dict:
    """Dagster metadata from the run's statistics (also stored in the manifest for re-use)."""
    rows = max(1, stats["input_rows"])
    phases = stats["phase_seconds"]
    skips = {k: stats["reasons"].get(k, 0) for k in ("duplicate_id", "null_content")}
    return {
        "input_rows": stats["input_rows"],
        "input_mb": round(stats["input_bytes"] / 1e6, 2),
        "kept_rows": stats["kept_rows"],
        "exact_duplicates": stats["exact_duplicates"],
        "near_duplicates": stats["near_duplicates"],
        "dropped_rows": stats["input_rows"] - stats["kept_rows"],
        "dropped_fraction": round(1 - stats["kept_rows"] / rows, 4),
        "clusters": stats["clusters"],
        "largest_cluster": stats["largest_cluster"],
        "short_documents": stats["short_documents"],
        "candidate_pairs": stats["candidate_pairs"],
        "verified_pairs": stats["verified_pairs"],
        "false_positives_dropped": stats["false_positives"],
        "lsh": f"{stats['bands']} bands x {stats['rows_per_band']} rows",
        "cluster_sizes": md_table(["cluster_size", "clusters"],
                                  list(stats["cluster_sizes"].items())[::-1]),
        "reasons": counts_table({k: v for k, v in stats["reasons"].items() if v}, value="rows"),
        "skip_reasons": counts_table({k: v for k, v in skips.items() if v}, value="rows"),
        "phase_seconds": md_table(
            ["phase", "wall_s", "cpu_s"],
            [(k, v, stats.get("phase_cpu_seconds", {}).get(k, "")) for k, v in phases.items()],
        ),
        "mb_per_s": round(stats["input_bytes"] / 1e6 / max(phases.get("total", 0.0), 1e-9), 2),
    }


def _consistency_check(path: str, clusters_path: str) -> dg.AssetCheckResult:
    """Kept rows: unique ids, each its own cluster representative, same count as the table says."""
    con = duckdb.connect()
    try:
        kept_files = parquet_list_sql(shards.shard_files(path))
        cl_files = parquet_list_sql(shards.shard_files(clusters_path))
        rows, ids, not_rep = con.execute(
            f"SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE cluster_id <> id) "
            f"FROM read_parquet({kept_files})"
        ).fetchone()
        table_kept, table_rows = con.execute(
            f"SELECT count(*) FILTER (WHERE kept), count(*) FROM read_parquet({cl_files})"
        ).fetchone()
    finally:
        con.close()
    return dg.AssetCheckResult(
        check_name="kept_rows_consistent",
        passed=bool(rows == ids and not_rep == 0 and rows == table_kept),
        metadata={"kept_rows": rows, "distinct_ids": ids, "kept_not_representative": not_rep,
                  "clusters_table_kept": table_kept, "clusters_table_rows": table_rows},
    )


DEDUP_KEY = dg.AssetKey("code_dedup")
CLUSTERS_KEY = dg.AssetKey(CLUSTERS_TABLE)
CHECK_KEY = dg.AssetCheckKey(DEDUP_KEY, "kept_rows_consistent")
_EAGER = dg.AutomationCondition.eager()


@dg.multi_asset(
    name="code_dedup",
    specs=[
        dg.AssetSpec(
            DEDUP_KEY, deps=[UPSTREAM], group_name="code", partitions_def=language_partitions,
            kinds={"parquet", "duckdb"}, automation_condition=_EAGER,
            description="code_files with exact duplicates (normalized content) and near duplicates (MinHash "
            "LSH, Jaccard >= threshold) removed, one row kept per cluster by the keep-policy; adds `cluster_id`.",
        ),
        dg.AssetSpec(
            CLUSTERS_KEY, deps=[UPSTREAM], group_name="code", partitions_def=language_partitions,
            kinds={"parquet"}, automation_condition=_EAGER,
            description="The fate of every code_files row: id, cluster_id (the kept row's id), kept, reason "
            "(unique, kept_cluster, short_document, null_content, exact_duplicate, near_duplicate, duplicate_id).",
        ),
    ],
    partitions_def=language_partitions,
    check_specs=[dg.AssetCheckSpec("kept_rows_consistent", asset=DEDUP_KEY, blocking=True,
                                   description="unique ids; every kept row represents its cluster; "
                                   "kept count matches code_dedup_clusters")],
    can_subset=True,
)
def code_dedup(context: dg.AssetExecutionContext, config: DedupAssetConfig, corpus: CorpusResource,
               executor: ExecutorResource):
    """Both shard sets are always (re)built together; both record a materialization when rewritten."""
    lang = context.partition_key
    cfg = dedup_config(config)
    in_path = corpus.path(UPSTREAM, lang)
    path = corpus.path("code_dedup", lang)
    clusters_path = corpus.path(CLUSTERS_TABLE, lang)
    hashes = upstream_hashes(corpus, [UPSTREAM], lang)
    config_hash = shards.stable_hash(cfg.result_config())
    manifest = None if config.force else shards.up_to_date(path, config_hash, hashes)
    reused = manifest is not None and shards.up_to_date(clusters_path, config_hash, hashes) is not None
    if not reused:
        try:
            with executor.open() as ex:
                run_dedup(shards.shard_files(in_path), path, clusters_path, cfg, input_hashes=hashes,
                          log=context.log.info, input_paths=[in_path], executor=ex)
        except (DedupInputError, shards.ShardSetError, TaskError, ExecutorError) as exc:
            raise dg.Failure(description=f"code_dedup[{lang}]: {exc}") from exc
        manifest = shards.read_manifest(path)
    manifest, clusters_manifest = shards.check_group(path, clusters_path)
    stats = manifest.extra["dedup"]
    context.log.info(
        f"code_dedup[{lang}]: {stats['input_rows']} rows -> {stats['kept_rows']} kept "
        f"({stats['exact_duplicates']} exact, {stats['near_duplicates']} near duplicates)"
        + (" (reused)" if reused else "")
    )
    meta = manifest_metadata(path, manifest, reused=reused)
    meta["clusters_table"] = dg.MetadataValue.path(clusters_path)
    cmeta = manifest_metadata(clusters_path, clusters_manifest, reused=reused)
    cmeta["reasons"] = counts_table({k: v for k, v in stats["reasons"].items() if v}, value="rows")
    yield from report_sets(context, [
        dg.MaterializeResult(asset_key=DEDUP_KEY, metadata=meta | stage_metadata(stats)),
        dg.MaterializeResult(asset_key=CLUSTERS_KEY, metadata=cmeta),
    ], rewritten=not reused)
    if CHECK_KEY in context.selected_asset_check_keys:
        yield _consistency_check(path, clusters_path)


defs = dg.Definitions(assets=[code_dedup])

"""Exact + near dedup of Parquet shards as a shard-level map and a global reduce.

map (per input file, independent, Ray-ready): read ``id``/``content`` batches, hash normalized
    content, MinHash-sign, and spill two small shard sets: per-document facts (exact hash, token
    count, keep-policy columns) and LSH band keys.
reduce (global, out of core in DuckDB): duplicate ids, exact groups, band-key groups ->
    candidate pairs, optional true-Jaccard verification, union-find -> clusters, keep-policy
    ranking -> one decision per input row, streamed back in input order.
write: re-read the input in order and write kept rows (+ ``cluster_id``) and the clusters table.

Memory is bounded by one batch in map and write, one shard's candidate documents in verify, and
8 bytes per document for union-find.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus import safety, shards, stagerun
from corpus.dedup.config import DedupConfig, DedupStats
from corpus.dedup.inputs import REQUIRED_COLUMNS, DedupInputError, InputPlan, parquet_meta, plan_inputs
from corpus.dedup.lsh import band_keys
from corpus.dedup.minhash import MinHasher, binary_view
from corpus.dedup.normalize import normalized_hashes
from corpus.dedup.policy import POLICY_COLUMNS, is_permissive, order_by_sql
from corpus.dedup.unionfind import UnionFind
from corpus.dedup.verify import verify_pairs
from corpus.executor import LocalExecutor

CLUSTER_COLUMN = "cluster_id"
CLUSTERS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field(CLUSTER_COLUMN, pa.string()),
        pa.field("kept", pa.bool_()),
        pa.field("reason", pa.string()),
    ]
)
DOCS_SCHEMA = pa.schema(
    [
        pa.field("doc", pa.int64()),
        pa.field("id", pa.string()),
        pa.field("h_hi", pa.uint64()),
        pa.field("h_lo", pa.uint64()),
        pa.field("n_tokens", pa.int64()),
        pa.field("eligible", pa.bool_()),
        pa.field("null_content", pa.bool_()),
        pa.field("permissive", pa.bool_()),
        pa.field("stars", pa.int64()),
        pa.field("forks", pa.int64()),
        pa.field("revision_date", pa.timestamp("us", tz="UTC")),
    ]
)
BANDS_SCHEMA = pa.schema([pa.field("band", pa.uint16()), pa.field("key", pa.uint64()), pa.field("doc", pa.int64())])
# Reasons in the clusters table; "kept" is true for the first four.
REASONS = (
    "unique", "kept_cluster", "short_document", "null_content",
    "exact_duplicate", "near_duplicate", "duplicate_id", "invalid_utf8",
)
_EDGE_BATCH = 1 << 20


def output_schema(schema: pa.Schema) -> pa.Schema:
    """Input schema plus ``cluster_id`` (an existing ``cluster_id`` column is replaced)."""
    fields = [f for f in schema if f.name != CLUSTER_COLUMN]
    return pa.schema(fields + [pa.field(CLUSTER_COLUMN, pa.string())])


# --------------------------------------------------------------------------- map


@dataclass
class MapResult:
    shard: int
    rows: int
    bytes: int
    docs_path: str
    bands_path: str


def _id_strings(col: pa.Array, file: str, first_row: int) -> pa.Array:
    if col.null_count:
        bad = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise DedupInputError(f"{file}: row {first_row + bad}: `id` is null; every row needs an id")
    if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
        return pc.cast(col, pa.string(), safe=False)
    return pc.cast(col, pa.string())


def _policy_column(batch: pa.RecordBatch, name: str, typ: pa.DataType, file: str) -> pa.Array:
    if name not in batch.schema.names:
        return pa.nulls(batch.num_rows, typ)
    try:
        return pc.cast(batch.column(name), typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DedupInputError(
            f"{file}: column {name!r} ({batch.schema.field(name).type}) cannot be read as {typ} for the "
            f"keep-policy ({exc}); fix the column or drop it"
        ) from exc


def map_shard(
    file: str, shard: int, doc_offset: int, config: DedupConfig, work_dir: str, hasher: MinHasher | None = None
) -> MapResult:
    """Sign one input file and spill its document facts and band keys as two shard sets."""
    hasher = hasher or MinHasher(config.num_perm, config.ngram, config.seed, config.backend)
    bands, rows = config.lsh_params()
    permissive_set = set(config.permissive_licenses)
    docs_path = os.path.join(work_dir, "docs", f"{shard:05d}")
    bands_path = os.path.join(work_dir, "bands", f"{shard:05d}")
    names = parquet_meta(file)[0].names
    cols = list(REQUIRED_COLUMNS) + [c for c in POLICY_COLUMNS if c in names]
    n_rows = n_bytes = 0
    band_ids = np.arange(bands, dtype=np.uint16)
    with (
        shards.ShardSetWriter(docs_path, DOCS_SCHEMA, row_group_rows=50_000, durable=False) as dw,
        shards.ShardSetWriter(bands_path, BANDS_SCHEMA, row_group_rows=200_000, shard_rows=5_000_000,
                              durable=False) as bw,
    ):
        for batch in shards.iter_parquet_file(file, columns=cols, batch_size=config.batch_rows):
            n = batch.num_rows
            docs = np.arange(doc_offset + n_rows, doc_offset + n_rows + n, dtype=np.int64)
            ids = _id_strings(batch.column("id"), file, n_rows)
            data, offsets, nulls = binary_view(batch.column("content"))
            bad = _invalid_text(batch, file, n_rows, config)
            if bad is not None:  # not text: never a cluster's representative, dropped at write
                nulls = nulls | bad
            h_hi, h_lo = normalized_hashes(data, offsets)
            sig, n_tokens = hasher.sign_buffer(data, offsets)
            eligible = ~nulls & (n_tokens >= max(config.min_tokens, config.ngram))
            licenses = _policy_column(batch, "license", pa.string(), file).to_pylist()
            dw.write_batch(
                pa.record_batch(
                    [
                        pa.array(docs), ids, pa.array(h_hi), pa.array(h_lo), pa.array(n_tokens),
                        pa.array(eligible), pa.array(nulls),
                        pa.array([is_permissive(x, permissive_set) for x in licenses], pa.bool_()),
                        _policy_column(batch, "stars", pa.int64(), file),
                        _policy_column(batch, "forks", pa.int64(), file),
                        _policy_column(batch, "revision_date", pa.timestamp("us", tz="UTC"), file),
                    ],
                    schema=DOCS_SCHEMA,
                )
            )
            if eligible.any():
                keys = band_keys(sig[eligible], bands, rows)
                m = keys.shape[0]
                bw.write_batch(
                    pa.record_batch(
                        [
                            pa.array(np.tile(band_ids, m)),
                            pa.array(keys.reshape(-1)),
                            pa.array(np.repeat(docs[eligible], bands)),
                        ],
                        schema=BANDS_SCHEMA,
                    )
                )
            n_rows += n
            n_bytes += int(offsets[-1] - offsets[0])
    return MapResult(shard, n_rows, n_bytes, docs_path, bands_path)


# --------------------------------------------------------------------------- reduce


def _connect(work_dir: str, config: DedupConfig) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    tmp = os.path.join(work_dir, "duckdb_tmp")
    os.makedirs(tmp, exist_ok=True)
    con.execute(f"SET temp_directory = '{_sql_str(tmp)}'")
    con.execute(f"SET memory_limit = '{_sql_str(config.memory_limit)}'")
    con.execute(f"SET threads = {int(config.threads)}")
    con.execute("SET preserve_insertion_order = false")
    return con


def _sql_str(text: str) -> str:
    return text.replace("'", "''")


def parquet_list_sql(files: Iterable[str]) -> str:
    """A DuckDB list literal of file paths (quotes escaped)."""
    return "[" + ", ".join(f"'{_sql_str(f)}'" for f in files) + "]"


def _parquet_list(paths: Iterable[str]) -> str:
    return parquet_list_sql(f for p in paths for f in shards.shard_files(p))


def _edges(con: duckdb.DuckDBPyConnection, sql: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    reader = con.execute(sql).to_arrow_reader(_EDGE_BATCH)
    for rb in reader:
        if rb.num_rows:
            yield rb.column(0).to_numpy(), rb.column(1).to_numpy()


def reduce_clusters(
    con: duckdb.DuckDBPyConnection,
    plan: InputPlan,
    maps: Sequence[MapResult],
    config: DedupConfig,
    stats: DedupStats,
    timer: Callable[[str], None],
) -> pa.RecordBatchReader:
    """Group, cluster and rank; returns decisions (doc, cluster_id, kept, reason) in doc order."""
    n = plan.total_rows
    con.execute(f"CREATE VIEW docs AS SELECT * FROM read_parquet({_parquet_list(m.docs_path for m in maps)})")
    con.execute(f"CREATE VIEW bands AS SELECT * FROM read_parquet({_parquet_list(m.bands_path for m in maps)})")
    con.execute(
        "CREATE TABLE dupid AS SELECT doc FROM "
        "(SELECT doc, row_number() OVER (PARTITION BY id ORDER BY doc) AS rn FROM docs) WHERE rn > 1"
    )
    con.execute(
        "CREATE TABLE exact AS SELECT doc, min(doc) OVER (PARTITION BY h_hi, h_lo) AS rep FROM docs "
        "WHERE NOT null_content AND doc NOT IN (SELECT doc FROM dupid)"
    )
    uf = UnionFind(n)
    for ea, eb in _edges(con, "SELECT rep, doc FROM exact WHERE rep <> doc"):
        uf.union_many(ea, eb)
    timer("reduce_exact")
    # Near candidates among exact representatives: star edges to each band group's first doc.
    con.execute(
        "CREATE TABLE cand AS SELECT DISTINCT a, b FROM ("
        " SELECT min(bands.doc) OVER (PARTITION BY band, key) AS a, bands.doc AS b"
        " FROM bands JOIN exact ON bands.doc = exact.doc AND exact.rep = exact.doc"
        ") WHERE a <> b"
    )
    stats.candidate_pairs = int(con.execute("SELECT count(*) FROM cand").fetchone()[0])
    timer("reduce_lsh")
    for ea, eb in _edges(con, "SELECT a, b FROM cand"):
        if config.verify:
            sims = verify_pairs(plan, ea, eb, config)
            ok = sims >= config.threshold
            stats.verified_pairs += len(ea)
            stats.false_positives += int((~ok).sum())
            ea, eb = ea[ok], eb[ok]
        uf.union_many(ea, eb)
    if config.verify:
        timer("reduce_verify")
    labels = uf.labels()
    sizes = np.bincount(labels, minlength=n)
    comp_sizes = sizes[sizes > 0]
    stats.clusters = int((comp_sizes > 1).sum())
    stats.largest_cluster = int(comp_sizes.max()) if len(comp_sizes) else 0
    stats.cluster_sizes = size_histogram(comp_sizes)
    con.register("comp", pa.table({"doc": np.arange(n, dtype=np.int64), "comp": labels}))
    timer("reduce_union_find")
    order = order_by_sql(config.keep_policy)
    con.execute(
        f"""CREATE TABLE decisions AS
        WITH d AS (
            SELECT docs.*, comp.comp, dupid.doc IS NOT NULL AS is_dupid
            FROM docs JOIN comp ON docs.doc = comp.doc LEFT JOIN dupid ON docs.doc = dupid.doc
        ), r AS (
            SELECT doc, is_dupid, null_content, eligible,
                   count(*) OVER (PARTITION BY comp) AS size,
                   row_number() OVER (PARTITION BY comp ORDER BY {order}) AS rk,
                   first_value(id) OVER (PARTITION BY comp ORDER BY {order}) AS cluster_id,
                   row_number() OVER (PARTITION BY comp, h_hi, h_lo ORDER BY {order}) AS erk
            FROM d
        )
        SELECT doc, cluster_id, (rk = 1 AND NOT is_dupid) AS kept,
            CASE WHEN is_dupid THEN 'duplicate_id'
                 WHEN null_content THEN 'null_content'
                 WHEN rk > 1 AND erk > 1 THEN 'exact_duplicate'
                 WHEN rk > 1 THEN 'near_duplicate'
                 WHEN size > 1 THEN 'kept_cluster'
                 WHEN NOT eligible THEN 'short_document'
                 ELSE 'unique' END AS reason
        FROM r"""
    )
    reasons = dict(con.execute("SELECT reason, count(*) FROM decisions GROUP BY reason").fetchall())
    stats.reasons = {k: int(reasons.get(k, 0)) for k in REASONS}
    stats.exact_duplicates = stats.reasons["exact_duplicate"]
    stats.near_duplicates = stats.reasons["near_duplicate"]
    stats.duplicate_ids = stats.reasons["duplicate_id"]
    stats.null_content = stats.reasons["null_content"]
    stats.short_documents = int(con.execute("SELECT count(*) FROM docs WHERE NOT eligible AND NOT null_content")
                                .fetchone()[0])
    timer("reduce_rank")
    return con.execute("SELECT doc, cluster_id, kept, reason FROM decisions ORDER BY doc").to_arrow_reader(
        config.batch_rows
    )


def size_histogram(sizes: np.ndarray) -> dict[str, int]:
    """Clusters per size bucket: 1, 2, 3-4, 5-8, 9-16, ... (powers of two)."""
    out: dict[str, int] = {}
    if not len(sizes):
        return out
    top = int(sizes.max())
    lo = 1
    while lo <= top:
        hi = lo if lo <= 2 else 2 * (lo - 1)
        c = int(((sizes >= lo) & (sizes <= hi)).sum())
        if c:
            out[str(lo) if lo == hi else f"{lo}-{hi}"] = c
        lo = hi + 1
    return out


# --------------------------------------------------------------------------- write


class _DecisionStream:
    """Pulls exactly k decisions at a time from DuckDB's ordered batch reader."""

    def __init__(self, reader: pa.RecordBatchReader) -> None:
        self._it = iter(reader)
        self._buf: list[pa.RecordBatch] = []
        self._have = 0

    def take(self, k: int) -> pa.Table:
        while self._have < k:
            rb = next(self._it)
            self._buf.append(rb)
            self._have += rb.num_rows
        t = pa.Table.from_batches(self._buf).combine_chunks()
        head, rest = t.slice(0, k), t.slice(k)
        self._buf = rest.to_batches()
        self._have -= k
        return head


def _invalid_text(batch: pa.RecordBatch, file: str, first_row: int, config: DedupConfig):
    """Mask of rows whose content is not UTF-8 (None if all are); raises under policy ``fail``."""
    bad = safety.invalid_mask(batch.column("content"))
    if bad is not None and config.invalid_text == "fail":
        rows = ", ".join(str(first_row + int(i)) for i in np.flatnonzero(bad)[:5])
        raise safety.InvalidTextError(
            f"{file}: column 'content' row(s) {rows} hold bytes that are not valid UTF-8; fix the input or "
            "set invalid_text='skip' (CLI --invalid-text skip) to drop such rows with a recorded reason")
    return bad


def _write_outputs(
    plan: InputPlan,
    decisions: pa.RecordBatchReader,
    out: shards.ShardSetWriter,
    clusters: shards.ShardSetWriter | None,
    config: DedupConfig,
    stats: DedupStats,
) -> int:
    stream = _DecisionStream(decisions)
    in_names = [f.name for f in plan.schema if f.name != CLUSTER_COLUMN]
    kept_total = 0
    invalid = 0
    for i, file in enumerate(plan.files):
        doc = plan.row_offsets[i]
        for batch in shards.iter_parquet_file(file, batch_size=config.batch_rows):
            d = stream.take(batch.num_rows)
            expect = np.arange(doc, doc + batch.num_rows)
            if not np.array_equal(d.column("doc").to_numpy(), expect):
                raise RuntimeError(f"{file}: decisions out of step with the input (rows {doc}..)")
            doc += batch.num_rows
            ids = _id_strings(batch.column("id"), file, doc - batch.num_rows)
            kept, reason = d.column("kept").combine_chunks(), d.column("reason").combine_chunks()
            bad = _invalid_text(batch, file, doc - batch.num_rows - plan.row_offsets[i], config)
            if bad is not None:
                invalid += int(bad.sum())
                kept = pc.and_(kept, pa.array(~bad))
                reason = pc.if_else(pa.array(bad), "invalid_utf8", reason)
            if clusters is not None:
                clusters.write_batch(
                    pa.record_batch([ids, d.column("cluster_id").combine_chunks(), kept, reason],
                                    schema=CLUSTERS_SCHEMA)
                )
            mask = kept
            cols = [batch.column(n) for n in in_names] + [d.column("cluster_id").combine_chunks()]
            table = pa.Table.from_arrays(cols, names=in_names + [CLUSTER_COLUMN]).filter(mask)
            kept_total += table.num_rows
            out.write_batch(table)
    if invalid:  # they went through reduce as null content
        stats.invalid_utf8 = invalid
        stats.null_content -= invalid
        stats.reasons["null_content"] = stats.reasons.get("null_content", 0) - invalid
        stats.reasons["invalid_utf8"] = invalid
    return kept_total


@dataclass(frozen=True)
class _MapTask:
    """``map_shard`` for one input file, on any worker (the MinHasher is the shared state)."""

    config: DedupConfig
    work: str
    offsets: tuple[int, ...]

    def __call__(self, job: stagerun.ShardJob, hasher: MinHasher) -> MapResult:
        return map_shard(job.file, job.index, self.offsets[job.index], self.config, self.work, hasher)


# --------------------------------------------------------------------------- entry point


def run_dedup(
    input_files: Sequence[str],
    output_path: str,
    clusters_path: str | None = None,
    config: DedupConfig | None = None,
    *,
    input_hashes: Iterable[str] = (),
    work_dir: str | None = None,
    log: Callable[[str], None] | None = None,
    input_paths: Sequence[str] = (),
    executor: Any = None,
) -> DedupStats:
    """Deduplicate the rows of ``input_files`` (Parquet with ``id`` and ``content``) into a new
    shard set at ``output_path`` (same columns + ``cluster_id``) and, if given, the clusters table
    (``id, cluster_id, kept, reason``) at ``clusters_path``. Both commit as one unit
    (``shards.commit_together``); an output overlapping ``input_files``/``input_paths`` is refused.

    The map phase (normalize, hash, sign, band keys: most of the work) runs one task per input
    file on ``executor`` (corpus.executor); the work folder must be reachable from every worker
    (give ``work_dir`` on shared storage for a multi-node cluster). Grouping and writing run here,
    so the output bytes do not depend on the executor.
    """
    config = config or DedupConfig()
    stats = DedupStats()
    t0 = time.perf_counter()
    last = [t0, time.process_time()]

    def timer(phase: str) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        stats.phase_seconds[phase] = round(now - last[0], 3)
        stats.phase_cpu_seconds[phase] = round(cpu - last[1], 3)
        last[:] = [now, cpu]
        if log:
            log(f"dedup: {phase} done in {now - t0:.1f}s")

    plan = plan_inputs(list(input_files))
    stats.input_files = len(plan.files)
    stats.input_rows = plan.total_rows
    stats.bands, stats.rows_per_band = config.lsh_params()
    cfg = config.result_config()
    hashes = list(input_hashes)
    inputs = list(input_paths) + list(plan.files)  # the user's paths first: named in errors
    out = shards.ShardSetWriter(output_path, output_schema(plan.schema), config=cfg, input_hashes=hashes,
                                inputs=inputs)
    writers = [out]
    if clusters_path:
        writers.append(shards.ShardSetWriter(clusters_path, CLUSTERS_SCHEMA, config=cfg, input_hashes=hashes,
                                             inputs=inputs))
    con = None
    # Both sets are locked for the whole run and committed as one unit; the spill folder lives
    # beside the output's versions, so only a dead run's leftovers are ever cleaned up.
    with shards.commit_together(*writers):
        if work_dir is None and "://" not in output_path:
            work = out.work_dir()
        else:  # a private folder inside the given one (shared storage for a multi-node cluster)
            if work_dir:
                os.makedirs(work_dir, exist_ok=True)
            work = tempfile.mkdtemp(prefix="codecorpus-dedup-", dir=work_dir)
        try:
            hasher = MinHasher(config.num_perm, config.ngram, config.seed, config.backend)
            jobs = [stagerun.ShardJob(i, f) for i, f in enumerate(plan.files)]
            task = _MapTask(config, work, tuple(plan.row_offsets))
            maps = list((executor or LocalExecutor()).map(
                task, jobs, hasher, label=stagerun.ShardJob.label,
                passthrough=(DedupInputError, safety.InvalidTextError, shards.ShardSetError)))
            stats.input_bytes = sum(m.bytes for m in maps)
            timer("map")
            con = _connect(work, config)
            decisions = reduce_clusters(con, plan, maps, config, stats, timer)
            stats.kept_rows = _write_outputs(plan, decisions, out, writers[1] if clusters_path else None, config,
                                             stats)
            timer("write")
            stats.phase_seconds["total"] = round(time.perf_counter() - t0, 3)
            out.extra = {"dedup": stats.to_dict()}
        finally:
            if con is not None:
                con.close()
            shutil.rmtree(work, ignore_errors=True)
    stats.phase_seconds["total"] = round(time.perf_counter() - t0, 3)
    return stats

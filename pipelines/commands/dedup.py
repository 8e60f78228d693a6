"""``codecorpus dedup``: exact + near (MinHash LSH) dedup of any Parquet folder, no Dagster needed."""

import argparse
import json
import os
import sys
from contextlib import closing

from corpus.executor import make_executor
from pipelines.commands._executor import add_executor_arguments, executor_spec

NAME = "dedup"
HELP = "exact + near-duplicate removal (MinHash LSH) of Parquet files with `id` and `content`"
DESCRIPTION = (
    "Remove exact duplicates (sha256 of content with line endings and trailing whitespace normalized) "
    "and near duplicates (token n-gram shingles, MinHash, LSH bands chosen for the Jaccard threshold, "
    "union-find clusters) from the Parquet files under --input. Other columns pass through; one row "
    "per cluster is kept (permissive license, stars, forks, newest revision_date, smallest id, where "
    "those columns exist). Writes a shard set at --output (rows + `cluster_id`) and the clusters "
    "table (id, cluster_id, kept, reason) at --clusters. Re-running with the same input and "
    "settings is a no-op. Example: codecorpus dedup --input data/code_files/python "
    "--output /tmp/python_dedup --verify"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, metavar="DIR",
                   help="a Parquet file, a folder of Parquet files, or a committed shard set")
    p.add_argument("--output", required=True, metavar="DIR", help="shard set to write (replaced atomically)")
    p.add_argument("--clusters", metavar="DIR", help="clusters table to write (default: OUTPUT_clusters)")
    p.add_argument("--no-clusters", action="store_true", help="do not write the clusters table")
    p.add_argument("--threshold", type=float, default=0.7, help="Jaccard threshold for near duplicates (0.7)")
    p.add_argument("--ngram", type=int, default=5, help="tokens per shingle (5)")
    p.add_argument("--num-perm", type=int, default=256, help="MinHash permutations (256)")
    p.add_argument("--min-tokens", type=int, default=10,
                   help="files with fewer tokens are only exact-deduplicated (10)")
    p.add_argument("--bands", type=int, help="LSH bands (default: chosen for the threshold, with --rows)")
    p.add_argument("--rows", type=int, help="LSH rows per band (default: chosen for the threshold)")
    p.add_argument("--verify", action="store_true",
                   help="re-check candidate pairs by true Jaccard and drop false positives")
    p.add_argument("--keep-policy", default="license,stars,forks,revision_date,id",
                   help="comma-separated criteria choosing the kept row of a cluster")
    p.add_argument("--seed", type=int, default=42, help="seed of the MinHash permutations (42)")
    p.add_argument("--memory-limit", default="1GB", help="DuckDB memory cap for grouping (spills beyond; 1GB)")
    p.add_argument("--work-dir", metavar="DIR",
                   help="spill folder for signatures and band keys (default: beside the output's versions); "
                   "with a multi-node Ray cluster, a folder every node can reach")
    p.add_argument("--invalid-text", choices=("skip", "fail"), default=None,
                   help="content that is not UTF-8: skip the row (recorded as invalid_utf8) or fail "
                   "(default: CODECORPUS_INVALID_TEXT, else skip)")
    p.add_argument("--force", action="store_true", help="recompute even if --output is up to date")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    add_executor_arguments(p)


def input_fingerprints(input_path: str, files: list[str]) -> list[str]:
    """What the output was built from: the shard set's content hash, else each file's path,
    size and modification time."""
    from corpus import shards

    m = shards.read_manifest(input_path)
    if m is not None:
        return [m.content_hash]
    out = []
    for f in files:
        st = os.stat(f) if "://" not in f else None
        out.append(f"{os.path.abspath(f)}:{st.st_size}:{st.st_mtime_ns}" if st else f)
    return out


def main(args: argparse.Namespace) -> int:
    from corpus import shards
    from corpus.dedup import DedupConfig, DedupInputError, run_dedup

    try:
        cfg = DedupConfig(
            threshold=args.threshold, ngram=args.ngram, num_perm=args.num_perm, min_tokens=args.min_tokens,
            bands=args.bands, rows=args.rows, verify=args.verify, seed=args.seed,
            keep_policy=tuple(x.strip() for x in args.keep_policy.split(",") if x.strip()),
            memory_limit=args.memory_limit, **({"invalid_text": args.invalid_text} if args.invalid_text else {}),
        )
    except ValueError as exc:
        print(f"codecorpus dedup: bad setting: {exc}", file=sys.stderr)
        return 2
    out = shards.abspath(args.output)
    clusters = None if args.no_clusters else shards.abspath(args.clusters or out.rstrip("/") + "_clusters")
    try:
        files = shards.list_parquet_inputs(args.input)
        hashes = input_fingerprints(args.input, files)
        cfg_hash = shards.stable_hash(cfg.result_config())
        if not args.force and shards.up_to_date(out, cfg_hash, hashes) and (
            clusters is None or shards.up_to_date(clusters, cfg_hash, hashes)
        ):
            print(f"dedup: {out} is up to date with its input and settings (use --force to recompute)")
            return 0
        with closing(make_executor(executor_spec(args))) as ex:
            stats = run_dedup(files, out, clusters, cfg, input_hashes=hashes, input_paths=[args.input],
                              log=lambda m: print(m, file=sys.stderr, flush=True), executor=ex,
                              work_dir=args.work_dir)
    except (DedupInputError, shards.ShardSetError) as exc:
        print(f"codecorpus dedup: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(stats.to_dict(), indent=2, sort_keys=True))
        return 0
    total = stats.phase_seconds.get("total", 0.0)
    print(
        f"dedup: {stats.input_rows} rows ({stats.input_bytes / 1e6:.1f} MB) -> {stats.kept_rows} kept; "
        f"{stats.exact_duplicates} exact + {stats.near_duplicates} near duplicates in {stats.clusters} clusters "
        f"(largest {stats.largest_cluster}); LSH {stats.bands}x{stats.rows_per_band}, "
        f"{stats.candidate_pairs} candidate pairs"
        + (f", {stats.false_positives} false positives dropped" if cfg.verify else "")
        + f"; {total:.1f}s ({stats.input_bytes / 1e6 / max(total, 1e-9):.1f} MB/s)"
    )
    if stats.duplicate_ids or stats.null_content:
        print(f"dedup: skipped {stats.duplicate_ids} rows with a repeated id, "
              f"kept {stats.null_content} rows with null content as-is")
    print(f"output: {out}" + (f"\nclusters: {clusters}" if clusters else ""))
    return 0

"""``codecorpus decontam``: remove rows sharing a 10-gram with benchmark test sets, without Dagster."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import closing

from corpus.executor import make_executor
from pipelines.commands._executor import add_executor_arguments, executor_spec

NAME = "decontam"
HELP = "drop rows that share an n-gram (default 10) with HumanEval/MBPP/GSM8K/MATH or your own benchmark files"
DESCRIPTION = (
    "Stream Parquet rows from --input (a shard set, a folder of .parquet files or one file), drop every\n"
    "row whose text shares at least one normalized n-gram (lowercase words; whitespace and punctuation\n"
    "ignored) with a benchmark item, and write the kept rows (all columns) as a shard set to --output\n"
    "and one row per removed input row (id, benchmark, task_id, ngram) to --removed.\n\n"
    "examples:\n"
    "  codecorpus decontam --input data/code_quality/python --output /tmp/clean\n"
    "  codecorpus decontam --input web.parquet --output /tmp/web_clean --text-column text \\\n"
    "      --benchmarks gsm8k,math --extra mybench.jsonl:mybench:question,answer:id\n"
    "  codecorpus decontam --find snippet.py          # print the hits of one file and exit"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--input", help="shard set, folder of .parquet files, or a .parquet file")
    p.add_argument("--output", help="output shard set folder for kept rows")
    p.add_argument("--removed", help="output shard set for removed rows (default: <output>_removed)")
    p.add_argument("--text-column", help="column to scan (default: 'content' if present, else 'text')")
    p.add_argument("--ngram", type=int, default=10, help="n-gram length in words (default 10, as Qwen2.5-Coder)")
    p.add_argument("--benchmarks", default="humaneval,mbpp,gsm8k,math",
                   help="comma-separated bundled sets (default: all four; '' for none)")
    p.add_argument("--extra", action="append", default=[], metavar="PATH:NAME:FIELDS[:ID]",
                   help="extra benchmark file (JSONL, .jsonl.gz or Parquet); FIELDS comma-separated; repeatable")
    p.add_argument("--min-informative", type=int, default=1,
                   help="index only benchmark n-grams with this many informative tokens (>= 2 chars with a "
                        "letter, not a keyword/builtin/function word; default 1; 0 = index every n-gram)")
    p.add_argument("--max-rows", type=int, default=None, help="stop after this many input rows")
    p.add_argument("--invalid-text", choices=("skip", "fail"), default=None,
                   help="text that is not UTF-8: skip the row (counted) or fail "
                   "(default: CODECORPUS_INVALID_TEXT, else skip)")
    p.add_argument("--find", metavar="FILE", help="print the benchmark hits of one text file and exit")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    add_executor_arguments(p)


def main(args: argparse.Namespace) -> int:
    from corpus import shards
    from corpus.decontam import DecontamError, Decontaminator

    benches = [b for b in (args.benchmarks or "").split(",") if b.strip()]
    try:
        d = Decontaminator.from_config(ngram=args.ngram, benchmarks=benches, extra=args.extra,
                                       min_informative=args.min_informative)
    except DecontamError as exc:
        print(f"codecorpus decontam: {exc}", file=sys.stderr)
        return 2
    if args.find:
        try:
            with open(args.find, "rb") as fh:
                hits = d.find(fh.read())
        except OSError as exc:
            print(f"codecorpus decontam: cannot read {args.find}: {exc}", file=sys.stderr)
            return 2
        for h in hits:
            print(f"{h.benchmark}\t{h.task_id}\t{h.ngram}")
        print(f"{len(hits)} benchmark item(s) overlap {args.find}", file=sys.stderr)
        return 1 if hits else 0
    if not args.input or not args.output:
        print("codecorpus decontam: --input and --output are required (or use --find FILE)", file=sys.stderr)
        return 2
    removed = args.removed or args.output.rstrip("/") + "_removed"
    try:
        column = args.text_column or _guess_column(args.input)
        with closing(make_executor(executor_spec(args))) as ex:
            stats = d.filter_shard_set(args.input, shards.abspath(args.output), shards.abspath(removed),
                                       text_column=column, config={"cli": True, "max_rows": args.max_rows},
                                       max_rows=args.max_rows, invalid_text=args.invalid_text, executor=ex)
    except (DecontamError, shards.ShardSetError) as exc:
        print(f"codecorpus decontam: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(stats.as_dict(), indent=2, sort_keys=True))
    else:
        mb = stats.bytes_in / 1e6
        print(f"{stats.rows_in} rows in ({mb:.1f} MB, {mb / max(stats.seconds, 1e-9):.1f} MB/s), "
              f"{stats.rows_kept} kept -> {args.output}, {stats.rows_removed} removed -> {removed}")
        for b, n in sorted(stats.removed_per_benchmark.items()):
            print(f"  {b:<12} {n} rows removed, {stats.tasks_hit.get(b, 0)} distinct tasks hit")
        if stats.empty_or_null:
            print(f"  {stats.empty_or_null} rows with empty/null text kept")
    return 0


def _guess_column(path: str) -> str:
    from corpus import shards
    from corpus.decontam import DecontamError

    names = shards.parquet_file_schema(shards.list_parquet_inputs(path)[0]).names
    for c in ("content", "text"):
        if c in names:
            return c
    raise DecontamError(f"{path}: neither 'content' nor 'text' column (columns: {names}); pass --text-column")

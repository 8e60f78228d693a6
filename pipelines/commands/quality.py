"""``codecorpus quality``: apply the rule-based code quality filters to Parquet rows, without Dagster."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import closing

from corpus.executor import make_executor
from pipelines.commands._executor import add_executor_arguments, executor_spec

NAME = "quality"
HELP = "filter code rows with the rule-based quality filters (rules.yaml: line length, alnum, encoded data...)"
DESCRIPTION = (
    "Stream code rows (CODE_SCHEMA: id, language, content, ...) from --input, drop files failing a\n"
    "quality rule and write kept rows (all columns) to --output and one row per dropped file\n"
    "(id, rule, value, language, bytes, fired) to --dropped. Rules come from the bundled\n"
    "corpus/quality/rules.yaml (each rule cites its source) or --rules FILE.\n\n"
    "examples:\n"
    "  codecorpus quality --list-rules --language python\n"
    "  codecorpus quality --input data/code_dedup/python --output /tmp/q --language python\n"
    "  codecorpus quality --input in/ --output out/ --language java --set max_line_length.above=2000 \\\n"
    "      --disable comment_ratio"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--input", help="shard set, folder of .parquet files, or a .parquet file")
    p.add_argument("--output", help="output shard set for kept rows")
    p.add_argument("--dropped", help="output shard set for dropped rows (default: <output>_dropped)")
    p.add_argument("--language", default="python",
                   help="language for rows without a language column / rule selection (default python)")
    p.add_argument("--rules", help="YAML rules file (default: the bundled corpus/quality/rules.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="RULE.above=X",
                   help="override a threshold (RULE.above=X, RULE.below=X); repeatable")
    p.add_argument("--disable", action="append", default=[], metavar="RULE", help="switch a rule off; repeatable")
    p.add_argument("--max-rows", type=int, default=None, help="stop after this many input rows")
    p.add_argument("--invalid-text", choices=("skip", "fail"), default=None,
                   help="content that is not UTF-8: skip the row (counted) or fail "
                   "(default: CODECORPUS_INVALID_TEXT, else skip)")
    p.add_argument("--list-rules", action="store_true", help="print the rules for --language and exit")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    add_executor_arguments(p)


def main(args: argparse.Namespace) -> int:
    from corpus import shards
    from corpus.quality import QualityFilter, QualityInputError, RulesError, load_rules, parse_set_option

    try:
        rules = load_rules(args.rules, overrides=parse_set_option(args.set), disabled=args.disable)
    except RulesError as exc:
        print(f"codecorpus quality: {exc}", file=sys.stderr)
        return 2
    if args.list_rules:
        for r in rules.for_language(args.language):
            print(f"{r.name:<24} {r.metric:<22} drop if {r.bounds_for(args.language).describe():<18} {r.source}")
        return 0
    if not args.input or not args.output:
        print("codecorpus quality: --input and --output are required (or use --list-rules)", file=sys.stderr)
        return 2
    dropped = args.dropped or args.output.rstrip("/") + "_dropped"
    try:
        with closing(make_executor(executor_spec(args))) as ex:
            stats = QualityFilter(rules).filter_shard_set(
                args.input, shards.abspath(args.output), shards.abspath(dropped), language=args.language,
                config={"cli": True, "max_rows": args.max_rows}, max_rows=args.max_rows,
                invalid_text=args.invalid_text, executor=ex)
    except (QualityInputError, shards.ShardSetError, ValueError) as exc:
        print(f"codecorpus quality: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(stats.as_dict(), indent=2, sort_keys=True))
        return 0
    print(f"{stats.rows_in} rows in, {stats.rows_kept} kept -> {args.output}, "
          f"{stats.rows_dropped} dropped -> {dropped} ({stats.seconds:.1f}s)")
    for rule, n in sorted(stats.dropped.items(), key=lambda kv: -kv[1]):
        print(f"  {rule:<24} {n:>7} rows  {stats.dropped_bytes.get(rule, 0):>12,} bytes  "
              f"(fired on {stats.fired.get(rule, 0)})")
    for lang, frac in stats.kept_fraction().items():
        print(f"  kept fraction [{lang}]: {frac:.3f}")
    return 0

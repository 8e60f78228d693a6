"""``codecorpus textcode``: the text-code grounding library without Dagster.

Sub-commands mirror the assets: ``batches`` (what the web_text partitions would be),
``build-local`` (real local WARC/WET batches), ``ingest`` (WARC/WET/JSONL/Parquet ->
text shard set), ``train`` (seed fastText classifier + held-out metrics), ``filter``
(N classifier stages over a text shard set), ``general`` (general text with code removed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

NAME = "textcode"
HELP = "web text for text-code grounding: ingest WARC/WET/JSONL/Parquet, train fastText, staged filtering"
DESCRIPTION = (
    "Text-code grounding data as in the Qwen2.5-Coder report: ingest web text (WARC / WET / JSONL / "
    "Parquet; HTML main text via resiliparse; language id; URL + exact dedup), train a fastText "
    "code-relatedness classifier on seed text, and filter text through N classifier stages. "
    "Sources are files, folders, globs, or built-in local corpora local:<name> (python-docs, "
    "debian-html-docs, debian-changelogs, debian-copyright, common-licenses, math-docstrings), "
    "optionally suffixed @i/n to take the i-th of n hash shards. The same steps run as Dagster assets "
    "(web_text, textcode_classifier, text_code_stage_*, text_code, math_text, general_text)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="textcode_command", metavar="STEP")
    sub.required = True

    b = sub.add_parser("batches", help="list the batch partition keys the given sources define")
    b.add_argument("sources", nargs="+", help="WARC/WET/JSONL/Parquet files, folders or globs")

    loc = sub.add_parser("build-local", help="wrap real local HTML/prose pages into WARC (+ one WET) batches")
    loc.add_argument("--out", required=True, help="folder for local-web-NN.warc.gz / .wet.gz")
    loc.add_argument("--batches", type=int, default=3, help="number of batch files (default 3)")
    loc.add_argument("--pages", type=int, default=200, help="pages per batch (default 200)")

    ing = sub.add_parser("ingest", help="ingest sources into a text shard set (TEXT_SCHEMA + lang, text_hash)")
    ing.add_argument("sources", nargs="+", help="source specs (files, folders, globs, local:<name>[@i/n])")
    ing.add_argument("--out", required=True, help="output shard-set folder")
    ing.add_argument("--min-chars", type=int, default=200, help="drop shorter documents (default 200)")
    ing.add_argument("--languages", default="en", help="comma-separated languages to keep; '' = all (default en)")
    ing.add_argument("--min-lang-score", type=float, default=0.15, help="minimum language-id confidence")
    ing.add_argument("--lid-model", help="fastText language-id model (lid.176.bin); default: built-in fallback")
    ing.add_argument("--text-field", default="text", help="JSONL/Parquet text column (default text)")
    ing.add_argument("--url-field", default="url", help="JSONL/Parquet URL column (default url)")
    ing.add_argument("--max-docs", type=int, help="stop after this many kept documents")
    ing.add_argument("--strip-code", type=float, metavar="MAX_RATIO",
                     help="general text: remove code lines, drop documents whose code share is above MAX_RATIO")

    tr = sub.add_parser("train", help="train a seed fastText classifier and report held-out P/R/F1")
    tr.add_argument("--positives", nargs="+", required=True, help="code-related source specs")
    tr.add_argument("--negatives", nargs="+", required=True, help="general-text source specs")
    tr.add_argument("--out", required=True, help="output folder: model.bin + eval table + _manifest.json")
    tr.add_argument("--holdout", type=float, default=0.2, help="held-out fraction (default 0.2)")
    tr.add_argument("--max-docs-per-class", type=int, default=20_000, help="cap per class (default 20000)")
    tr.add_argument("--epoch", type=int, default=10)
    tr.add_argument("--dim", type=int, default=32)
    tr.add_argument("--bucket", type=int, default=100_000)
    tr.add_argument("--seed", type=int, default=0)

    fl = sub.add_parser("filter", help="run classifier stages over a text shard set")
    fl.add_argument("input", help="text shard set (output of ingest or the web_text asset)")
    fl.add_argument("--model", nargs="+", required=True,
                    help="model.bin files or classifier shard-set folders, one per stage, in order")
    fl.add_argument("--threshold", nargs="+", type=float,
                    help="one threshold per stage (default 0.5, 0.6, 0.7, ...)")
    fl.add_argument("--out", required=True, help="output folder; stage k goes to OUT/stage_k, the last is OUT/final")


def _print_skips(skips) -> None:
    if skips.total:
        print("skipped:")
        for reason, n in sorted(skips.as_dict().items(), key=lambda kv: -kv[1]):
            ex = skips.examples.get(reason, [])
            print(f"  {reason}: {n}" + (f"  (e.g. {ex[0]})" if ex else ""))


def _batches(args: argparse.Namespace) -> int:
    from corpus.textcode.ingest import discover_batches

    for key, path in discover_batches(args.sources).items():
        print(f"{key}\t{path}")
    return 0


def _build_local(args: argparse.Namespace) -> int:
    from corpus.textcode.seeds import build_local_batches

    for path in build_local_batches(args.out, n_batches=args.batches, pages_per_batch=args.pages):
        print(path)
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from corpus import safety
    from corpus.textcode import pipeline
    from corpus.textcode.ingest import ReadOptions, iter_specs
    from corpus.textcode.skips import SkipCounter
    from corpus.textcode.webtext import IngestConfig

    langs = tuple(x.strip() for x in args.languages.split(",") if x.strip())
    cfg = IngestConfig(min_chars=args.min_chars, languages=langs, min_lang_score=args.min_lang_score,
                       lid_model_path=args.lid_model, max_docs=args.max_docs)
    opts = ReadOptions(text_field=args.text_field, url_field=args.url_field)
    skips = SkipCounter()
    config = {"cli": "textcode ingest", "sources": args.sources, **cfg.__dict__, "strip_code": args.strip_code}
    if args.strip_code is not None:
        manifest, stats, sstats = pipeline.general_text(
            args.sources, args.out, cfg, skips, max_code_ratio=args.strip_code, opts=opts, config=config
        )
        print(f"code removal: {sstats.dropped_code_ratio} documents dropped, {sstats.lines_removed} lines removed")
    else:
        try:
            manifest, stats = pipeline.ingest(iter_specs(args.sources, skips, opts), args.out, cfg, skips,
                                              config=config, inputs=safety.local_inputs(args.sources))
        except pipeline.InputsFailedError as exc:
            print(f"codecorpus textcode ingest: {exc}", file=sys.stderr)
            _print_skips(skips)
            return 1
    print(f"{args.out}: {stats.kept} of {stats.docs_seen} documents kept, {manifest.rows} rows, "
          f"{manifest.bytes} bytes; languages {dict(stats.languages.most_common(5))}")
    _print_skips(skips)
    return 0


def _train(args: argparse.Namespace) -> int:
    from corpus.textcode import pipeline
    from corpus.textcode.classifier import TrainParams
    from corpus.textcode.skips import SkipCounter

    examples = os.path.join(args.out, "examples")
    skips = SkipCounter()
    ex_config = {"positives": args.positives, "negatives": args.negatives, "holdout": args.holdout,
                 "cap": args.max_docs_per_class, "seed": args.seed}
    ex_manifest, st = pipeline.build_seed_examples(
        args.positives, args.negatives, examples, skips, holdout_fraction=args.holdout,
        max_docs_per_class=args.max_docs_per_class, seed=args.seed, config=ex_config,
    )
    params = TrainParams(epoch=args.epoch, dim=args.dim, bucket=args.bucket, seed=args.seed)
    model_dir = os.path.join(args.out, "model")
    result = pipeline.train_and_write(
        pipeline.seed_examples(examples, "train"), examples, model_dir, params,
        config={"cli": "textcode train", **params.as_dict()}, input_hashes=[ex_manifest.content_hash],
    )
    print(f"seed documents: positive {dict(st.positives)}, negative {dict(st.negatives)}")
    print(json.dumps(result.report.as_dict()))
    print(f"model: {pipeline.model_path(model_dir)} ({result.model_bytes} bytes)")
    _print_skips(skips)
    return 0


def _filter(args: argparse.Namespace) -> int:
    from corpus import shards
    from corpus.textcode import pipeline

    models = [pipeline.model_path(m) if os.path.isdir(m) else m for m in args.model]
    thresholds = args.threshold or [round(min(0.9, 0.5 + 0.1 * i), 2) for i in range(len(models))]
    if len(thresholds) != len(models):
        print(f"error: {len(models)} models but {len(thresholds)} thresholds", file=sys.stderr)
        return 2
    current = args.input
    if not shards.is_committed(current):
        print(f"error: {current} is not a committed shard set (no _manifest.json)", file=sys.stderr)
        return 2
    for i, (model, thr) in enumerate(zip(models, thresholds), 1):
        out = os.path.join(args.out, "final" if i == len(models) else f"stage_{i}")
        inputs = [shards.read_manifest(current).content_hash]
        _, st = pipeline.run_stage(current, out, model, i, thr, config={"cli": "textcode filter", "model": model,
                                                                         "threshold": thr}, input_hashes=inputs)
        print(f"stage {i} (>= {thr}): kept {st.kept} of {st.docs_in} ({st.retention:.1%}); "
              f"score histogram {st.hist_all}")
        current = out
    print(f"final: {current}")
    return 0


def main(args: argparse.Namespace) -> int:
    handlers = {"batches": _batches, "build-local": _build_local, "ingest": _ingest, "train": _train,
                "filter": _filter}
    from corpus.shards import ShardSetError

    try:
        return handlers[args.textcode_command](args)
    except (FileNotFoundError, ValueError, ShardSetError) as exc:
        print(f"codecorpus textcode {args.textcode_command}: error: {exc}", file=sys.stderr)
        return 2

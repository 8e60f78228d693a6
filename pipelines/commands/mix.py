"""``codecorpus mix``: build the pre-training mixture from a data root without Dagster."""

from __future__ import annotations

import argparse
import json
import sys

NAME = "mix"
HELP = "combine the cleaned sources under a data root into a token-budgeted mixture (70:20:10)"
DESCRIPTION = (
    "Read every committed partition of code_clean, text_code_clean, general_clean, math_clean and\n"
    "synthetic_code under --data, sample each source to its share of the token budget (proxy tokens\n"
    "= ceil(utf8 bytes / 4)) and write the mixture shard set (default <data>/mixture/_all).\n\n"
    "example: codecorpus mix --data ./data --total-tokens 50000000 --seed 1"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--data", help="data root (default: $CODECORPUS_DATA or ./data)")
    p.add_argument("--out", help="output shard set (default: <data>/mixture/_all)")
    p.add_argument("--code-share", type=float, default=0.7)
    p.add_argument("--text-share", type=float, default=0.2)
    p.add_argument("--math-share", type=float, default=0.1)
    p.add_argument("--general-of-text", type=float, default=0.25, help="fraction of the text share for general text")
    p.add_argument("--synthetic-of-code", type=float, default=0.05, help="fraction of the code share for synthetic")
    p.add_argument("--total-tokens", type=int, default=0, help="budget in proxy tokens (0 = size of the corpus)")
    p.add_argument("--max-epochs", type=float, default=4.0, help="most repeats of a source (default 4)")
    p.add_argument("--max-docs-per-input", type=int, default=0, help="cap per upstream partition (0 = none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--count-with-tokenizer", metavar="TOKENIZER_JSON",
                   help="budget with exact token counts of this tokenizer instead of the byte proxy")


def main(args: argparse.Namespace) -> int:
    from corpus import shards
    from corpus.mix import MIX_SCHEMA, Shares, discover_inputs, plan_and_write

    root = shards.abspath(args.data) if args.data else shards.data_root()
    out = args.out or shards.shard_set_path(root, "mixture")
    inputs, status = discover_inputs(root)
    for s, st in status.items():
        print(f"  {s:<10} {st}")
    if not inputs:
        print(f"codecorpus mix: no upstream shard sets under {root}; materialize the cleaning stages first",
              file=sys.stderr)
        return 2
    cfg = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    counter = None
    try:
        if args.count_with_tokenizer:
            from corpus.tokenize.encoder import FastEncoder

            enc = FastEncoder.from_file(args.count_with_tokenizer)
            counter = lambda texts: [len(x) for x in enc.encode_batch(texts)]  # noqa: E731
        with shards.ShardSetWriter(out, MIX_SCHEMA, config=cfg, inputs=[i.path for i in inputs]) as w:
            r = plan_and_write(
                inputs, w,
                shares=Shares(args.code_share, args.text_share, args.math_share, args.general_of_text,
                              args.synthetic_of_code),
                total_tokens=args.total_tokens, max_epochs=args.max_epochs, seed=args.seed,
                max_docs_per_input=args.max_docs_per_input, count_tokens=counter,
            )
            w.extra.update(target_shares=r.shares, targets=r.targets, tokens=r.tokens, actual_shares=r.actual_shares())
    except (ValueError, shards.ShardSetError) as exc:
        print(f"codecorpus mix: {exc}", file=sys.stderr)
        return 2
    for n in r.notes:
        print(f"note: {n}")
    actual = r.actual_shares()
    print(f"{'source':<10} {'target':>8} {'actual':>8} {'tokens':>14} {'docs':>8}")
    for s, share in r.shares.items():
        print(f"{s:<10} {share * 100:7.2f}% {actual.get(s, 0) * 100:7.2f}% {r.tokens.get(s, 0):>14,} {r.docs.get(s, 0):>8}")
    if r.skipped:
        print("skipped:", json.dumps(dict(r.skipped)))
    print(f"wrote {r.rows} rows to {out}")
    return 0

"""``codecorpus tokenize``: train a tokenizer, pack token shards, inspect a token shard set.

Library verb: runs corpus.tokenize directly, no Dagster instance needed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

NAME = "tokenize"
HELP = "train a byte-level BPE, pack documents into token shards (stage 1/2), inspect token shards"
DESCRIPTION = (
    "Tokenizer and token-shard tools outside Dagster.\n\n"
    "  train    train a byte-level BPE (Qwen2 pre-tokenizer + Qwen2.5-Coder special tokens) on the\n"
    "           text/content column of Parquet files\n"
    "  pack     encode + FIM + pack Parquet documents (a mixture, or any folder with a text/content\n"
    "           column) into a train and a validation token shard set\n"
    "  inspect  summarize a token shard set (manifest, per-source tokens) and decode sequences\n\n"
    "examples:\n"
    "  codecorpus tokenize train data/mixture/_all --out tok.json --vocab-size 8192\n"
    "  codecorpus tokenize pack data/mixture/_all --tokenizer tok.json --out /tmp/tok1 --seq-len 512\n"
    "  codecorpus tokenize pack data/mixture/_all --tokenizer tok.json --out /tmp/tok2 --stage 2 --seq-len 1024\n"
    "  codecorpus tokenize inspect /tmp/tok1 --decode 1"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    t = sub.add_parser("train", help="train a byte-level BPE tokenizer.json")
    t.add_argument("input", help="Parquet file, folder or committed shard set with a text/content column")
    t.add_argument("--out", required=True, help="where to write tokenizer.json")
    t.add_argument("--vocab-size", type=int, default=8192, help="vocabulary size incl. special tokens (default 8192)")
    t.add_argument("--sample-bytes", type=int, default=32 << 20, help="train on at most this many bytes (32 MB)")
    t.add_argument("--min-frequency", type=int, default=2)
    k = sub.add_parser("pack", help="encode, FIM and pack documents into token shards")
    k.add_argument("input", help="Parquet file, folder or committed shard set (mixture rows or text/content rows)")
    k.add_argument("--tokenizer", required=True, help="tokenizer.json (must hold the Qwen2.5-Coder special tokens)")
    k.add_argument("--out", required=True, help="output token shard set folder (replaced atomically)")
    k.add_argument("--val-out", help="validation shard set folder (default: OUT_val)")
    k.add_argument("--stage", type=int, choices=[1, 2], default=1, help="1 = file-level + FIM, 2 = repo-level")
    k.add_argument("--seq-len", type=int, default=512)
    k.add_argument("--fim-rate", type=float, default=0.5)
    k.add_argument("--spm-rate", type=float, default=0.5)
    k.add_argument("--val-fraction", type=float, default=0.01)
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--threads", type=int, default=2, help="encoder threads (default 2)")
    k.add_argument("--long-files", choices=["split", "truncate"], default="split", help="stage 2: files > seq_len")
    i = sub.add_parser("inspect", help="summarize a token shard set and decode sequences")
    i.add_argument("path", help="token shard set folder")
    i.add_argument("--tokenizer", help="tokenizer.json for --decode (default: none)")
    i.add_argument("--decode", type=int, default=0, metavar="N", help="print the first N sequences as text")


def _texts(path: str):
    from corpus import shards

    for f in shards.list_parquet_inputs(path):
        for b in shards.iter_parquet_file(f):
            col = "text" if "text" in b.schema.names else "content" if "content" in b.schema.names else None
            if col is None:
                raise shards.ShardSetError(f"{f}: needs a 'text' or 'content' column (has {b.schema.names})")
            for t in b.column(col).to_pylist():
                if t:
                    yield t


def _train(args: argparse.Namespace) -> int:
    from corpus.tokenize.encoder import sanitize
    from corpus.tokenize.tokenizer import sample_texts, train_bpe

    t0 = time.time()
    sample = list(sample_texts((sanitize(t)[0] for t in _texts(args.input)), args.sample_bytes))
    if not sample:
        print(f"tokenize train: no non-empty documents in {args.input}", file=sys.stderr)
        return 2
    tok = train_bpe(sample, args.vocab_size, args.min_frequency)
    from corpus import safety

    with safety.atomic_file(args.out, "w") as fh:
        fh.write(tok.to_str(pretty=True))  # the bytes tok.save() writes
    print(f"trained vocab {tok.get_vocab_size()} on {len(sample)} documents in {time.time() - t0:.1f}s -> {args.out}")
    return 0


def _pack(args: argparse.Namespace) -> int:
    from corpus.tokenize import build
    from corpus.tokenize.encoder import FastEncoder

    enc = FastEncoder.from_file(args.tokenizer, threads=args.threads)
    s = build.StageSettings(seq_len=args.seq_len, fim_rate=args.fim_rate, spm_rate=args.spm_rate, seed=args.seed,
                            val_fraction=args.val_fraction, long_files=args.long_files)
    files = build.mixture_files(args.input)
    cfg = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    fn = build.build_stage1 if args.stage == 1 else build.build_stage2
    t0 = time.time()
    r = fn(files, enc, args.out, args.val_out or f"{args.out.rstrip('/')}_val", s, config=cfg,
           inputs=[args.input, args.tokenizer])
    dt = time.time() - t0
    total = sum(r.train_tokens.values()) + sum(r.val_tokens.values())
    print(f"stage {args.stage}: {r.train_seq} train + {r.val_seq} val sequences of {args.seq_len}, "
          f"{total:,} tokens in {dt:.1f}s ({total / max(dt, 1e-9):,.0f} tokens/s)")
    print("documents per source:", json.dumps(dict(r.documents)))
    print("train tokens per source:", json.dumps({k: v for k, v in r.train_tokens.items() if v}))
    if r.fim:
        print("fim:", json.dumps(dict(r.fim)))
    if r.skipped:
        print("skipped:", json.dumps({k: v for k, v in r.skipped.items() if v}))
    if r.surrogates_replaced:
        print(f"replaced {r.surrogates_replaced} lone surrogate(s) with U+FFFD")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from corpus.tokenize.encoder import FastEncoder
    from corpus.tokenize.format import TokenShards, validate

    ts = TokenShards(args.path)
    ex = ts.extra
    print(f"{args.path}: {len(ts)} sequences x {ts.seq_len} tokens, {len(ts.shards)} shard(s), vocab {ex['vocab_size']}")
    for k in ("tokens_per_source", "loss_tokens_per_source", "docs_per_source", "fim", "skipped"):
        if ex.get(k):
            print(f"  {k}: {json.dumps({a: b for a, b in ex[k].items() if b})}")
    problems = validate(args.path)
    print("  well-formed" if not problems else "  PROBLEMS:\n    " + "\n    ".join(problems))
    if args.decode:
        if not args.tokenizer:
            print("--decode needs --tokenizer", file=sys.stderr)
            return 2
        enc = FastEncoder.from_file(args.tokenizer)
        for n in range(min(args.decode, len(ts))):
            print(f"--- sequence {n}")
            print(enc.decode(ts[n].tokens.tolist()))
    return 1 if problems else 0


def main(args: argparse.Namespace) -> int:
    from corpus.shards import ShardSetError
    from corpus.tokenize.tokenizer import TokenizerError

    try:
        return {"train": _train, "pack": _pack, "inspect": _inspect}[args.action](args)
    except (TokenizerError, ShardSetError, ValueError) as exc:
        print(f"codecorpus tokenize {args.action}: {exc}", file=sys.stderr)
        return 2

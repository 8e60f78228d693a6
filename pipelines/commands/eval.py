"""``codecorpus eval``: held-out loss per source, FIM exact match and HumanEval pass@1 of a model."""

from __future__ import annotations

import argparse
import json
import os
import sys

NAME = "eval"
HELP = "evaluate a model folder or checkpoint: held-out loss, FIM exact match, HumanEval pass@1"
DESCRIPTION = (
    "Evaluate a model folder (config.json + model.safetensors: a `codecorpus train --out` folder, "
    "its model/ or checkpoints/.../step-N, or <data>/pretrain_stage2/_all). With --data, scores "
    "held-out loss/perplexity per source (file, fim, repo) and FIM exact match on the sequences "
    "the training run held out; with a tokenizer (--tokenizer, or tokenizer.json beside the model), "
    "runs HumanEval pass@1 with generated code executed in the sandbox. Example: codecorpus eval "
    "--checkpoint runs/tiny --data data/tokens_stage1/_all --tokenizer data/tokenizer/_all/tokenizer.json"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="model folder, checkpoint folder or `train --out` folder")
    p.add_argument("--data", nargs="*", default=[], help="token shard set(s) to score held-out loss / FIM on")
    p.add_argument("--heldout-seqs", type=int, default=64,
                   help="sequences scored per set (the run's held-out rows when recorded, else the last N)")
    p.add_argument("--fim-samples", type=int, default=50, help="max FIM samples decoded (default 50)")
    p.add_argument("--tokenizer", help="tokenizer.json for HumanEval (default: beside the model, if any)")
    p.add_argument("--humaneval", type=int, default=164, help="first N HumanEval problems (0 skips; default 164)")
    p.add_argument("--humaneval-file", help="HumanEval JSONL(.gz) (default: the bundled copy)")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--workers", type=int, default=2, help="sandbox workers")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-verify", action="store_true", help="skip the checkpoint sha256 check")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")


def resolve_model_dir(path: str) -> str:
    """The folder holding config.json: ``path`` itself, ``path/model`` or the newest checkpoint."""
    from training import checkpoint as ckpt

    if os.path.exists(os.path.join(path, "config.json")):
        return path
    if os.path.exists(os.path.join(path, "model", "config.json")):
        return os.path.join(path, "model")
    runs = os.path.join(path, "checkpoints")
    if os.path.isdir(runs):
        found = [c for r in sorted(os.listdir(runs)) for c in ckpt.list_checkpoints(os.path.join(runs, r))]
        if found:
            return max(found)[1]
    raise FileNotFoundError(f"{path}: no config.json here, in model/ or under checkpoints/")


def main(args: argparse.Namespace) -> int:
    import numpy as np
    from tokenizers import Tokenizer

    from corpus import shards
    from training import checkpoint as ckpt
    from training import humaneval as he
    from training.data import TokenShardDataset, TokenShardError
    from training.evaluate import fim_exact_match, heldout_by_source
    from training.pretrain import resolve_device

    try:
        model_dir = resolve_model_dir(os.path.abspath(args.checkpoint))
        model, cfg, state = ckpt.load_checkpoint(model_dir, device=resolve_device(args.device),
                                                 check=not args.no_verify and shards.is_committed(model_dir))
    except (FileNotFoundError, ckpt.CheckpointError) as exc:
        print(f"codecorpus eval: {exc}", file=sys.stderr)
        return 2
    print(f"model {model_dir}: {cfg.num_params() / 1e6:.2f}M params, vocab {cfg.vocab_size}")
    results: dict = {"model": model_dir, "heldout": {}, "fim": {}, "humaneval": None}
    span = (state or {}).get("heldout")
    for data in args.data:
        try:
            ds = TokenShardDataset(os.path.abspath(data))
            ds.check_compatible(cfg.vocab_size, max_positions=cfg.max_position_embeddings, scan_ids=False)
        except (TokenShardError, shards.ShardSetError) as exc:
            print(f"codecorpus eval: {exc}", file=sys.stderr)
            return 2
        if span and span[1] == len(ds):
            rows = np.arange(span[0], min(span[1], span[0] + args.heldout_seqs))
            note = "held out by the training run"
        else:
            rows = np.arange(max(0, len(ds) - args.heldout_seqs), len(ds))
            note = "last rows (not recorded as held out: may have been trained on)"
        by_source = heldout_by_source(model, ds, rows)
        fim = fim_exact_match(model, ds, rows, max_samples=args.fim_samples)
        results["heldout"][data] = by_source
        results["fim"][data] = {"samples": fim.samples, "exact_match": fim.exact_match, "mode": fim.mode,
                                "skipped": dict(fim.skipped)}
        print(f"{data}: {len(rows)} sequences, {note}")
        for source, r in by_source.items():
            print(f"  {source:5s} loss {r['loss']:.4f}  ppl {r['perplexity']:.2f}  tokens {r['tokens']}")
        print(f"  FIM exact match {fim.exact_match:.3f} over {fim.samples} {fim.mode} samples"
              + (f" (skipped: {dict(fim.skipped)})" if fim.skipped else ""))
    tok_path = args.tokenizer or os.path.join(model_dir, "tokenizer.json")
    if args.humaneval > 0:
        if not os.path.exists(tok_path):
            print(f"HumanEval skipped: no tokenizer ({tok_path} missing; pass --tokenizer)")
        else:
            try:
                problems = he.load_problems(args.humaneval_file, limit=args.humaneval)
                tok = Tokenizer.from_file(tok_path)
                r = he.evaluate(problems, he.ModelCompleter(model, tok, max_new_tokens=args.max_new_tokens),
                                executor=he.sandbox_executor(workers=args.workers))
            except (FileNotFoundError, ValueError) as exc:
                print(f"codecorpus eval: HumanEval: {exc}", file=sys.stderr)
                return 2
            results["humaneval"] = {"pass_at_1": r.pass_at_1, "passed": r.passed, "total": r.total,
                                    "statuses": dict(r.statuses)}
            print(f"HumanEval pass@1 {r.pass_at_1:.3f} ({r.passed}/{r.total}); statuses {dict(r.statuses)}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2, default=float)
    return 0

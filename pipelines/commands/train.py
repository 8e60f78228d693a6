"""``codecorpus train``: pretrain a Qwen2 model on a token shard set, without Dagster."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

NAME = "train"
HELP = "pretrain a Qwen2 model on a token shard set (resumable; CPU or CUDA)"
DESCRIPTION = (
    "Train a Qwen2 decoder on a codecorpus-tokens-v1 shard set (the output of tokens_stage1 / "
    "tokens_stage2, e.g. data/tokens_stage1/_all). Checkpoints go to OUT/checkpoints/ and a re-run "
    "with the same settings resumes exactly where it stopped; the final model is published to "
    "OUT/model/ (config.json + model.safetensors loadable by transformers, training_state.pt, "
    "loss_curve.png, history.json). Example: codecorpus train --data data/tokens_stage1/_all "
    "--preset tiny --steps 300 --out runs/tiny"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="token shard set folder (has _manifest.json)")
    p.add_argument("--out", required=True, help="output folder: checkpoints/ and model/ are created inside")
    p.add_argument("--preset", default="tiny", help="model preset: tiny, small, 0.5B, 1.5B, 3B, 7B, 14B, 32B")
    p.add_argument("--init-from", help="continue from this model folder instead of a fresh preset (stage 2)")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps (default 300)")
    p.add_argument("--micro-batch-size", type=int, default=16, help="sequences per micro-batch (default 16)")
    p.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step (default 1)")
    p.add_argument("--lr", type=float, default=1e-2, help="peak learning rate (default 1e-2, for tiny)")
    p.add_argument("--warmup-steps", type=int, default=10)
    p.add_argument("--min-lr-ratio", type=float, default=0.1, help="cosine floor as a fraction of --lr")
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0, help="max gradient norm (0 disables)")
    p.add_argument("--rope-theta", type=float, help="RoPE base (default: the preset's 1e6 / the init model's)")
    p.add_argument("--seq-len", type=int, help="expected seq_len; refuses shards packed differently")
    p.add_argument("--heldout", type=int, default=16, help="last N sequences held out for evaluation (default 16)")
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints (0: only the last)")
    p.add_argument("--keep-checkpoints", type=int, default=2)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1 ...")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                   help="auto: bf16 autocast on CUDA, fp32 on CPU")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--activation-checkpointing", action="store_true", help="recompute layer activations in backward")
    p.add_argument("--loss-chunk-tokens", type=int, default=0,
                   help="compute the cross-entropy in chunks of N tokens (saves the [tokens, vocab] logits memory)")
    p.add_argument("--no-doc-mask", action="store_true", help="let packed documents attend to each other")
    p.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints and start fresh")
    p.add_argument("--threads", type=int, help="torch CPU threads (1 is fastest on busy shared machines)")


def main(args: argparse.Namespace) -> int:
    import torch

    from corpus.shards import ShardSetError
    from training import checkpoint as ckpt
    from training.data import TokenShardDataset, TokenShardError
    from training.pretrain import NonFiniteLossError, TrainConfig, train, unigram_entropy
    from training.report import plot_curves

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {"rope_theta": args.rope_theta} if args.rope_theta else {}
    cfg = TrainConfig(
        preset=args.preset, init_from=args.init_from, model_overrides=overrides, seq_len=args.seq_len,
        steps=args.steps, micro_batch_size=args.micro_batch_size, grad_accum=args.grad_accum, lr=args.lr,
        min_lr_ratio=args.min_lr_ratio, warmup_steps=args.warmup_steps, weight_decay=args.weight_decay,
        grad_clip=args.grad_clip, seed=args.seed, doc_mask=not args.no_doc_mask, heldout_seqs=args.heldout,
        device=args.device, precision=args.precision, compile=args.compile,
        activation_checkpointing=args.activation_checkpointing, loss_chunk_tokens=args.loss_chunk_tokens,
        checkpoint_every=args.checkpoint_every,
        keep_checkpoints=args.keep_checkpoints, log_every=args.log_every,
    )
    out = os.path.abspath(args.out)
    try:
        res = train(cfg, os.path.abspath(args.data), os.path.join(out, "checkpoints"),
                    log=lambda m: print(m, flush=True), resume=not args.no_resume)
        ds = TokenShardDataset(os.path.abspath(args.data))
    except (TokenShardError, ShardSetError, ckpt.CheckpointError, NonFiniteLossError, ValueError) as exc:
        print(f"codecorpus train: {exc}", file=sys.stderr)
        return 2
    h = unigram_entropy(ds, _sample(res.heldout[0]))
    final = res.final | {"unigram_entropy": h}
    png = plot_curves(res.history, ("loss", "eval_loss"), "training loss", {"unigram entropy": h})
    state = os.path.join(res.checkpoint, ckpt.STATE_FILE) if res.checkpoint else None
    model_dir = os.path.join(out, "model")
    ckpt.save_model_set(
        model_dir, res.model, res.model_cfg, config={"train": cfg.__dict__}, input_hashes=[ds.content_hash],
        extra={"final": final, "heldout": {"data": list(res.heldout)}, "data": os.path.abspath(args.data)},
        files={"loss_curve.png": png, "history.json": json.dumps(res.history).encode()},
        writers={ckpt.STATE_FILE: (lambda dst: shutil.copyfile(state, dst))} if state else None,
    )
    mfu = f"{final['mfu'] * 100:.1f}%" if final.get("mfu") is not None else "n/a (CPU)"
    print(f"done: {final['steps']} steps, final loss {final.get('final_loss', float('nan')):.4f} "
          f"(unigram entropy {h:.4f}), held-out loss {final.get('heldout_loss', float('nan')):.4f}, "
          f"{final.get('tokens_per_s') or 0:,.0f} tok/s, MFU {mfu}")
    print(f"model: {model_dir}")
    return 0


def _sample(n_train: int, cap: int = 2000):
    import numpy as np

    return np.linspace(0, max(0, n_train - 1), min(n_train, cap)).astype(np.int64)

"""The pretraining loop: AdamW, warmup + cosine, gradient accumulation and clipping, bf16
autocast on GPU, optional torch.compile / activation checkpointing, exact resume.

One function, :func:`train`, used by both pretraining stages (stage 1 file-level, stage 2
repo-level from the stage-1 weights with a longer ``seq_len`` and a larger RoPE base), by the
``codecorpus train`` CLI and by the benchmark. Every ``checkpoint_every`` steps it commits a
checkpoint holding model, optimizer, scheduler, sampler position and RNG states, so a resumed
run continues bit-for-bit where a straight run would be.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from corpus import shards
from corpus.shards import stable_hash
from training import checkpoint as ckpt
from training.data import Batch, BatchSampler, TokenShardDataset, split_indices
from training.mfu import flops_per_token, peak_flops
from training.model import ModelConfig, Qwen2ForCausalLM, count_parameters, get_preset

# Settings that do not change the trained weights (so changing them still resumes).
_NON_SEMANTIC = {"log_every", "checkpoint_every", "keep_checkpoints", "device", "compile", "eval_every", "eval_data",
                 "eval_max_seqs"}


@dataclass
class TrainConfig:
    preset: str = "tiny"
    init_from: str | None = None  # model folder to continue from (stage 2 starts from stage 1)
    model_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. {"rope_theta": 1e6}
    seq_len: int | None = None  # None: the shards' seq_len; otherwise must match it
    steps: int = 200
    micro_batch_size: int = 8
    grad_accum: int = 1
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 20
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    seed: int = 0
    doc_mask: bool = True
    heldout_seqs: int = 0  # last N sequences never trained on (evaluation)
    eval_data: str | None = None  # a separate validation token set (e.g. tokens_stage1_val) to evaluate on
    eval_max_seqs: int = 64
    device: str = "auto"
    precision: str = "auto"  # auto | bf16 | fp32
    compile: bool = False
    activation_checkpointing: bool = False
    loss_chunk_tokens: int = 0  # >0: cross-entropy in chunks of this many tokens (big vocab, long seq)
    checkpoint_every: int = 0  # 0: only the final checkpoint
    keep_checkpoints: int = 2
    log_every: int = 10
    eval_every: int = 0

    def run_key(self, data_hash: str) -> str:
        semantic = {k: v for k, v in asdict(self).items() if k not in _NON_SEMANTIC}
        return stable_hash({"train": semantic, "data": data_hash})


class NonFiniteLossError(RuntimeError):
    """Loss or gradient norm became NaN/inf; the message names the step, micro-batch and rows."""


@dataclass
class TrainResult:
    model: Qwen2ForCausalLM
    model_cfg: ModelConfig
    history: list[dict[str, Any]]
    final: dict[str, Any]
    checkpoint: str | None
    resumed_from: int
    heldout: tuple[int, int]  # [start, end) rows of the data set held out from training


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision in ("bf16", "auto"):
        return torch.bfloat16
    raise ValueError(f"precision must be auto, bf16 or fp32, not {precision!r}")


def cosine_lr(step: int, steps: int, warmup: int, min_ratio: float) -> float:
    """LR multiplier: linear warmup to 1 then cosine decay to ``min_ratio`` at ``steps``.

    The one schedule of pretraining, SFT and DPO (each wraps it in a ``LambdaLR``)."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    """Linear warmup to ``lr`` then cosine decay to ``min_lr_ratio * lr`` at ``steps``."""

    def f(step: int) -> float:
        return cosine_lr(step, cfg.steps, cfg.warmup_steps, cfg.min_lr_ratio)

    return f


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not norms, biases)."""
    params = {id(p): p for p in model.parameters() if p.requires_grad}.values()
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8, fused=fused)


def token_loss_sum(model: torch.nn.Module, batch: Batch, doc_mask: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of masked next-token cross-entropies, number of masked tokens)."""
    logits = model(batch.input_ids, doc_ids=batch.doc_ids if doc_mask else None)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), batch.targets.reshape(-1), reduction="none")
    m = batch.loss_mask.reshape(-1)
    return (ce * m).sum(), m.sum()


def chunked_loss_sum(loss_fn: Callable[..., torch.Tensor], batch: Batch, doc_mask: bool,
                     chunk_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """As token_loss_sum through ``model.masked_loss_sum`` (chunked logits, see model.py)."""
    lsum = loss_fn(batch.input_ids, batch.targets, batch.loss_mask, batch.doc_ids if doc_mask else None,
                   chunk_tokens)
    return lsum, batch.loss_mask.sum()


def _rng_state() -> dict[str, Any]:
    st: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(st["torch"].cpu())
    random.setstate(st["python"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in st["cuda"]])


def _to_tuple(obj: Any) -> Any:
    """torch.load(weights_only) returns lists for tuples; random.setstate needs tuples."""
    return tuple(_to_tuple(x) for x in obj) if isinstance(obj, list | tuple) else obj


def build_model(cfg: TrainConfig, ds: TokenShardDataset, device: torch.device) -> tuple[Qwen2ForCausalLM, ModelConfig]:
    """A fresh model with the shards' vocabulary, or the ``init_from`` weights (+ overrides)."""
    overrides = dict(cfg.model_overrides)
    if cfg.init_from:
        # Our own model sets are verified against their manifest; a plain HF folder is loaded as is.
        check = shards.is_committed(cfg.init_from)
        model, mcfg, _ = ckpt.load_checkpoint(cfg.init_from, device=device, check=check, **overrides)
    else:
        overrides.setdefault("vocab_size", ds.vocab_size)
        overrides.setdefault("max_position_embeddings", max(ds.seq_len, 32))
        mcfg = get_preset(cfg.preset, **overrides)
        torch.manual_seed(cfg.seed)
        with torch.device(device):
            model = Qwen2ForCausalLM(mcfg)
    model.activation_checkpointing = cfg.activation_checkpointing
    return model, mcfg


@torch.no_grad()
def heldout_loss(model: torch.nn.Module, ds: TokenShardDataset, rows: np.ndarray, batch_size: int,
                 device: torch.device, doc_mask: bool, amp: torch.dtype | None = None) -> tuple[float, int]:
    """Mean next-token loss over ``rows`` and the number of tokens scored."""
    was = model.training
    model.eval()
    total, count = 0.0, 0
    for s in range(0, len(rows), batch_size):
        b = ds.batch(rows[s:s + batch_size]).to(device)
        with torch.autocast(device.type, dtype=amp) if amp else nullcontext():
            lsum, n = token_loss_sum(model, b, doc_mask)
        total += float(lsum)
        count += int(n)
    model.train(was)
    return (total / count if count else float("nan")), count


def check_output_dir(out: str, data_path: str) -> None:
    """Refuse an output overlapping the training data, or one that cannot take files."""
    from corpus import safety

    safety.check_output(out, [data_path], setting="checkpoint folder")
    safety.check_writable(out, setting="checkpoint folder")


def train(cfg: TrainConfig, data_path: str, ckpt_root: str | None, log: Callable[[str], None] = print,
          resume: bool = True) -> TrainResult:
    """Train on the token shard set at ``data_path``; checkpoints under ``ckpt_root/run-<key>``.

    An unwritable ``ckpt_root`` (read-only, permission, full disk) fails before step 1."""
    if ckpt_root:
        check_output_dir(ckpt_root, data_path)
    device = resolve_device(cfg.device)
    amp = autocast_dtype(device, cfg.precision)
    ds = TokenShardDataset(data_path)
    key = cfg.run_key(ds.content_hash)
    run_dir = os.path.join(ckpt_root, f"run-{key[:12]}") if ckpt_root else None

    resume_path = ckpt.latest_checkpoint(run_dir) if (run_dir and resume) else None
    if resume_path:
        model, mcfg, state = ckpt.load_checkpoint(resume_path, device=device, check=False)
        model.activation_checkpointing = cfg.activation_checkpointing
        if state is None:
            raise ckpt.CheckpointError(f"{resume_path}: no {ckpt.STATE_FILE}; cannot resume from it")
    else:
        model, mcfg = build_model(cfg, ds, device)
        state = None
    ds.check_compatible(mcfg.vocab_size, seq_len=cfg.seq_len, max_positions=mcfg.max_position_embeddings,
                        scan_ids=state is None)
    train_rows, held_rows = split_indices(len(ds), cfg.heldout_seqs)
    eval_ds, eval_rows = ds, held_rows[: cfg.eval_max_seqs]
    if cfg.eval_data:
        eval_ds = TokenShardDataset(cfg.eval_data)
        eval_ds.check_compatible(mcfg.vocab_size, seq_len=ds.seq_len, scan_ids=False)
        eval_rows = np.arange(min(len(eval_ds), cfg.eval_max_seqs))
    sampler = BatchSampler(train_rows, cfg.micro_batch_size, seed=cfg.seed)
    model.train()
    opt = make_optimizer(model, cfg, device)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
    history: list[dict[str, Any]] = []
    step = 0
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        sampler.load_state_dict(state["sampler"])
        _set_rng_state({**state["rng"], "python": _to_tuple(state["rng"]["python"])})
        history = list(state["history"])
        step = int(state["step"])
        log(f"resumed from {resume_path} at step {step}")
    if cfg.loss_chunk_tokens:
        loss_fn = torch.compile(model.masked_loss_sum) if cfg.compile else model.masked_loss_sum

        def step_loss(b: Batch) -> tuple[torch.Tensor, torch.Tensor]:
            return chunked_loss_sum(loss_fn, b, cfg.doc_mask, cfg.loss_chunk_tokens)
    else:
        fwd = torch.compile(model) if cfg.compile else model

        def step_loss(b: Batch) -> tuple[torch.Tensor, torch.Tensor]:
            return token_loss_sum(fwd, b, cfg.doc_mask)

    seq = ds.seq_len - 1
    fpt = flops_per_token(mcfg, seq)
    peak = peak_flops(device, amp or torch.float32)
    n_params = count_parameters(model)
    log(f"model {cfg.preset if not cfg.init_from else cfg.init_from}: {n_params / 1e6:.2f}M params, "
        f"{mcfg.num_layers} layers, vocab {mcfg.vocab_size}; data {len(train_rows)} train / {len(held_rows)} "
        f"held-out sequences of {ds.seq_len}; device {device}, {'bf16 autocast' if amp else 'fp32'}")

    def save(at_step: int) -> str | None:
        if run_dir is None:
            return None
        path = ckpt.step_dir(run_dir, at_step)
        state = {"step": at_step, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                 "sampler": sampler.state_dict(), "rng": _rng_state(), "history": history,
                 "train_config": asdict(cfg), "heldout": [int(len(train_rows)), int(len(ds))]}
        ckpt.save_model_set(path, model, mcfg, state=state, config={"run_key": key, "step": at_step},
                            input_hashes=[ds.content_hash], extra={"step": at_step, "run_key": key})
        ckpt.prune(run_dir, cfg.keep_checkpoints)
        return path

    last_ckpt = resume_path
    tokens_seen = history[-1]["tokens"] if history else 0
    t_window, tok_window = time.perf_counter(), 0
    autocast = (lambda: torch.autocast(device.type, dtype=amp)) if amp else nullcontext
    while step < cfg.steps:
        micro = [ds.batch(sampler.next()) for _ in range(cfg.grad_accum)]
        n_tokens = sum(int(b.loss_mask.sum()) for b in micro)
        denom = max(1, n_tokens)
        losses = []
        for b in micro:
            b = b.to(device)
            with autocast():
                lsum, _ = step_loss(b)
            loss = lsum / denom
            loss.backward()
            losses.append(loss.detach())
        step_losses = torch.stack(losses)
        loss_val = float(step_losses.sum())
        if not math.isfinite(loss_val):
            bad = int(torch.nonzero(~torch.isfinite(step_losses))[0]) if (~torch.isfinite(step_losses)).any() else 0
            opt.zero_grad(set_to_none=True)
            raise NonFiniteLossError(
                f"non-finite loss ({loss_val}) at step {step + 1}, micro-batch {bad} (data rows "
                f"{micro[bad].indices.tolist()}); stopped without updating. Last checkpoint kept: "
                f"{last_ckpt or 'none'}. Lower lr ({cfg.lr}) or check those rows."
            )
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else 1e30))
        if not math.isfinite(grad_norm):
            opt.zero_grad(set_to_none=True)
            raise NonFiniteLossError(
                f"non-finite gradient norm at step {step + 1} (loss {loss_val:.4f}, data rows "
                f"{np.concatenate([b.indices for b in micro]).tolist()}); stopped without updating. "
                f"Last checkpoint kept: {last_ckpt or 'none'}."
            )
        lr = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        step_tokens = len(micro) * micro[0].input_ids.numel()
        tokens_seen += step_tokens
        tok_window += step_tokens
        now = time.perf_counter()
        rec: dict[str, Any] = {"step": step, "loss": loss_val, "lr": lr, "grad_norm": grad_norm, "tokens": tokens_seen}
        if step % max(1, cfg.log_every) == 0 or step == cfg.steps:
            if device.type == "cuda":
                torch.cuda.synchronize()
                now = time.perf_counter()
            tps = tok_window / max(now - t_window, 1e-9)
            rec["tokens_per_s"] = tps
            rec["mfu"] = tps * fpt / peak if peak else None
            mfu_s = f" mfu {rec['mfu'] * 100:.1f}%" if rec["mfu"] is not None else ""
            log(f"step {step}/{cfg.steps} loss {loss_val:.4f} lr {lr:.2e} grad_norm {grad_norm:.3f} "
                f"tok/s {tps:,.0f}{mfu_s}")
            t_window, tok_window = time.perf_counter(), 0
        if cfg.eval_every and eval_rows.size and step % cfg.eval_every == 0:
            rec["eval_loss"], _ = heldout_loss(model, eval_ds, eval_rows, cfg.micro_batch_size, device, cfg.doc_mask,
                                               amp)
            log(f"step {step} held-out loss {rec['eval_loss']:.4f}")
        history.append(rec)
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
            last_ckpt = save(step)
    if run_dir is not None and (last_ckpt is None or not last_ckpt.endswith(f"step-{step:08d}")):
        last_ckpt = save(step)

    final: dict[str, Any] = {"steps": step, "params": n_params, "tokens": tokens_seen}
    if history:
        tail = history[-max(1, min(10, len(history))):]
        final["final_loss"] = float(np.mean([h["loss"] for h in tail]))
        speeds = [h["tokens_per_s"] for h in history if h.get("tokens_per_s")]
        final["tokens_per_s"] = float(speeds[-1]) if speeds else None
        mfus = [h["mfu"] for h in history if h.get("mfu") is not None]
        final["mfu"] = float(mfus[-1]) if mfus else None
    if eval_rows.size:
        final["heldout_loss"], final["heldout_tokens"] = heldout_loss(
            model, eval_ds, eval_rows, cfg.micro_batch_size, device, cfg.doc_mask, amp)
    return TrainResult(model, mcfg, history, final, last_ckpt, int(state["step"]) if state else 0,
                       (int(len(train_rows)), int(len(ds))))


def unigram_entropy(ds: TokenShardDataset, rows: np.ndarray | None = None, chunk: int = 256) -> float:
    """Entropy (nats/token) of the masked target tokens' unigram distribution: the loss a model
    that ignores context would reach; training must get well below it."""
    counts = np.zeros(ds.vocab_size, dtype=np.int64)
    rows = np.arange(len(ds)) if rows is None else rows
    for s in range(0, len(rows), chunk):
        tok, mask, _ = ds.rows(rows[s:s + chunk])
        t = tok[:, 1:][mask[:, 1:].astype(bool)]
        counts += np.bincount(t.astype(np.int64), minlength=ds.vocab_size)[: ds.vocab_size]
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())

"""Pretraining assets: ``pretrain_stage1`` (file-level), ``pretrain_stage2`` (repo-level),
``model_eval`` (held-out loss per source, FIM exact match, HumanEval pass@1).

Thin wrappers around training/: read config + resources, train with checkpoints under
``<root>/<asset>/_checkpoints`` (so a killed run resumes exactly), publish the final model as
``<root>/<asset>/_all`` (config.json + model.safetensors + training_state.pt + loss curve).
"""

# No `from __future__ import annotations`: Dagster resolves Config annotations at decoration time.
import base64
import json
import os
import shutil
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import dagster as dg
import numpy as np
import pyarrow as pa
from pydantic import Field

from assets.common import counts_table, manifest_metadata, md_table, sparkline, upstream_hashes
from assets.resources import CorpusResource
from corpus import shards

if TYPE_CHECKING:  # torch and training/ load only when a training asset runs (not at definition load)
    from training.data import TokenShardDataset
    from training.pretrain import TrainConfig

GROUP = "train"
POOL = "gpu"
CHECKPOINTS = "_checkpoints"


class PretrainConfig(dg.Config):
    """Knobs of one pretraining stage; `tiny` profile caps steps so tests take seconds."""

    preset: str = Field(default="tiny", description="model preset: tiny, small, 0.5B, 1.5B, 3B, 7B, 14B, 32B")
    steps: int = Field(default=300, description="optimizer steps (tiny profile: at most 40)")
    micro_batch_size: int = 8
    grad_accum: int = 1
    lr: float = 1e-2
    min_lr_ratio: float = 0.1
    warmup_steps: int = 10
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    rope_theta: float = Field(default=10_000.0, description="RoPE base (report: 1e4 stage 1, 1e6 stage 2)")
    seed: int = 0
    doc_mask: bool = Field(default=True, description="mask attention at document boundaries in packed rows")
    heldout_seqs: int = Field(default=32, description="last N sequences held out for evaluation, used only when "
                                                       "the tokens asset wrote no <tokens>_val set")
    threads: int = Field(default=0, description="torch CPU threads (0: torch default; 1 is best on a busy machine)")
    checkpoint_every: int = 100
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    activation_checkpointing: bool = False
    loss_chunk_tokens: int = Field(default=0, description="cross-entropy in chunks of N tokens (0: whole logits)")


class Stage2Config(PretrainConfig):
    steps: int = 100
    lr: float = 3e-3
    warmup_steps: int = 5
    rope_theta: float = 1_000_000.0
    micro_batch_size: int = 4


def train_config(cfg: PretrainConfig, tiny: bool, **extra: Any) -> "TrainConfig":
    from training.pretrain import TrainConfig

    steps = min(cfg.steps, 40) if tiny else cfg.steps
    return TrainConfig(
        preset=cfg.preset, steps=steps, micro_batch_size=cfg.micro_batch_size, grad_accum=cfg.grad_accum,
        lr=cfg.lr, min_lr_ratio=cfg.min_lr_ratio, warmup_steps=min(cfg.warmup_steps, max(1, steps // 4)),
        weight_decay=cfg.weight_decay, grad_clip=cfg.grad_clip, seed=cfg.seed, doc_mask=cfg.doc_mask,
        heldout_seqs=min(cfg.heldout_seqs, 8) if tiny else cfg.heldout_seqs,
        checkpoint_every=min(cfg.checkpoint_every, 20) if tiny else cfg.checkpoint_every,
        device=cfg.device, precision=cfg.precision, compile=cfg.compile,
        activation_checkpointing=cfg.activation_checkpointing, loss_chunk_tokens=cfg.loss_chunk_tokens,
        log_every=10, **extra,
    )


def png_markdown(png: bytes, alt: str) -> dg.MetadataValue:
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def history_table(history: list[dict[str, Any]], cols: tuple[str, ...], rows: int = 12) -> dg.MetadataValue:
    every = max(1, len(history) // rows)
    picked = [h for i, h in enumerate(history) if i % every == 0 or i == len(history) - 1]

    def fmt(v: Any) -> Any:
        return float(f"{v:.4g}") if isinstance(v, float) else v

    return md_table(cols, [[fmt(h.get(c)) for c in cols] for h in picked])


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    return f"{v * 100:.1f}%" if pct else f"{v:.4g}"


def val_set(corpus: CorpusResource, tokens_asset: str) -> str | None:
    """``<tokens>_val``: documents the tokens stage held out (never in the training rows)."""
    path = corpus.path(f"{tokens_asset}_val")
    m = shards.read_manifest(path)
    return path if m is not None and m.rows + sum((f.get("rows") or 0) for f in m.side_files) > 0 else None


def run_stage(context: dg.AssetExecutionContext, corpus: CorpusResource, asset: str, tokens_asset: str,
              tcfg: "TrainConfig", deps: list[str], threads: int = 0) -> dg.MaterializeResult:
    import torch

    from training import checkpoint as ckpt
    from training.data import TokenShardDataset
    from training.pretrain import train, unigram_entropy
    from training.report import plot_curves

    out = corpus.path(asset)
    data = corpus.path(tokens_asset)
    inputs = upstream_hashes(corpus, deps, None)
    val = val_set(corpus, tokens_asset)
    if val:  # held-out documents from the tokens stage: evaluate there, train on every row
        tcfg.eval_data, tcfg.heldout_seqs = val, 0
    config = {"train": asdict(tcfg) | {"eval_data": bool(val)}, "profile": corpus.profile}
    config_hash = shards.stable_hash(config)
    existing = shards.up_to_date(out, config_hash, inputs)
    if existing is not None:
        context.log.info(f"{asset}: inputs and config unchanged; reusing {out}")
        return dg.MaterializeResult(metadata=manifest_metadata(out, existing, reused=True))
    shards.clean_stale_temps(out)
    if threads:
        torch.set_num_threads(threads)
    res = train(tcfg, data, os.path.join(corpus.path(asset, CHECKPOINTS)), log=context.log.info)
    ds = TokenShardDataset(data)
    train_rows = np.arange(res.heldout[0])
    sample = train_rows[np.linspace(0, len(train_rows) - 1, min(len(train_rows), 2000)).astype(np.int64)]
    h_uni = unigram_entropy(ds, sample)
    final = res.final | {"unigram_entropy": h_uni}
    png = plot_curves(res.history, ("loss",), f"{asset} training loss", {"unigram entropy": h_uni})
    extra = {"final": final, "heldout": {tokens_asset: list(res.heldout)}, "tokens_asset": tokens_asset,
             "eval_data": val,
             "model_config": res.model_cfg.to_dict(), "resumed_from_step": res.resumed_from}
    state_src = os.path.join(res.checkpoint, ckpt.STATE_FILE) if res.checkpoint else None
    manifest = ckpt.save_model_set(
        out, res.model, res.model_cfg, config=config, input_hashes=inputs, extra=extra,
        files={"loss_curve.png": png, "history.json": json.dumps(res.history).encode()},
        writers={ckpt.STATE_FILE: (lambda dst: shutil.copyfile(state_src, dst))} if state_src else None,
    )
    meta = manifest_metadata(out, manifest) | {
        "steps": final["steps"],
        "params": final["params"],
        "tokens_trained": final["tokens"],
        "final_loss": float(final.get("final_loss", float("nan"))),
        "heldout_loss": float(final.get("heldout_loss", float("nan"))),
        "unigram_entropy": h_uni,
        "tokens_per_s": float(final.get("tokens_per_s") or 0.0),
        "mfu": _fmt(final.get("mfu"), pct=True),
        "resumed_from_step": res.resumed_from,
        "seq_len": ds.seq_len,
        "rope_theta": res.model_cfg.rope_theta,
        "loss_curve": dg.MetadataValue.text(sparkline([h.get("loss") for h in res.history])),
        "loss_curve_image": png_markdown(png, f"{asset} loss"),
        "loss_curve_png": dg.MetadataValue.path(os.path.join(out, "loss_curve.png")),
        "history": history_table(res.history, ("step", "loss", "lr", "grad_norm", "tokens_per_s")),
    }
    return dg.MaterializeResult(metadata=meta)


@dg.asset(deps=["tokens_stage1"], group_name=GROUP, pool=POOL,
          description="Stage 1 pretraining: file-level token shards (+FIM), RoPE base 1e4.")
def pretrain_stage1(context: dg.AssetExecutionContext, config: PretrainConfig,
                    corpus: CorpusResource) -> dg.MaterializeResult:
    tcfg = train_config(config, corpus.tiny, model_overrides={"rope_theta": config.rope_theta})
    return run_stage(context, corpus, "pretrain_stage1", "tokens_stage1", tcfg, ["tokens_stage1"], config.threads)


@dg.asset(deps=["tokens_stage2", "pretrain_stage1"], group_name=GROUP, pool=POOL,
          description="Stage 2 pretraining: repo-level shards, longer seq_len, RoPE base 1e6, from stage 1.")
def pretrain_stage2(context: dg.AssetExecutionContext, config: Stage2Config,
                    corpus: CorpusResource) -> dg.MaterializeResult:
    from training.data import TokenShardDataset

    seq_len = TokenShardDataset(corpus.path("tokens_stage2")).seq_len
    tcfg = train_config(config, corpus.tiny, init_from=corpus.path("pretrain_stage1"),
                        model_overrides={"rope_theta": config.rope_theta,
                                         "max_position_embeddings": max(seq_len, 32)})
    return run_stage(context, corpus, "pretrain_stage2", "tokens_stage2", tcfg, ["tokens_stage2", "pretrain_stage1"],
                     config.threads)


def _loss_check(asset: str):
    @dg.asset_check(asset=asset, name=f"{asset}_loss_below_unigram",
                    description="Final training loss is below the unigram entropy of the data (the model learned context).")
    def check(corpus: CorpusResource) -> dg.AssetCheckResult:
        m = shards.read_manifest(corpus.path(asset))
        if m is None:
            return dg.AssetCheckResult(passed=False, metadata={"reason": "not materialized"})
        final = (m.extra or {}).get("final", {})
        loss, h = final.get("final_loss"), final.get("unigram_entropy")
        ok = loss is not None and h is not None and np.isfinite(loss) and loss < h
        return dg.AssetCheckResult(passed=bool(ok), metadata={"final_loss": float(loss or float("nan")),
                                                              "unigram_entropy": float(h or float("nan"))})

    return check


# --------------------------------------------------------------------------- evaluation


class EvalConfig(dg.Config):
    heldout_max_seqs: int = Field(default=64, description="held-out sequences scored per token set")
    batch_size: int = 8
    fim_max_samples: int = 50
    fim_max_middle: int = 64
    humaneval_problems: int = Field(default=164, description="first N HumanEval problems (tiny profile: 3)")
    max_new_tokens: int = 128
    sandbox_workers: int = 2
    device: str = "auto"


HUMANEVAL_SCHEMA = pa.schema([
    pa.field("task_id", pa.string()), pa.field("passed", pa.bool_()), pa.field("status", pa.string()),
    pa.field("completion", pa.large_string()),
])


def heldout_data(corpus: CorpusResource, tokens_asset: str, cap: int) -> "tuple[TokenShardDataset, np.ndarray, str]":
    """(data set, rows, description) never trained on: the tokens stage's ``_val`` set when it
    exists, else the tail rows the pretraining stages held out (recorded in their manifests)."""
    from training.data import TokenShardDataset

    val = val_set(corpus, tokens_asset)
    if val:
        ds = TokenShardDataset(val)
        return ds, np.arange(min(len(ds), cap)), f"{tokens_asset}_val"
    ds = TokenShardDataset(corpus.path(tokens_asset))
    return ds, _heldout_rows(corpus, tokens_asset, len(ds), cap), f"{tokens_asset} (held-out tail)"


def _heldout_rows(corpus: CorpusResource, tokens_asset: str, n_seq: int, cap: int) -> np.ndarray:
    """Rows the pretraining stages never trained on (recorded in their manifests)."""
    for asset in ("pretrain_stage1", "pretrain_stage2"):
        m = shards.read_manifest(corpus.path(asset))
        span = ((m.extra or {}).get("heldout") or {}).get(tokens_asset) if m else None
        if span:
            start, end = span
            return np.arange(start, min(end, start + cap))
    return np.arange(0, 0)


@dg.asset(deps=["pretrain_stage2", "tokens_stage1", "tokens_stage2", "tokenizer"], group_name=GROUP, pool=POOL,
          description="Held-out loss/perplexity per source, FIM exact match, HumanEval pass@1 (sandboxed).")
def model_eval(context: dg.AssetExecutionContext, config: EvalConfig, corpus: CorpusResource) -> dg.MaterializeResult:
    from tokenizers import Tokenizer

    from training import checkpoint as ckpt
    from training import humaneval as he
    from training.data import TokenShardDataset
    from training.evaluate import fim_exact_match, heldout_by_source
    from training.pretrain import resolve_device

    deps = ["pretrain_stage2", "pretrain_stage1", "tokens_stage1", "tokens_stage2", "tokenizer"]
    inputs = upstream_hashes(corpus, deps, None)
    n_he = min(config.humaneval_problems, 3) if corpus.tiny else config.humaneval_problems
    max_new = min(config.max_new_tokens, 24) if corpus.tiny else config.max_new_tokens
    settings = config.model_dump() | {"humaneval_problems": n_he, "max_new_tokens": max_new, "profile": corpus.profile}
    out = corpus.path("model_eval")
    existing = shards.up_to_date(out, shards.stable_hash(settings), inputs)
    if existing is not None:
        return dg.MaterializeResult(metadata=manifest_metadata(out, existing, reused=True))
    device = resolve_device(config.device)
    models = {name: ckpt.load_checkpoint(corpus.path(name), device=device)[0]
              for name in ("pretrain_stage1", "pretrain_stage2")}
    final = models["pretrain_stage2"]
    loss_rows, metrics = [], {}
    fim_data = None
    for tokens_asset in ("tokens_stage1", "tokens_stage2"):
        ds, rows, label = heldout_data(corpus, tokens_asset, config.heldout_max_seqs)
        if not rows.size:
            context.log.warning(f"{tokens_asset}: no held-out rows (no _val set, none recorded by pretraining); skipped")
            continue
        if fim_data is None:
            fim_data = heldout_data(corpus, tokens_asset, 10**9)
        for model_name, model in models.items():
            if ds.seq_len > model.cfg.max_position_embeddings:
                continue
            for source, r in heldout_by_source(model, ds, rows, config.batch_size).items():
                loss_rows.append([model_name, label, source, f"{r['loss']:.4f}", f"{r['perplexity']:.2f}",
                                  r["tokens"]])
                if model_name == "pretrain_stage2":
                    metrics[f"{tokens_asset}/{source}"] = r
    fim_ds, fim_rows, _ = fim_data or (TokenShardDataset(corpus.path("tokens_stage1")), np.arange(0), "")
    fim = fim_exact_match(final, fim_ds, fim_rows,
                          max_samples=min(config.fim_max_samples, 5) if corpus.tiny else config.fim_max_samples,
                          max_middle=config.fim_max_middle)
    tok = Tokenizer.from_file(shards.side_file(corpus.path("tokenizer"), "tokenizer.json"))
    he_result, he_skip = None, None
    try:
        import sandbox

        sandbox.api.pick_backend("auto")
        problems = he.load_problems(limit=n_he)
        he_result = he.evaluate(problems, he.ModelCompleter(final, tok, max_new_tokens=max_new),
                                executor=he.sandbox_executor(workers=config.sandbox_workers))
    except (ImportError, ValueError, FileNotFoundError) as exc:
        he_skip = f"{type(exc).__name__}: {exc}"
        context.log.warning(f"HumanEval skipped: {he_skip}")
    summary = {"heldout": metrics, "fim": {"samples": fim.samples, "exact_match": fim.exact_match, "mode": fim.mode,
                                           "skipped": dict(fim.skipped)},
               "humaneval": ({"pass_at_1": he_result.pass_at_1, "passed": he_result.passed, "total": he_result.total,
                              "statuses": dict(he_result.statuses)} if he_result else {"skipped": he_skip})}
    with shards.ShardSetWriter(out, HUMANEVAL_SCHEMA, config=settings, input_hashes=inputs,
                               extra=json.loads(json.dumps(summary, default=float))) as w:
        if he_result:
            w.write_rows([{k: t[k] for k in HUMANEVAL_SCHEMA.names} for t in he_result.per_task])
    manifest = shards.read_manifest(out)
    assert manifest is not None
    meta = manifest_metadata(out, manifest) | {
        "heldout_loss_by_source": md_table(["model", "token set", "source", "loss", "perplexity", "tokens"], loss_rows),
        "fim_exact_match": _fmt(fim.exact_match),
        "fim_samples": fim.samples,
        "fim_mode": fim.mode,
        "fim_skips": counts_table(dict(fim.skipped)),
        "humaneval_pass_at_1": _fmt(he_result.pass_at_1) if he_result else f"skipped ({he_skip})",
    }
    if he_result:
        meta["humaneval_statuses"] = counts_table(dict(he_result.statuses), key="status")
    stage2 = metrics.get("tokens_stage2/all") or metrics.get("tokens_stage1/all")
    if stage2:
        meta["heldout_loss"] = stage2["loss"]
        meta["heldout_perplexity"] = stage2["perplexity"]
    return dg.MaterializeResult(metadata=meta)


defs = dg.Definitions(
    assets=[pretrain_stage1, pretrain_stage2, model_eval],
    asset_checks=[_loss_check("pretrain_stage1"), _loss_check("pretrain_stage2")],
)

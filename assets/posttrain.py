"""Post-training assets: ``sft_model`` (from ``pretrain_stage2`` on ``sft_fine``) and
``dpo_model`` (from ``sft_model`` on ``dpo_pairs``), each published as a Hugging Face model
folder under ``<root>/<asset>/_all`` with the tokenizer beside it.
"""

# No `from __future__ import annotations`: Dagster resolves Config annotations at decoration time.
import json
import os
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import dagster as dg
from pydantic import Field

from assets.common import counts_table, manifest_metadata, partition_sets, sparkline, upstream_hashes
from assets.resources import CorpusResource
from assets.train import POOL, history_table, png_markdown
from corpus import shards

# torch and training/ are imported inside the assets: definition load (code server, every run
# worker) stays free of them until a training asset actually runs.

GROUP = "instruct"
TOKENIZER_FILE = "tokenizer.json"


def input_sets(corpus: CorpusResource, asset: str) -> list[tuple[str, str]]:
    """(path, content hash) of ``asset``: its ``_all`` set, or every committed partition."""
    whole = corpus.path(asset)
    m = shards.read_manifest(whole)
    if m is not None:
        return [(whole, m.content_hash)]
    out = partition_sets(corpus, asset)
    if not out:
        raise dg.Failure(description=f"upstream {asset!r} has no committed shard set under {corpus.data_root}: "
                                     f"materialize {asset!r} first")
    return out


def iter_rows(paths: list[str], columns: list[str]) -> Iterator[dict[str, Any]]:
    """Rows of several shard sets, streamed batch by batch."""
    for p in paths:
        for batch in shards.iter_batches(p, columns=columns, batch_size=256):
            yield from batch.to_pylist()


def _tokenizer(path_set: str):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(shards.side_file(path_set, TOKENIZER_FILE))


def _publish(out: str, model, settings: dict[str, Any], inputs: list[str], tokenizer_json: str, final: dict[str, Any],
             history: list[dict[str, Any]], png: bytes, skipped: dict[str, int]) -> shards.Manifest:
    from training import checkpoint as ckpt

    with open(tokenizer_json, "rb") as fh:
        tok_bytes = fh.read()
    return ckpt.save_model_set(
        out, model, model.cfg, config=settings, input_hashes=inputs,
        extra={"trained": True, "final": final, "skipped": skipped},
        files={TOKENIZER_FILE: tok_bytes, "loss_curve.png": png, "history.json": json.dumps(history).encode()},
    )


def _untrained(context: dg.AssetExecutionContext, out: str, model, settings: dict[str, Any], inputs: list[str],
               tokenizer_json: str, upstream: str, exc: Exception) -> dg.MaterializeResult:
    """No usable rows upstream: publish the input model unchanged, flagged ``trained=False`` (the
    asset check ``<asset>_trained`` fails), so the graph completes and the UI says why."""
    from training import checkpoint as ckpt

    context.log.warning(f"{upstream}: {exc}; publishing the input model unchanged")
    with open(tokenizer_json, "rb") as fh:
        tok_bytes = fh.read()
    manifest = ckpt.save_model_set(out, model, model.cfg, config=settings, input_hashes=inputs,
                                   extra={"trained": False, "reason": str(exc), "skipped": dict(exc.skipped)},
                                   files={TOKENIZER_FILE: tok_bytes})
    return dg.MaterializeResult(metadata=manifest_metadata(out, manifest) | {
        "trained": False,
        "reason": str(exc),
        "skip_reasons": counts_table(dict(exc.skipped)),
    })


def _trained_check(asset: str):
    @dg.asset_check(asset=asset, name=f"{asset}_trained",
                    description="The model was actually fine-tuned (its upstream had usable rows).")
    def check(corpus: CorpusResource) -> dg.AssetCheckResult:
        m = shards.read_manifest(corpus.path(asset))
        if m is None:
            return dg.AssetCheckResult(passed=False, metadata={"reason": "not materialized"})
        trained = (m.extra or {}).get("trained", True)
        return dg.AssetCheckResult(passed=bool(trained), metadata={"reason": (m.extra or {}).get("reason", "")})

    return check


class SFTAssetConfig(dg.Config):
    steps: int = Field(default=200, description="optimizer steps (tiny profile: at most 8)")
    batch_size: int = 8
    max_len: int = 1024
    lr: float = 1e-3
    warmup_steps: int = 10
    seed: int = 0
    device: str = "auto"


@dg.asset(deps=["sft_fine", "tokenizer", "pretrain_stage2"], group_name=GROUP, pool=POOL,
          description="Supervised fine-tuning (ChatML, loss on assistant tokens) of the stage-2 model.")
def sft_model(context: dg.AssetExecutionContext, config: SFTAssetConfig, corpus: CorpusResource) -> dg.MaterializeResult:
    from training import checkpoint as ckpt
    from training.pretrain import resolve_device
    from training.report import plot_curves
    from training.sft import NoExamplesError, SFTConfig, train_sft

    sets = input_sets(corpus, "sft_fine")
    inputs = [h for _, h in sets] + upstream_hashes(corpus, ["tokenizer", "pretrain_stage2"], None)
    scfg = SFTConfig(steps=min(config.steps, 8) if corpus.tiny else config.steps, batch_size=config.batch_size,
                     max_len=min(config.max_len, 256) if corpus.tiny else config.max_len, lr=config.lr,
                     warmup_steps=min(config.warmup_steps, 2) if corpus.tiny else config.warmup_steps, seed=config.seed)
    settings = {"sft": asdict(scfg), "profile": corpus.profile}
    out = corpus.path("sft_model")
    existing = shards.up_to_date(out, shards.stable_hash(settings), inputs)
    if existing is not None:
        return dg.MaterializeResult(metadata=manifest_metadata(out, existing, reused=True))
    tok_json = shards.side_file(corpus.path("tokenizer"), TOKENIZER_FILE)
    model, _, _ = ckpt.load_checkpoint(corpus.path("pretrain_stage2"), device=resolve_device(config.device))
    try:
        res = train_sft(model, _tokenizer(corpus.path("tokenizer")),
                        lambda: iter_rows([p for p, _ in sets], ["messages"]), scfg, log=context.log.info)
    except NoExamplesError as exc:
        return _untrained(context, out, model, settings, inputs, tok_json, "sft_fine", exc)
    png = plot_curves(res.history, ("loss",), "SFT loss (assistant tokens)")
    manifest = _publish(out, model, settings, inputs, tok_json, res.final, res.history, png, dict(res.skipped))
    return dg.MaterializeResult(metadata=manifest_metadata(out, manifest) | {
        "first_loss": res.final["first_loss"],
        "final_loss": res.final["final_loss"],
        "examples_seen": res.examples,
        "skip_reasons": counts_table(dict(res.skipped)),
        "loss_curve": dg.MetadataValue.text(sparkline([h.get("loss") for h in res.history])),
        "loss_curve_image": png_markdown(png, "SFT loss"),
        "history": history_table(res.history, ("step", "loss", "grad_norm", "tokens")),
    })


class DPOAssetConfig(dg.Config):
    steps: int = Field(default=100, description="optimizer steps (tiny profile: at most 6)")
    batch_size: int = Field(default=4, description="preference pairs per step")
    beta: float = 0.1
    max_len: int = 1024
    lr: float = 5e-5
    warmup_steps: int = 5
    seed: int = 0
    device: str = "auto"


@dg.asset(deps=["dpo_pairs", "sft_model"], group_name=GROUP, pool=POOL,
          description="DPO (sigmoid loss, frozen SFT reference) on execution/judge preference pairs.")
def dpo_model(context: dg.AssetExecutionContext, config: DPOAssetConfig, corpus: CorpusResource) -> dg.MaterializeResult:
    from training import checkpoint as ckpt
    from training.dpo import DPOConfig, train_dpo
    from training.pretrain import resolve_device
    from training.report import plot_curves
    from training.sft import NoExamplesError

    sets = input_sets(corpus, "dpo_pairs")
    inputs = [h for _, h in sets] + upstream_hashes(corpus, ["sft_model"], None)
    dcfg = DPOConfig(steps=min(config.steps, 6) if corpus.tiny else config.steps, batch_size=config.batch_size,
                     beta=config.beta, max_len=min(config.max_len, 256) if corpus.tiny else config.max_len,
                     lr=config.lr, warmup_steps=min(config.warmup_steps, 2) if corpus.tiny else config.warmup_steps,
                     seed=config.seed)
    settings = {"dpo": asdict(dcfg), "profile": corpus.profile}
    out = corpus.path("dpo_model")
    existing = shards.up_to_date(out, shards.stable_hash(settings), inputs)
    if existing is not None:
        return dg.MaterializeResult(metadata=manifest_metadata(out, existing, reused=True))
    sft_dir = corpus.path("sft_model")
    policy, _, _ = ckpt.load_checkpoint(sft_dir, device=resolve_device(config.device))
    reference, _, _ = ckpt.load_checkpoint(sft_dir, device=resolve_device(config.device), check=False)
    try:
        res = train_dpo(policy, _tokenizer(sft_dir),
                        lambda: iter_rows([p for p, _ in sets], ["prompt", "chosen", "rejected"]),
                        dcfg, reference=reference, log=context.log.info)
    except NoExamplesError as exc:
        return _untrained(context, out, policy, settings, inputs, os.path.join(sft_dir, TOKENIZER_FILE), "dpo_pairs",
                          exc)
    png = plot_curves(res.history, ("loss", "reward_margin"), "DPO loss and reward margin")
    manifest = _publish(out, policy, settings, inputs, os.path.join(sft_dir, TOKENIZER_FILE), res.final, res.history,
                        png, dict(res.skipped))
    return dg.MaterializeResult(metadata=manifest_metadata(out, manifest) | {
        "first_loss": res.final["first_loss"],
        "final_loss": res.final["final_loss"],
        "reward_accuracy": res.final["reward_accuracy"],
        "reward_margin": res.final["reward_margin"],
        "pairs_seen": res.examples,
        "skip_reasons": counts_table(dict(res.skipped)),
        "loss_curve": dg.MetadataValue.text(sparkline([h.get("loss") for h in res.history])),
        "loss_curve_image": png_markdown(png, "DPO loss"),
        "history": history_table(res.history, ("step", "loss", "reward_accuracy", "reward_margin")),
    })


defs = dg.Definitions(assets=[sft_model, dpo_model],
                      asset_checks=[_trained_check("sft_model"), _trained_check("dpo_model")])

"""The training assets in-process on profile tiny: stage 1 -> stage 2 -> eval, SFT -> DPO."""

from __future__ import annotations

import json
import os
import shutil

import dagster as dg
import pyarrow as pa
import pytest
import transformers
from conftest import SPECIALS, STDLIB, encode_docs, pack, write_token_set
from tokenizers import Tokenizer

from assets.common import metadata_text
from assets.posttrain import dpo_model, sft_model
from assets.resources import CorpusResource
from assets.train import defs as train_defs
from assets.train import model_eval, pretrain_stage1, pretrain_stage2
from corpus import shards

MSG = pa.list_(pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string())]))
SFT_SCHEMA = pa.schema([("id", pa.string()), ("source_id", pa.string()), ("language", pa.string()),
                        ("messages", MSG), ("score", pa.float64()), ("verified", pa.bool_()), ("status", pa.string())])
DPO_SCHEMA = pa.schema([("id", pa.string()), ("source_id", pa.string()), ("language", pa.string()), ("prompt", MSG),
                        ("chosen", pa.string()), ("rejected", pa.string()), ("pair_source", pa.string())])


def _write_instruct_sets(root: str) -> None:
    sft, dpo = [], []
    for i in range(12):
        user = {"role": "user", "content": f"Write a function that returns {i} squared."}
        good = f"def f():\n    return {i} * {i}\n"
        sft.append({"id": f"s{i}", "source_id": f"x{i}", "language": "python", "messages": [user, {
            "role": "assistant", "content": good}], "score": 9.0, "verified": True, "status": "passed"})
        dpo.append({"id": f"d{i}", "source_id": f"x{i}", "language": "python", "prompt": [user], "chosen": good,
                    "rejected": f"def f(:\n    return {i}\n", "pair_source": "execution"})
    sft.append({"id": "bad", "source_id": "x", "language": "python", "messages": [{"role": "user", "content": "?"}],
                "score": 1.0, "verified": False, "status": "failed"})
    for asset, schema, rows in (("sft_fine", SFT_SCHEMA, sft), ("dpo_pairs", DPO_SCHEMA, dpo)):
        with shards.ShardSetWriter(shards.shard_set_path(root, asset), schema) as w:
            w.write_rows(rows)


@pytest.fixture(scope="module")
def root(corpus_root, tmp_path_factory):
    r = str(tmp_path_factory.mktemp("assets_root"))
    shutil.copytree(corpus_root, r, dirs_exist_ok=True)
    _write_instruct_sets(r)
    # A held-out validation set as the tokens stage writes it (other stdlib files, with FIM samples).
    tok = Tokenizer.from_file(shards.side_file(shards.shard_set_path(r, "tokenizer"), "tokenizer.json"))
    texts = [open(os.path.join(STDLIB, f), encoding="utf-8").read()[:3000] for f in ("shlex.py", "textwrap.py",
                                                                                    "fnmatch.py", "glob.py")]
    sp = {s: tok.token_to_id(s) for s in SPECIALS}
    t, m, d = pack(encode_docs(tok, texts, fim_every=2), 128, sp["<|fim_pad|>"])
    write_token_set(shards.shard_set_path(r, "tokens_stage1_val"), t, m, d, vocab_size=512, eos_id=0,
                    pad_id=sp["<|fim_pad|>"], special_tokens=sp)
    return r


def _run(selection, root, **kw):
    return dg.materialize(selection, resources={"corpus": CorpusResource(data_root=root, profile="tiny")},
                          instance=dg.DagsterInstance.ephemeral(), **kw)


def test_pretrain_eval_sft_dpo_graph(root):
    res = _run([pretrain_stage1, pretrain_stage2, model_eval, sft_model, dpo_model], root)
    assert res.success
    mats = {m.asset_key.to_user_string(): m for m in res.get_asset_materialization_events()}
    md = {k: v.materialization.metadata for k, v in mats.items()}
    s1 = md["pretrain_stage1"]
    assert s1["steps"].value == 40 and s1["final_loss"].value < s1["unigram_entropy"].value
    assert "data:image/png;base64," in s1["loss_curve_image"].value
    assert "points)" in s1["loss_curve"].value  # inline text plot of the same curve
    # Stage 2 continued from stage 1 with the longer context and the larger RoPE base.
    s2_dir = shards.shard_set_path(root, "pretrain_stage2")
    cfg = json.load(open(os.path.join(s2_dir, "config.json")))
    assert cfg["rope_parameters"]["rope_theta"] == 1e6 and cfg["max_position_embeddings"] == 256
    assert md["pretrain_stage2"]["seq_len"].value == 256
    # The published model loads in transformers and has the training state for resume.
    hf = transformers.Qwen2ForCausalLM.from_pretrained(s2_dir)
    assert hf.config.vocab_size == 512
    assert shards.side_file(s2_dir, "training_state.pt")
    ev = md["model_eval"]
    table = metadata_text(ev["heldout_loss_by_source"])
    assert "| pretrain_stage2 | tokens_stage1_val | file |" in table  # the tokens stage's held-out documents
    assert "| pretrain_stage2 | tokens_stage2 (held-out tail) | all |" in table  # no _val set: the tail rows
    assert ev["fim_samples"].value > 0
    assert shards.read_manifest(shards.shard_set_path(root, "pretrain_stage1")).extra["eval_data"].endswith(
        "tokens_stage1_val/_all")
    assert "humaneval_pass_at_1" in ev
    assert metadata_text(md["sft_model"]["skip_reasons"]).count("no assistant turn") == 1
    assert md["sft_model"]["final_loss"].value < md["sft_model"]["first_loss"].value
    assert md["dpo_model"]["first_loss"].value == pytest.approx(0.6931, abs=1e-3)
    assert shards.side_file(shards.shard_set_path(root, "dpo_model"), "tokenizer.json")
    # Unchanged re-run: every asset is a no-op.
    again = _run([pretrain_stage1, pretrain_stage2, model_eval, sft_model, dpo_model], root)
    for m in again.get_asset_materialization_events():
        assert m.materialization.metadata["reused_existing"].value is True


def test_loss_check_and_definitions(root):
    assert {k.name for c in train_defs.asset_checks for k in c.check_keys} == {"pretrain_stage1_loss_below_unigram",
                                                         "pretrain_stage2_loss_below_unigram"}
    check = next(c for c in train_defs.asset_checks if any(k.asset_key.path == ["pretrain_stage1"]
                                                            for k in c.check_keys))
    res = _run([pretrain_stage1, check], root)
    evals = res.get_asset_check_evaluations()
    assert len(evals) == 1 and evals[0].passed
    assert evals[0].metadata["final_loss"].value < evals[0].metadata["unigram_entropy"].value


def test_missing_upstream_fails_with_clear_message(tmp_path):
    res = _run([pretrain_stage1], str(tmp_path), raise_on_error=False)
    assert not res.success
    err = res.get_step_failure_events()[0].step_failure_data.error.message
    assert "tokens_stage1" in err and "materialize" in err


def test_sft_without_usable_rows_publishes_flagged_base_model(corpus_root, tmp_path):
    from assets.posttrain import defs as post_defs
    from training.checkpoint import save_model_set
    from training.model import Qwen2ForCausalLM, get_preset

    r = str(tmp_path)
    shutil.copytree(shards.shard_set_path(corpus_root, "tokenizer"), shards.shard_set_path(r, "tokenizer"))
    cfg = get_preset("tiny", vocab_size=512, max_position_embeddings=256)
    save_model_set(shards.shard_set_path(r, "pretrain_stage2"), Qwen2ForCausalLM(cfg), cfg, config={"x": 1})
    bad = [{"id": "b", "source_id": "x", "language": "python", "messages": [{"role": "user", "content": "?"}],
            "score": 0.0, "verified": False, "status": "failed"}]
    with shards.ShardSetWriter(shards.shard_set_path(r, "sft_fine"), SFT_SCHEMA) as w:
        w.write_rows(bad)
    check = next(c for c in post_defs.asset_checks if any(k.asset_key.path == ["sft_model"] for k in c.check_keys))
    res = _run([sft_model, check], r)
    assert res.success
    md = res.get_asset_materialization_events()[0].materialization.metadata
    assert md["trained"].value is False and "no assistant turn" in metadata_text(md["skip_reasons"])
    evals = res.get_asset_check_evaluations()
    assert len(evals) == 1 and not evals[0].passed
    assert shards.side_file(shards.shard_set_path(r, "sft_model"), "model.safetensors")

"""``codecorpus train`` and ``codecorpus eval`` through pipelines.cli.main."""

from __future__ import annotations

import json
import os

import pytest
import transformers

from corpus import shards
from pipelines.cli import main


def test_train_then_eval_cli(corpus_root, tmp_path, capsys):
    data = shards.shard_set_path(corpus_root, "tokens_stage1")
    out = str(tmp_path / "run")
    argv = ["train", "--data", data, "--preset", "tiny", "--steps", "12", "--out", out, "--micro-batch-size", "8",
            "--checkpoint-every", "6", "--heldout", "8", "--log-every", "6", "--threads", "1"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "step 12/12" in text and "unigram entropy" in text and "model:" in text
    model_dir = os.path.join(out, "model")
    for name in ("config.json", "model.safetensors", "training_state.pt", "loss_curve.png", "history.json"):
        assert shards.side_file(model_dir, name)
    transformers.Qwen2ForCausalLM.from_pretrained(model_dir)
    # Same command again: resumes from the final checkpoint, trains nothing more.
    assert main(argv) == 0
    assert "resumed from" in capsys.readouterr().out
    tok = shards.side_file(shards.shard_set_path(corpus_root, "tokenizer"), "tokenizer.json")
    report = str(tmp_path / "eval.json")
    assert main(["eval", "--checkpoint", out, "--data", data, "--tokenizer", tok, "--humaneval", "0",
                 "--fim-samples", "3", "--json", report]) == 0
    text = capsys.readouterr().out
    assert "held out by the training run" in text and "FIM exact match" in text
    res = json.load(open(report))
    assert res["heldout"][data]["all"]["tokens"] > 0


def test_cli_bad_inputs_exit_2_with_message(corpus_root, tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o"), "--steps", "1"]) == 2
    assert "no _manifest.json" in capsys.readouterr().err
    data = shards.shard_set_path(corpus_root, "tokens_stage1")
    assert main(["train", "--data", data, "--out", str(tmp_path / "o"), "--steps", "1", "--seq-len", "64"]) == 2
    assert "packed to seq_len 128" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err


def test_help_is_useful(capsys):
    for verb in ("train", "eval"):
        with pytest.raises(SystemExit):
            main([verb, "--help"])
        text = capsys.readouterr().out
        assert "Example: codecorpus " + verb in " ".join(text.split())

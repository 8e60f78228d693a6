"""``codecorpus mix`` and ``codecorpus tokenize`` through the real CLI entry point."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from corpus import shards
from corpus.tokenize.format import TokenShards
from pipelines.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mix"))
from mixdata import build_upstreams  # noqa: E402


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    build_upstreams(str(d), py_pkgs=("json", "http"), n_html=10, n_math=40, with_c=False)
    return d


def test_mix_train_pack_inspect(root, capsys):
    assert main(["mix", "--data", str(root), "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "math" in out and "missing" in out  # synthetic_code is missing
    mix = str(root / "mixture" / "_all")
    tok = str(root / "tok.json")
    assert main(["tokenize", "train", mix, "--out", tok, "--vocab-size", "600"]) == 0
    assert "trained vocab 600" in capsys.readouterr().out
    out1 = str(root / "s1")
    assert main(["tokenize", "pack", mix, "--tokenizer", tok, "--out", out1, "--seq-len", "64"]) == 0
    assert "train tokens per source" in capsys.readouterr().out
    assert len(TokenShards(out1)) > 0 and shards.is_committed(out1 + "_val")
    assert main(["tokenize", "pack", mix, "--tokenizer", tok, "--out", str(root / "s2"), "--stage", "2",
                 "--seq-len", "128"]) == 0
    assert main(["tokenize", "inspect", out1, "--tokenizer", tok, "--decode", "1"]) == 0
    out = capsys.readouterr().out
    assert "well-formed" in out and "--- sequence 0" in out


def test_cli_errors_are_clear(root, tmp_path, capsys):
    assert main(["mix", "--data", str(tmp_path)]) == 2
    assert "no upstream shard sets" in capsys.readouterr().err
    assert main(["tokenize", "pack", str(root / "code_clean"), "--tokenizer", str(tmp_path / "nope.json"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "tokenizer file not found" in capsys.readouterr().err
    assert main(["tokenize", "inspect", str(tmp_path)]) == 2
    assert "no _manifest.json" in capsys.readouterr().err


def test_help_is_useful(capsys):
    with pytest.raises(SystemExit):
        main(["tokenize", "--help"])
    out = capsys.readouterr().out
    assert "train" in out and "pack" in out and "inspect" in out and "examples" in out
    with pytest.raises(SystemExit):
        main(["mix", "--help"])
    assert "--total-tokens" in capsys.readouterr().out

"""``codecorpus textcode`` through pipelines.cli.main."""

from __future__ import annotations

import pytest
from textcode_helpers import PROSE_PAGE, code_page, write_jsonl, write_warc

from corpus import shards
from pipelines.cli import build_parser, main


@pytest.fixture()
def sources(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write_warc(str(src / "web-01.warc.gz"), [
        {"url": f"https://docs.example.org/{i}", "body": code_page(i).encode()} for i in range(20)
    ] + [{"url": f"https://blog.example.org/{i}", "body": PROSE_PAGE.replace("river", f"river {i}").encode()}
         for i in range(20)] + [{"url": "https://x.org/empty", "body": b""}])
    pos = write_jsonl(str(tmp_path / "pos.jsonl"), [{"text": code_page(100 + i)} for i in range(40)])
    neg = write_jsonl(str(tmp_path / "neg.jsonl"), [{"text": PROSE_PAGE.replace("spring", f"spring {i}")}
                                                    for i in range(40)])
    return src, pos, neg


def test_help_lists_steps(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["textcode", "--help"])
    out = capsys.readouterr().out
    for step in ("batches", "build-local", "ingest", "train", "filter"):
        assert step in out


def test_ingest_train_filter(sources, tmp_path, capsys):
    src, pos, neg = sources
    assert main(["textcode", "batches", str(src)]) == 0
    assert "web-01\t" in capsys.readouterr().out

    web = str(tmp_path / "web")
    assert main(["textcode", "ingest", str(src), "--out", web, "--min-chars", "100"]) == 0
    out = capsys.readouterr().out
    assert "40 of 40 documents kept" in out and "empty_payload: 1" in out
    assert shards.count_rows(web) == 40

    clf = str(tmp_path / "clf")
    assert main(["textcode", "train", "--positives", pos, "--negatives", neg, "--out", clf,
                 "--bucket", "20000", "--epoch", "15"]) == 0
    out = capsys.readouterr().out
    assert '"f1": ' in out and "model.bin" in out

    filt = str(tmp_path / "filt")
    assert main(["textcode", "filter", web, "--model", f"{clf}/model", f"{clf}/model/model.bin",
                 "--threshold", "0.5", "0.8", "--out", filt]) == 0
    out = capsys.readouterr().out
    assert "stage 1 (>= 0.5)" in out and "stage 2 (>= 0.8)" in out
    kept = shards.count_rows(f"{filt}/final")
    assert 0 < kept <= shards.count_rows(f"{filt}/stage_1") < 40


def test_errors_are_clear(tmp_path, capsys):
    assert main(["textcode", "ingest", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["textcode", "filter", str(tmp_path), "--model", "m.bin", "--out", str(tmp_path / "f")]) == 2
    assert "not a committed shard set" in capsys.readouterr().err
    assert main(["textcode", "ingest", "local:nope", "--out", str(tmp_path / "o")]) == 2
    assert "unknown local corpus" in capsys.readouterr().err


def test_ingest_strip_code(tmp_path, capsys):
    doc = ("We met by the river and talked about the garden and the summer plans for a long while. " * 3 +
           "\n\n```\nimport os\nprint(os.listdir('.'))\n```\n\n" +
           "The evening was warm and the neighbours came over for dinner and stayed late into the night. " * 3)
    src = write_jsonl(str(tmp_path / "g.jsonl"), [{"text": doc, "url": "https://g.org/1"}])
    out = str(tmp_path / "gen")
    assert main(["textcode", "ingest", src, "--out", out, "--strip-code", "0.5"]) == 0
    assert "lines removed" in capsys.readouterr().out
    text = next(shards.iter_batches(out)).column("text")[0].as_py()
    assert "import os" not in text and "neighbours" in text


def test_train_with_too_few_seed_documents_commits_nothing(tmp_path, capsys):
    pos = write_jsonl(str(tmp_path / "pos.jsonl"), [{"text": code_page(1)}])
    neg = write_jsonl(str(tmp_path / "neg.jsonl"), [{"text": PROSE_PAGE}])
    out = tmp_path / "clf"
    assert main(["textcode", "train", "--positives", pos, "--negatives", neg, "--out", str(out)]) == 2
    assert "need some in both the train and holdout" in capsys.readouterr().err
    assert not shards.is_committed(str(out / "examples"))

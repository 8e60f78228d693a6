"""``codecorpus instruct`` end to end: offline, against a local OpenAI-compatible server, bad input."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from instruct_fixtures import FakeModel, python_rows

from corpus import shards
from corpus.llm.local_server import LocalChatServer
from corpus.schemas import CODE_SCHEMA
from pipelines.cli import main


@pytest.fixture(scope="module")
def code_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("in")
    pq.write_table(pa.Table.from_pylist(python_rows(["colorsys.py", "bisect.py", "textwrap.py"]), schema=CODE_SCHEMA),
                   d / "code.parquet")
    return d


def rows(out, stage):
    return [r for b in shards.iter_batches(shards.shard_set_path(str(out), stage)) for r in b.to_pylist()]


def test_help_is_useful(capsys):
    with pytest.raises(SystemExit):
        main(["instruct", "--help"])
    text = capsys.readouterr().out
    for needle in ("--backend", "offline", "openai", "--base-url", "--model-dir", "SFT", "DPO", "Example"):
        assert needle in text, needle


def test_offline_run_then_noop_rerun(code_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["instruct", str(code_file), str(out), "--limit", "12", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.split("\n", 9)[-1])
    assert report["sft_fine"]["rows"] > 0 and report["dpo_pairs"]["rows"] > 0
    assert all(r["verified"] for r in rows(out, "sft_fine"))
    assert main(["instruct", str(code_file), str(out), "--limit", "12", "--json"]) == 0
    again = json.loads(capsys.readouterr().out.split("\n", 9)[-1])
    assert all(again[s].get("reused") for s in ("instruct_snippets", "instruct_candidates", "dpo_pairs"))


def test_missing_input_is_a_clear_error(tmp_path, capsys):
    assert main(["instruct", str(tmp_path / "nope"), str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_corrupt_parquet_names_the_file(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    bad = tmp_path / "in" / "broken.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    assert main(["instruct", str(tmp_path / "in"), str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "broken.parquet" in err


def test_openai_backend_against_local_server(code_file, tmp_path, capsys):
    fake = FakeModel()
    out = tmp_path / "out"
    with LocalChatServer(fake) as srv:
        argv = ["instruct", str(code_file), str(out), "--backend", "openai", "--base-url", srv.base_url,
                "--model", "fake", "--limit", "6"]
        assert main(argv) == 0
        n_requests = len(srv.requests)
        cands = rows(out, "instruct_candidates")
        assert len(cands) == 6 and all(c["generator"] == "openai:fake" for c in cands)
        ver = rows(out, "instruct_verified")
        statuses = {r["status"] for r in ver}
        assert {"passed", "failed"} <= statuses  # the sandbox really ran the model's tests
        fine = rows(out, "sft_fine")
        assert fine and all(r["verified"] for r in fine)
        assert {r["source_id"] for r in fine} <= {r["id"] for r in rows(out, "instruct_snippets")}
        pairs = [p for p in rows(out, "dpo_pairs") if p["pair_source"] == "execution"]
        assert any("def unrelated" in p["rejected"] for p in pairs)  # the model's own failing sample
        scored = rows(out, "instruct_scored")
        assert all(r["scorer"] == "llm_judge:openai:fake" and r["score"] == pytest.approx(0.8) for r in scored)
        # a fresh run over a fresh output folder re-uses the response cache: no new requests
        cache = out / "_llm_cache"
        out2 = tmp_path / "out2"
        out2.mkdir()
        (out2 / "_llm_cache").symlink_to(cache, target_is_directory=True)
        fake.first = False
        assert main(argv[:2] + [str(out2)] + argv[3:]) == 0
        assert len(srv.requests) == n_requests
    assert "llm usage" in capsys.readouterr().out

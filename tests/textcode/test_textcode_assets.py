"""The text assets materialized in-process on the tiny profile, on real local pages."""

from __future__ import annotations

import os

import dagster as dg
import pyarrow as pa
import pytest
from textcode_helpers import PROSE_PAGE, code_page, truncate, write_warc

from assets import textcode as T
from assets.common import metadata_text
from assets.resources import CorpusResource
from corpus import shards
from corpus.textcode.seeds import python_doc_root

pytestmark = pytest.mark.skipif(python_doc_root() is None, reason="python3-doc HTML not installed")


def _mat(assets, corpus, instance, partition=None, run_config=None):
    return dg.materialize(assets, partition_key=partition, resources={"corpus": corpus}, instance=instance,
                          run_config=run_config)


def _md(result, asset: str) -> dict:
    ev = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    assert ev, f"no materialization of {asset}"
    return {k: metadata_text(v) for k, v in ev[-1].materialization.metadata.items()}


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    """Materialize web_text -> classifier -> 4 stages (with retraining) for every local batch."""
    root = str(tmp_path_factory.mktemp("data"))
    corpus = CorpusResource(data_root=root, profile="tiny")
    instance = dg.DagsterInstance.ephemeral()
    new = T.prepare_run(instance, corpus)
    keys = instance.get_dynamic_partitions("text_batches")
    results = {}
    for k in keys:
        results[("web_text", k)] = _mat([T.web_text], corpus, instance, k)
    results["textcode_classifier"] = _mat([T.textcode_classifier], corpus, instance)
    for s in range(1, T.N_STAGES + 1):
        if s > 1:
            name = T.classifier_asset_name(s)
            results[name] = _mat([T.RETRAIN_ASSETS[s - 2]], corpus, instance)
        for k in keys:
            results[(T.stage_asset_name(s), k)] = _mat([T.STAGE_ASSETS[s - 1]], corpus, instance, k)
    return {"corpus": corpus, "instance": instance, "keys": keys, "new": new, "results": results}


def test_prepare_run_registers_local_warc_and_wet_batches(graph):
    assert graph["new"] == graph["keys"] == ["local-web-00", "local-web-01"]
    assert T.prepare_run(graph["instance"], graph["corpus"]) == []  # idempotent
    md = _md(graph["results"][("web_text", "local-web-00")], "web_text")
    assert md["kept"] > 10 and md["dagster/row_count"] == md["kept"]
    assert "| warc |" in md["record kinds"]
    md1 = _md(graph["results"][("web_text", "local-web-01")], "web_text")
    assert "| wet |" in md1["record kinds"]
    assert md1["dedup against batches"] == 1


def test_seed_classifier_metadata_and_model_file(graph):
    md = _md(graph["results"]["textcode_classifier"], "textcode_classifier")
    assert md["holdout F1"] >= 0.8 and md["holdout AUC"] >= 0.8
    assert "precision" in md["evaluation"]
    model = shards.side_file(graph["corpus"].path("textcode_classifier"), "model.bin")
    assert os.path.getsize(model) == md["model bytes"] > 0
    assert shards.is_committed(graph["corpus"].path("textcode_classifier_examples"))


def test_stages_are_monotone_and_carry_scores(graph):
    corpus = graph["corpus"]
    for k in graph["keys"]:
        counts = [shards.count_rows(corpus.path("web_text", k))]
        for s in range(1, T.N_STAGES + 1):
            md = _md(graph["results"][(T.stage_asset_name(s), k)], T.stage_asset_name(s))
            assert md["docs in"] == counts[-1]
            assert md["threshold"] == T.default_threshold(s)
            assert "score bin" in md["score histogram"] and "web_text" in md["funnel"]
            counts.append(md["kept"])
        assert all(b <= a for a, b in zip(counts, counts[1:])), counts
        assert counts[-1] > 0
        table = pa.Table.from_batches(list(shards.iter_batches(corpus.path("text_code", k))))
        for s in range(1, T.N_STAGES + 1):
            assert min(table.column(f"stage_{s}_score").to_pylist()) >= T.default_threshold(s)
    check = T.text_code_stages_monotone(corpus=corpus)
    assert check.passed, check.metadata
    assert T.textcode_classifier_beats_chance(corpus=corpus).passed


def test_retrained_classifiers_report_recall(graph):
    md = _md(graph["results"]["textcode_classifier_stage_2"], "textcode_classifier_stage_2")
    assert md["batches"] == 2
    assert md["recalled by previous stage"] == sum(
        shards.count_rows(graph["corpus"].path("text_code_stage_1", k)) for k in graph["keys"])
    assert md["holdout F1"] > 0.6
    assert "recalled pages (positive)" in md["training examples"]


def test_rerun_is_noop_and_new_threshold_reruns_only_downstream(graph):
    corpus, inst, k = graph["corpus"], graph["instance"], graph["keys"][0]
    again = _mat([T.web_text], corpus, inst, k)
    assert _md(again, "web_text")["reused_existing"] is True
    s1_before = shards.read_manifest(corpus.path("text_code_stage_1", k)).content_hash
    s2_before = shards.read_manifest(corpus.path("text_code_stage_2", k)).content_hash
    same = _mat([T.STAGE_ASSETS[1]], corpus, inst, k)
    assert _md(same, "text_code_stage_2")["reused_existing"] is True

    cfg = {"ops": {"text_code_stage_2": {"config": {"threshold": 0.99}}}}
    stricter = _md(_mat([T.STAGE_ASSETS[1]], corpus, inst, k, run_config=cfg), "text_code_stage_2")
    assert stricter["reused_existing"] is False and stricter["threshold"] == 0.99
    assert shards.read_manifest(corpus.path("text_code_stage_1", k)).content_hash == s1_before
    assert shards.read_manifest(corpus.path("text_code_stage_2", k)).content_hash != s2_before
    # Stage 3 is now stale (its input changed), so it recomputes instead of reusing.
    s3 = _md(_mat([T.STAGE_ASSETS[2]], corpus, inst, k), "text_code_stage_3")
    assert s3["reused_existing"] is False and s3["docs in"] == stricter["kept"]


def test_math_and_general_text(graph):
    corpus, inst = graph["corpus"], graph["instance"]
    m = _md(_mat([T.math_text], corpus, inst), "math_text")
    assert m["dagster/row_count"] > 10
    g = _md(_mat([T.general_text], corpus, inst), "general_text")
    assert g["dagster/row_count"] > 10 and "code lines removed" in g["code removal"]
    assert T.general_text_code_free(corpus=corpus).passed
    table = pa.Table.from_batches(list(shards.iter_batches(corpus.path("general_text"))))
    assert {"id", "url", "text", "source", "code_ratio"} <= set(table.schema.names)


def test_configured_sources_with_bad_files(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    write_warc(str(src / "good.warc.gz"), [
        {"url": f"https://docs.example.org/{i}", "body": code_page(i).encode()} for i in range(5)
    ] + [{"url": "https://x.org/empty", "body": b""}, {"url": "https://x.org/bin", "body": b"\x00\x01" * 500}])
    truncate(write_warc(str(src / "cut.warc.gz"), [
        {"url": f"https://blog.example.org/{i}", "body": PROSE_PAGE.replace("river", f"river {i}").encode() * 2}
        for i in range(40)]), 0.5)
    monkeypatch.setenv(T.SOURCES_ENV, str(src))
    corpus = CorpusResource(data_root=str(tmp_path / "data"), profile="tiny")
    inst = dg.DagsterInstance.ephemeral()
    assert T.prepare_run(inst, corpus) == ["cut", "good"]
    good = _md(_mat([T.web_text], corpus, inst, "good"), "web_text")
    assert good["kept"] == 5
    assert "empty_payload" in good["skip_reasons"] and "binary_payload" in good["skip_reasons"]
    cut = _md(_mat([T.web_text], corpus, inst, "cut"), "web_text")
    assert "truncated_gzip" in cut["skip_reasons"] and 0 < cut["kept"] < 40

    inst.add_dynamic_partitions("text_batches", ["gone"])
    res = dg.materialize([T.web_text], partition_key="gone", resources={"corpus": corpus}, instance=inst,
                         raise_on_error=False)
    assert not res.success


def test_sensor_adds_new_batches(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    write_warc(str(src / "b1.warc.gz"), [{"url": "https://a.org/1", "body": code_page(1).encode()}])
    monkeypatch.setenv(T.SOURCES_ENV, str(src))
    corpus = CorpusResource(data_root=str(tmp_path / "data"), profile="tiny")
    inst = dg.DagsterInstance.ephemeral()
    ctx = dg.build_sensor_context(instance=inst, resources={"corpus": corpus})
    result = T.text_batch_sensor(ctx)
    assert isinstance(result, dg.SensorResult)
    assert [r.partition_key for r in result.run_requests] == ["b1"]
    inst.add_dynamic_partitions("text_batches", ["b1"])
    assert isinstance(T.text_batch_sensor(dg.build_sensor_context(instance=inst, resources={"corpus": corpus})),
                      dg.SkipReason)


def test_stage_count_setting(monkeypatch):
    monkeypatch.setenv(T.STAGES_ENV, "2")
    assert T.configured_stage_count() == 2
    monkeypatch.setenv(T.STAGES_ENV, "zero")
    with pytest.raises(ValueError, match=T.STAGES_ENV):
        T.configured_stage_count()
    monkeypatch.setenv(T.STAGES_ENV, "12")
    with pytest.raises(ValueError, match="between 1 and 8"):
        T.configured_stage_count()
    assert T.stage_asset_name(4) == "text_code" and T.stage_asset_name(2) == "text_code_stage_2"


def test_cross_batch_dedup_and_source_change_detection(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    pages = [{"url": f"https://docs.example.org/{i}", "body": code_page(i).encode()} for i in range(6)]
    write_warc(str(src / "a.warc.gz"), pages[:4])
    write_warc(str(src / "b.warc.gz"), pages[2:])  # pages 2, 3 were already in batch a
    monkeypatch.setenv(T.SOURCES_ENV, str(src))
    corpus = CorpusResource(data_root=str(tmp_path / "data"), profile="tiny")
    inst = dg.DagsterInstance.ephemeral()
    T.prepare_run(inst, corpus)
    assert _md(_mat([T.web_text], corpus, inst, "a"), "web_text")["kept"] == 4
    b = _md(_mat([T.web_text], corpus, inst, "b"), "web_text")
    assert b["kept"] == 2 and "duplicate_url" in b["skip_reasons"]

    jsonl = src / "general.jsonl"
    jsonl.write_text('{"text": "' + "We walked by the river and talked about the garden. " * 8 + '"}\n')
    cfg = {"ops": {"general_text": {"config": {"sources": [str(jsonl)]}}}}
    first = _md(_mat([T.general_text], corpus, inst, run_config=cfg), "general_text")
    assert first["dagster/row_count"] == 1 and first["reused_existing"] is False
    assert _md(_mat([T.general_text], corpus, inst, run_config=cfg), "general_text")["reused_existing"] is True
    with open(jsonl, "a") as fh:
        fh.write('{"text": "' + "The neighbours came for dinner and stayed until late in the night. " * 8 + '"}\n')
    changed = _md(_mat([T.general_text], corpus, inst, run_config=cfg), "general_text")
    assert changed["reused_existing"] is False and changed["dagster/row_count"] == 2


def test_misconfiguration_fails_with_a_clear_message(graph, tmp_path):
    corpus, inst, k = graph["corpus"], graph["instance"], graph["keys"][0]
    cfg = {"ops": {"web_text": {"config": {"lid_model_path": str(tmp_path / "lid.176.bin")}}}}
    res = dg.materialize([T.web_text], partition_key=k, resources={"corpus": corpus}, instance=inst,
                         run_config=cfg, raise_on_error=False)
    assert not res.success
    assert "lid.176.bin" in str(res.get_step_failure_events()[0].event_specific_data.error.message)
    cfg = {"ops": {"textcode_classifier_stage_2": {"config": {"batches": ["no-such-batch"]}}}}
    res = dg.materialize([T.RETRAIN_ASSETS[0]], resources={"corpus": corpus}, instance=inst, run_config=cfg,
                         raise_on_error=False)
    assert not res.success
    assert "no-such-batch" in str(res.get_step_failure_events()[0].event_specific_data.error.message)
    cfg = {"ops": {"textcode_classifier": {"config": {"positives": [str(tmp_path / "missing.jsonl")]}}}}
    res = dg.materialize([T.textcode_classifier], resources={"corpus": corpus}, instance=inst, run_config=cfg,
                         raise_on_error=False)
    assert not res.success
    assert "missing.jsonl" in str(res.get_step_failure_events()[0].event_specific_data.error.message)


def test_stage_count_changes_the_graph():
    import subprocess
    import sys

    code = "import assets.textcode as t; print(' '.join(sorted(a.key.to_user_string() for a in t.defs.assets)))"
    env = {**os.environ, T.STAGES_ENV: "2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == sorted(["web_text", "textcode_classifier", "textcode_classifier_stage_2",
                                         "text_code_stage_1", "text_code", "math_text", "general_text"])

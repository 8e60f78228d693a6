"""filter_shard_set, the decontam assets (with their blocking checks) and `codecorpus decontam`."""

from __future__ import annotations

import os

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from decontam_helpers import (
    CODE_DEDUP_SCHEMA,
    code_row,
    reformat_whitespace,
    stdlib_file,
    text_row,
    write_set,
)

from assets.common import metadata_text
from assets.decontam import code_clean, general_clean, math_clean, text_code_clean
from assets.partitions import text_batch_partitions
from assets.resources import CorpusResource, ExecutorResource
from corpus import shards
from corpus.decontam import REMOVED_SCHEMA, DecontamError
from corpus.schemas import TEXT_SCHEMA
from pipelines.cli import main as cli

REAL = ["json/__init__.py", "json/decoder.py", "json/encoder.py", "textwrap.py", "heapq.py", "bisect.py"]


def _code_rows(humaneval, mbpp):
    rows = [code_row(rel, stdlib_file(rel)) for rel in REAL]
    he = humaneval[20]
    rows.append(code_row("leak_he.py", stdlib_file("heapq.py")[:3000] + reformat_whitespace(
        he["prompt"] + he["canonical_solution"])))
    rows.append(code_row("leak_mbpp.py", mbpp[3]["code"] + "\n" + "\n".join(mbpp[3]["test_list"])))
    rows.append(code_row("none.py", None))
    rows.append(code_row("empty.py", ""))
    return rows


def test_filter_shard_set_counts_schema_and_determinism(tmp_path, decon, humaneval, mbpp):
    schema = CODE_DEDUP_SCHEMA.append(pa.field("extra_score", pa.float64()))
    rows = [r | {"extra_score": float(i)} for i, r in enumerate(_code_rows(humaneval, mbpp))]
    src = write_set(str(tmp_path / "in"), rows, schema=schema, row_group_rows=3, shard_rows=4)
    stats = decon.filter_shard_set(src, str(tmp_path / "out"), str(tmp_path / "rm"), text_column="content",
                                   batch_size=3)
    assert (stats.rows_in, stats.rows_kept, stats.rows_removed) == (len(rows), len(rows) - 2, 2)
    assert stats.empty_or_null == 2
    assert stats.removed_per_benchmark == {"humaneval": 1, "mbpp": 1}
    kept = pa.Table.from_batches(list(shards.iter_batches(str(tmp_path / "out"))))
    assert kept.column_names == schema.names  # extra columns pass through
    assert set(kept.column("path").to_pylist()) == set(REAL) | {"none.py", "empty.py"}
    removed = pa.Table.from_batches(list(shards.iter_batches(str(tmp_path / "rm"))))
    assert removed.schema.names == REMOVED_SCHEMA.names
    by_id = {r["id"]: r for r in removed.to_pylist()}
    leak_ids = {r["id"]: r["path"] for r in rows if r["path"].startswith("leak")}
    assert set(by_id) == set(leak_ids)
    for rid, path in leak_ids.items():
        want = ("humaneval", humaneval[20]["task_id"]) if "he" in path else ("mbpp", str(mbpp[3]["task_id"]))
        assert (by_id[rid]["benchmark"], by_id[rid]["task_id"]) == want
        assert len(by_id[rid]["ngram"].split()) == 10
    # Same input + config -> identical Parquet bytes.
    decon.filter_shard_set(src, str(tmp_path / "out2"), str(tmp_path / "rm2"), text_column="content", batch_size=3)
    m1, m2 = shards.read_manifest(str(tmp_path / "out")), shards.read_manifest(str(tmp_path / "out2"))
    assert [f["sha256"] for f in m1.files] == [f["sha256"] for f in m2.files]
    assert m1.config_hash == m2.config_hash


def test_missing_text_column_is_a_clear_error(tmp_path, decon):
    src = write_set(str(tmp_path / "in"), [text_row("http://a", "hello world")], schema=TEXT_SCHEMA)
    with pytest.raises(DecontamError, match=r"no text column 'content' .*pass the right column"):
        decon.filter_shard_set(src, str(tmp_path / "o"), str(tmp_path / "r"), text_column="content")
    assert not os.path.exists(tmp_path / "o")  # nothing half-written


def test_non_string_text_column_is_a_clear_error(tmp_path, decon):
    pq.write_table(pa.table({"id": ["a"], "text": [42]}), tmp_path / "x.parquet")
    with pytest.raises(DecontamError, match="has type int64, expected a string column"):
        decon.filter_shard_set(str(tmp_path / "x.parquet"), str(tmp_path / "o"), str(tmp_path / "r"),
                               text_column="text")


def test_malformed_parquet_input_names_the_file(tmp_path, decon):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part-0.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(shards.ShardSetError, match="part-0.parquet"):
        decon.filter_shard_set(str(tmp_path / "in"), str(tmp_path / "o"), str(tmp_path / "r"), text_column="text")


# ----------------------------------------------------------------------------- assets


def _materialize(assets, tmp_path, partition=None, instance=None, run_config=None):
    return dg.materialize(
        assets, partition_key=partition, resources={"executor": ExecutorResource(), "corpus": CorpusResource(data_root=str(tmp_path), profile="tiny")},
        instance=instance or dg.DagsterInstance.ephemeral(), run_config=run_config, raise_on_error=False,
    )


def _meta(result, key):
    for e in result.get_asset_materialization_events():
        if e.asset_key == dg.AssetKey(key):
            return {k: metadata_text(v) for k, v in e.materialization.metadata.items()}
    raise AssertionError(f"no materialization of {key}")


def test_code_clean_asset_removes_leaks_checks_pass_and_rerun_is_noop(tmp_path, humaneval, mbpp):
    rows = _code_rows(humaneval, mbpp)
    write_set(shards.shard_set_path(str(tmp_path), "code_quality", "python"), rows)
    res = _materialize([code_clean], tmp_path, "python")
    assert res.success
    meta = _meta(res, "code_clean")
    assert (meta["input_rows"], meta["kept_rows"], meta["dropped_rows"]) == (len(rows), len(rows) - 2, 2)
    assert "| humaneval | 1 |" in meta["hits_per_benchmark"] and "| mbpp | 1 | 1 |" in meta["hits_per_benchmark"]
    assert meta["reused_existing"] is False
    assert humaneval[20]["task_id"] in meta["removed_examples"]
    checks = {e.check_name: e.passed for e in res.get_asset_check_evaluations()}
    assert checks == {"counts_add_up": True, "no_benchmark_ngrams": True}
    assert _meta(res, "code_clean_removed")["dagster/row_count"] == 2
    again = _materialize([code_clean], tmp_path, "python")
    assert _meta(again, "code_clean")["reused_existing"] is True
    # A different benchmark selection is a different config: the asset re-runs.
    cfg = {"ops": {"code_clean": {"config": {"benchmarks": ["mbpp"]}}}}
    third = _materialize([code_clean], tmp_path, "python", run_config=cfg)
    assert _meta(third, "code_clean")["reused_existing"] is False
    assert _meta(third, "code_clean")["dropped_rows"] == 1


def test_blocking_check_fails_when_a_kept_row_is_dirty(tmp_path, humaneval, monkeypatch):
    """If the filter let a leak through, the independent re-check fails and blocks downstream."""
    rows = [code_row("a.py", stdlib_file("bisect.py")),
            code_row("leak.py", humaneval[0]["prompt"] + humaneval[0]["canonical_solution"])]
    write_set(shards.shard_set_path(str(tmp_path), "code_quality", "python"), rows)
    from corpus.decontam import Decontaminator

    monkeypatch.setattr(Decontaminator, "find_array", lambda self, col: {})  # a broken filter
    res = _materialize([code_clean], tmp_path, "python")
    checks = {e.check_name: e.passed for e in res.get_asset_check_evaluations()}
    assert checks["no_benchmark_ngrams"] is False
    assert checks["counts_add_up"] is True


def test_text_assets_partitioned_and_unpartitioned(tmp_path, gsm8k, math500):
    texts = [text_row("http://blog/1", stdlib_file("textwrap.py")[:4000]),
             text_row("http://blog/2", "Great recipe! " + gsm8k[5]["question"] + " " + gsm8k[5]["answer"]),
             text_row("http://blog/3", None)]
    maths = [text_row("http://m/1", math500[9]["problem"] + "\n" + math500[9]["solution"]),
             text_row("http://m/2", "Let x be a real number. We prove the AM-GM inequality for two terms.")]
    write_set(shards.shard_set_path(str(tmp_path), "text_code", "batch-001"), texts, schema=TEXT_SCHEMA)
    write_set(shards.shard_set_path(str(tmp_path), "math_text"), maths, schema=TEXT_SCHEMA)
    write_set(shards.shard_set_path(str(tmp_path), "general_text"), texts[:1], schema=TEXT_SCHEMA)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(text_batch_partitions.name, ["batch-001"])
    res = _materialize([text_code_clean], tmp_path, "batch-001", instance=instance)
    assert res.success and _meta(res, "text_code_clean")["dropped_rows"] == 1
    res = _materialize([math_clean, general_clean], tmp_path)
    assert res.success
    assert _meta(res, "math_clean")["dropped_rows"] == 1 and _meta(res, "general_clean")["dropped_rows"] == 0
    removed = pq.read_table(shards.shard_files(shards.shard_set_path(str(tmp_path), "math_clean_removed"))[0])
    assert removed.column("task_id").to_pylist() == [math500[9]["unique_id"]]


def test_asset_fails_clearly_on_missing_upstream_and_wrong_column(tmp_path):
    res = _materialize([math_clean], tmp_path)
    assert not res.success
    write_set(shards.shard_set_path(str(tmp_path), "math_text"), [code_row("a.py", "x")])
    res = _materialize([math_clean], tmp_path)
    assert not res.success
    failure = [e for e in res.all_events if e.event_type_value == "STEP_FAILURE"][0]
    assert "no text column 'text'" in failure.step_failure_data.error.message


# ----------------------------------------------------------------------------- CLI


def test_cli_decontam_end_to_end(tmp_path, humaneval, mbpp, capsys):
    rows = _code_rows(humaneval, mbpp)
    write_set(str(tmp_path / "in"), rows)
    rc = cli(["decontam", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")])
    assert rc == 0
    out = capsys.readouterr().out
    assert f"{len(rows)} rows in" in out and "2 removed" in out and "humaneval" in out
    assert shards.count_rows(str(tmp_path / "out")) == len(rows) - 2
    assert shards.count_rows(str(tmp_path / "out_removed")) == 2
    rc = cli(["decontam", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o2"), "--benchmarks",
              "gsm8k,math", "--json"])
    assert rc == 0 and '"rows_removed": 0' in capsys.readouterr().out


def test_cli_decontam_find_and_errors(tmp_path, humaneval, capsys):
    leak = tmp_path / "leak.py"
    leak.write_text(humaneval[9]["prompt"] + humaneval[9]["canonical_solution"])
    assert cli(["decontam", "--find", str(leak)]) == 1
    assert humaneval[9]["task_id"] in capsys.readouterr().out
    clean = tmp_path / "clean.py"
    clean.write_text(stdlib_file("bisect.py"))
    assert cli(["decontam", "--find", str(clean)]) == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    assert cli(["decontam", "--find", str(clean), "--extra", f"{bad}:bad:q"]) == 2
    assert f"{bad}:1" in capsys.readouterr().err
    assert cli(["decontam", "--input", str(tmp_path / "missing"), "--output", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["decontam", "--help"])
    assert "--benchmarks" in capsys.readouterr().out


def test_huge_row_and_row_cap(tmp_path, humaneval):
    """A 6 MB file (bigger than one hashing window) is scanned whole; max_rows caps the input and the
    counts check accounts for the cap."""
    leak = humaneval[30]["prompt"] + humaneval[30]["canonical_solution"]
    filler = stdlib_file("statistics.py")
    huge = filler * (6_000_000 // len(filler)) + leak + filler
    rows = [code_row("huge.py", huge)] + [code_row(f"f{i}.py", stdlib_file(r)) for i, r in enumerate(REAL)]
    write_set(shards.shard_set_path(str(tmp_path), "code_quality", "python"), rows)
    res = _materialize([code_clean], tmp_path, "python")
    meta = _meta(res, "code_clean")
    assert (meta["input_rows"], meta["dropped_rows"]) == (len(rows), 1)
    cfg = {"ops": {"code_clean": {"config": {"max_rows": 3}}}}
    res = _materialize([code_clean], tmp_path, "python", run_config=cfg)
    assert _meta(res, "code_clean")["input_rows"] == 3 and _meta(res, "code_clean")["input_capped_at"] == 3
    assert all(e.passed for e in res.get_asset_check_evaluations())

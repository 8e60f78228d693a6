"""The code_dedup asset in-process: real upstream shard set, metadata, check, re-run no-op."""

import dagster as dg
import pytest
from dedup_fixtures import (
    code_row,
    near_duplicate_pairs,
    read,
    read_set,
    rows_from_files,
    unrelated_files,
    write_code_set,
)

from assets.common import metadata_text
from assets.dedup import code_dedup
from assets.resources import CorpusResource, ExecutorResource


def _materialize(tmp_path, config=None):
    return dg.materialize(
        [code_dedup],
        partition_key="python",
        resources={"executor": ExecutorResource(), "corpus": CorpusResource(data_root=str(tmp_path), profile="tiny")},
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {"code_dedup": {"config": config or {}}}},
        raise_on_error=False,
    )


def _meta(result, key="code_dedup"):
    mats = [m for m in result.asset_materializations_for_node("code_dedup") if m.asset_key.path == [key]]
    assert len(mats) == 1
    return {k: metadata_text(v) for k, v in mats[0].metadata.items()}


def test_code_dedup_asset_writes_sets_metadata_and_reuses(tmp_path):
    pairs = near_duplicate_pairs(lo=0.9, limit=3)
    rows = [code_row(p, read(p)) for a, b, _ in pairs for p in (a, b)] + rows_from_files(unrelated_files(6))
    rows.append(code_row("again.py", rows[-1]["content"]))
    corpus = CorpusResource(data_root=str(tmp_path), profile="tiny")
    write_code_set(corpus.path("code_files", "python"), rows)

    result = _materialize(tmp_path)
    assert result.success
    meta = _meta(result)
    assert meta["input_rows"] == len(rows) and meta["kept_rows"] == len(rows) - len(pairs) - 1
    assert meta["near_duplicates"] == len(pairs) and meta["exact_duplicates"] == 1
    assert meta["clusters"] == len(pairs) + 1 and meta["largest_cluster"] == 2
    assert meta["reused_existing"] is False and meta["false_positives_dropped"] >= 0
    assert "| 2 | 4 |" in meta["cluster_sizes"] and "| map |" in meta["phase_seconds"]
    assert "| total |" in meta["phase_seconds"] and 0 < meta["mb_per_s"] < 10_000
    kept = read_set(corpus.path("code_dedup", "python"))
    assert kept.num_rows == meta["kept_rows"] and kept.schema.names[-1] == "cluster_id"
    assert read_set(corpus.path("code_dedup_clusters", "python")).num_rows == len(rows)
    table_meta = _meta(result, "code_dedup_clusters")
    assert table_meta["dagster/row_count"] == len(rows) and "near_duplicate" in table_meta["reasons"]
    checks = result.get_asset_check_evaluations()
    assert [c.check_name for c in checks] == ["kept_rows_consistent"] and checks[0].passed

    again = _materialize(tmp_path)
    assert again.success and _meta(again)["reused_existing"] is True
    changed = _materialize(tmp_path, {"threshold": 0.95})
    assert changed.success and _meta(changed)["reused_existing"] is False


def test_code_dedup_without_upstream_fails_clearly(tmp_path):
    result = _materialize(tmp_path)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "materialize 'code_files'" in failure.step_failure_data.error.message


@pytest.mark.parametrize("config,match", [({"keep_policy": ["stars", "karma"]}, "unknown criteria"),
                                          ({"threshold": 0.0}, "threshold")])
def test_code_dedup_bad_config_fails_clearly(tmp_path, config, match):
    corpus = CorpusResource(data_root=str(tmp_path), profile="tiny")
    write_code_set(corpus.path("code_files", "python"), [code_row("a.py", "x = 1")])
    result = _materialize(tmp_path, config)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert match in failure.step_failure_data.error.message


def test_code_dedup_subset_selection_records_every_set_it_writes(tmp_path):
    corpus = CorpusResource(data_root=str(tmp_path), profile="tiny")
    write_code_set(corpus.path("code_files", "python"), rows_from_files(unrelated_files(3)))
    instance = dg.DagsterInstance.ephemeral()

    def run():
        return dg.materialize([code_dedup], selection=["code_dedup_clusters"], partition_key="python",
                              resources={"executor": ExecutorResource(), "corpus": corpus}, instance=instance)

    result = run()
    assert result.success and not result.get_asset_check_evaluations()
    keys = sorted(m.asset_key.path[0] for m in result.asset_materializations_for_node("code_dedup"))
    # Both sets were rewritten on disk, so both record a materialization (the unselected one too).
    assert keys == ["code_dedup", "code_dedup_clusters"]
    assert read_set(corpus.path("code_dedup", "python")).num_rows == 3
    latest = instance.get_latest_materialization_event(dg.AssetKey("code_dedup"))
    assert latest is not None and latest.asset_materialization.partition == "python"
    assert latest.asset_materialization.metadata["dagster/row_count"].value == 3
    # Nothing rewritten (inputs and config unchanged): only the selected key reports.
    again = run()
    keys = [m.asset_key.path[0] for m in again.asset_materializations_for_node("code_dedup")]
    assert keys == ["code_dedup_clusters"]

"""The crawl assets materialized in-process on real local sources."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets.common import metadata_text
from assets.crawl import code_commits, code_files
from assets.resources import CorpusResource
from corpus import shards


def _materialize(asset, tmp_path: Path, partition: str | None = None, config: dict | None = None,
                 profile: str = "tiny", raise_on_error: bool = True):
    run_config = {"ops": {asset.op.name: {"config": config}}} if config else None
    return dg.materialize([asset], partition_key=partition, run_config=run_config, raise_on_error=raise_on_error,
                          resources={"corpus": CorpusResource(data_root=str(tmp_path / "data"), profile=profile)},
                          instance=dg.DagsterInstance.ephemeral())


def _meta(result, name: str) -> dict:
    [mat] = result.asset_materializations_for_node(name)
    return {k: metadata_text(v) for k, v in mat.metadata.items()}


def test_code_files_partition_from_configured_sources(bad_repo: Path, git_repo: Path, tmp_path: Path) -> None:
    config = {"sources": [f"local:{bad_repo}", f"git:{git_repo}"]}
    res = _materialize(code_files, tmp_path, "python", config)
    meta = _meta(res, "code_files")
    assert meta["dagster/row_count"] == meta["files"] > 0 and meta["reused_existing"] is False
    for reason in ("binary", "too_large", "symlink_loop", "symlink_outside_repo", "malformed_notebook"):
        assert f"| {reason} |" in meta["skip_reasons"]
    assert "| fetched | 2 |" in meta["repos"]
    assert "local/demo" in meta["repo_outcomes"]
    [check] = res.get_asset_check_evaluations()
    assert check.passed
    data = tmp_path / "data"
    rows = [r for b in shards.iter_batches(str(data / "code_files" / "python")) for r in b.to_pylist()]
    assert {r["language"] for r in rows} == {"python"}
    assert shards.is_committed(str(data / "code_files_repos" / "python"))
    assert (data / "_cache" / "git").is_dir()
    again = _meta(_materialize(code_files, tmp_path, "python", config), "code_files")
    assert again["reused_existing"] is True and again["content_hash"] == meta["content_hash"]
    java = _meta(_materialize(code_files, tmp_path, "java", config), "code_files")
    assert java["dagster/row_count"] == 1


def test_code_files_embedded_default_tiny(tmp_path: Path) -> None:
    """No config: this machine's stdlib / site-packages / JDK sources, capped by the tiny profile."""
    meta = _meta(_materialize(code_files, tmp_path, "python"), "code_files")
    assert 0 < meta["dagster/row_count"] <= 150
    rows = [r for b in shards.iter_batches(str(tmp_path / "data" / "code_files" / "python")) for r in b.to_pylist()]
    assert all(r["license"] for r in rows) and len({r["repo"] for r in rows}) >= 3  # per-repo cap spreads it


def test_bad_source_config_fails_with_a_clear_message(tmp_path: Path) -> None:
    res = _materialize(code_files, tmp_path, "python", {"sources": ["nowhere-xyz"]}, raise_on_error=False)
    assert not res.success
    failure = next(e for e in res.all_events if e.event_type_value == "STEP_FAILURE")
    assert "code_files config 'sources'" in failure.step_failure_data.error.message


def test_code_commits_from_a_git_repo(git_repo: Path, tmp_path: Path) -> None:
    meta = _meta(_materialize(code_commits, tmp_path, config={"repos": [f"git:{git_repo}"]}), "code_commits")
    assert meta["commits"] == 2 and "| local/demo | fetched |  | 2 |" in meta["repos"]
    rows = [r for b in shards.iter_batches(str(tmp_path / "data" / "code_commits" / "_all")) for r in b.to_pylist()]
    assert [r["message"] for r in rows] == ["Add mul", "Document add"]
    assert all(r["source"] == "commit" and r["license"] == "MIT" for r in rows)
    again = _meta(_materialize(code_commits, tmp_path, config={"repos": [f"git:{git_repo}"]}), "code_commits")
    assert again["reused_existing"] is True


def test_assets_are_discovered_by_the_code_location() -> None:
    from pipelines.definitions import build_definitions

    keys = {k.to_user_string() for k in build_definitions().resolve_asset_graph().materializable_asset_keys}
    assert {"code_files", "code_commits"} <= keys


def test_code_commits_default_mines_the_crawl_clone_cache(git_repo: Path, tmp_path: Path) -> None:
    _materialize(code_files, tmp_path, "python", {"sources": [f"git:{git_repo}"]})
    meta = _meta(_materialize(code_commits, tmp_path), "code_commits")
    assert meta["commits"] == 2 and "| local/demo | fetched |  | 2 |" in meta["repos"]


def test_weekly_schedule_requests_one_run_per_language() -> None:
    from datetime import datetime, timezone

    from assets.crawl import weekly_crawl
    from assets.partitions import language_partitions

    ctx = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 1, 4, 3, tzinfo=timezone.utc))
    requests = weekly_crawl(ctx)
    assert [r.partition_key for r in requests] == list(language_partitions.get_partition_keys())
    assert requests[0].run_key.endswith("2026-01-04")

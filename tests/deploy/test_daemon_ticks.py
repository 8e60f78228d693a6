"""dagster-daemon on the project's own code location and instance file (the embedded sqlite
default): the weekly crawl schedule, once on, ticks and its run succeeds; the text-batch sensor,
on by default, registers a batch and its web_text run succeeds."""

from __future__ import annotations

import json
import os
import subprocess
import time

import dagster as dg
from deploy_services import BIN, REPO, dagster_env, process, wait_for, write_instance

SCHEDULE = "weekly_crawl"
SENSOR = "text_batch_sensor"
TEXT = ("The river ran past the old mill and the children walked along its bank every morning, talking about "
        "the birds they saw, the weather, and what they would cook for dinner with their grandmother. ")


def _write_batch(folder) -> str:
    folder.mkdir()
    path = folder / "batch-a.jsonl"
    with open(path, "w") as fh:
        for i in range(6):
            fh.write(json.dumps({"url": f"https://example.org/page-{i}", "text": f"Page {i}. " + TEXT * 3}) + "\n")
    return str(folder)


def _backdate_schedule(instance: dg.DagsterInstance, days: float) -> None:
    """Pretend the schedule was switched on ``days`` ago, so the daemon's first pass owes it the
    tick that fell in between (a weekly cron has exactly one in any 7 days): no waiting for
    Sunday 03:00. Uses the instance's instigator-state API, as `dagster schedule start` does."""
    from dagster._core.scheduler.instigation import InstigatorType, ScheduleInstigatorData

    [state] = [s for s in instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
               if s.name == SCHEDULE]
    data = state.instigator_data
    assert isinstance(data, ScheduleInstigatorData)
    instance.update_instigator_state(state.with_data(ScheduleInstigatorData(
        data.cron_schedule, start_timestamp=time.time() - days * 86400)))


def test_schedule_and_sensor_ticks_launch_successful_runs(tmp_path, monkeypatch):
    home = str(tmp_path / "home")
    write_instance(home, "dagster.yaml")
    monkeypatch.chdir(home)  # the instance file's storage paths are relative: keep them in the temp home
    env = dagster_env(home, {
        "CODECORPUS_DATA": str(tmp_path / "data"), "CODECORPUS_PROFILE": "tiny", "CODECORPUS_LANGUAGES": "python",
        "CODECORPUS_TEXTCODE_SOURCES": _write_batch(tmp_path / "text"),
    })
    workspace = os.path.join(REPO, "workspace.yaml")
    r = subprocess.run([f"{BIN}/dagster", "schedule", "start", SCHEDULE, "-w", workspace], cwd=home, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    instance = dg.DagsterInstance.from_config(home)
    _backdate_schedule(instance, days=7 - 1 / 24)
    with process([f"{BIN}/dagster-daemon", "run", "-w", workspace], env, str(tmp_path / "daemon.log"), cwd=home):
        def both_done():
            runs = instance.get_runs()
            by = {k: [r for r in runs if r.tags.get(k)] for k in ("dagster/schedule_name", "dagster/sensor_name")}
            done = all(rs and all(r.is_finished for r in rs) for rs in by.values())
            return by if done else None

        try:
            by = wait_for(both_done, 240, "a run from the schedule tick and one from the sensor tick to finish")
        except AssertionError:
            log = (tmp_path / "daemon.log").read_text(errors="replace")[-4000:]
            runs = [(r.run_id[:8], r.status, dict(r.tags)) for r in instance.get_runs()]
            raise AssertionError(f"runs: {runs}\ndaemon log:\n{log}") from None
    [crawl] = by["dagster/schedule_name"]
    [text] = by["dagster/sensor_name"]
    assert crawl.tags["dagster/schedule_name"] == SCHEDULE and crawl.tags["dagster/partition"] == "python"
    assert text.tags["dagster/sensor_name"] == SENSOR and text.tags["dagster/partition"] == "batch-a"
    for run in (crawl, text):
        assert run.status == dg.DagsterRunStatus.SUCCESS, (run.run_id, run.status)
    assert instance.get_dynamic_partitions("text_batches") == ["batch-a"]
    web = instance.get_latest_materialization_event(dg.AssetKey("web_text"))
    assert web is not None and web.asset_materialization.metadata["dagster/row_count"].value > 0
    files = instance.get_latest_materialization_event(dg.AssetKey("code_files"))
    assert files is not None and files.asset_materialization.metadata["dagster/row_count"].value > 0

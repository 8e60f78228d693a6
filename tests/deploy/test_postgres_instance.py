"""The Postgres instance (deploy/postgres/dagster.yaml) on a real PostgreSQL server started by
the test: runs submitted in a burst go through the queued run coordinator and dagster-daemon,
several run at once (never more than the configured limit), and every run's event log is in
Postgres."""

from __future__ import annotations

import os

import dagster as dg
import pytest
from deploy_services import BIN, REPO, dagster_env, postgres_server, process, wait_for, write_instance

pytest.importorskip("dagster_postgres", reason="dagster-postgres not installed (pip install -e '.[deploy]')")

LIMIT = 2
RUNS = 4


@pytest.fixture(scope="module")
def pg():
    with postgres_server() as server:
        yield server


def test_queued_runs_run_concurrently_on_postgres(pg, tmp_path):
    home = str(tmp_path / "home")
    write_instance(home, "deploy/postgres/dagster.yaml",
                   {"max_concurrent_runs: 4": f"max_concurrent_runs: {LIMIT}"})
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(f"load_from:\n  - python_file:\n      relative_path: {REPO}/tests/deploy/toy_location.py\n"
                         f"      working_directory: {REPO}/tests/deploy\n")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = dagster_env(home, pg.env() | {"TOY_BURST_RUNS": str(RUNS), "TOY_BARRIER_DIR": str(barrier)})
    os.environ.update(pg.env())  # this process reads the same instance
    try:
        instance = dg.DagsterInstance.from_config(home)
        from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        with process([f"{BIN}/dagster-daemon", "run", "-w", str(workspace)], env, str(tmp_path / "daemon.log")):
            def finished():
                runs = instance.get_runs()
                done = [r for r in runs if r.is_finished]
                return runs if len(runs) == RUNS and len(done) == RUNS else None

            try:
                runs = wait_for(finished, 180, f"{RUNS} runs to finish")
            except AssertionError:
                log = (tmp_path / "daemon.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"runs: {[(r.run_id[:8], r.status) for r in instance.get_runs()]}\n{log}") from None
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [(r.run_id, r.status) for r in runs]
        spans = []
        for r in runs:
            T = dg.DagsterEventType
            events = [e.dagster_event.event_type for e in instance.all_logs(r.run_id) if e.dagster_event]
            assert events[0] == T.RUN_ENQUEUED, events[:3]  # submitted to the queue, not launched directly
            for must in (T.RUN_STARTING, T.RUN_START, T.STEP_SUCCESS, T.ASSET_MATERIALIZATION, T.RUN_SUCCESS):
                assert must in events, (r.run_id, must, events)
            [mat] = [e.asset_materialization for e in instance.all_logs(r.run_id, of_type=
                     dg.DagsterEventType.ASSET_MATERIALIZATION)]
            spans.append((mat.metadata["started_at"].value, mat.metadata["ended_at"].value))
        # Concurrency: runs were in their op at the same time (the barrier waits for a second
        # run, so a coordinator that ran them one by one fails here), never more than the limit.
        points = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
        running = peak = 0
        for _, d in points:
            running += d
            peak = max(peak, running)
        assert 2 <= peak <= LIMIT, (peak, spans)
        assert instance.get_latest_materialization_event(dg.AssetKey("toy_output")) is not None
    finally:
        for k in pg.env():
            os.environ.pop(k, None)

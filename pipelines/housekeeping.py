"""Housekeeping that needs the Dagster instance: runs left STARTED by a dead process.

A run worker killed by SIGKILL or a power cut never writes RUN_FAILURE, so the run stays
STARTED in the UI forever and blocks nothing but confuses everyone. A run is known dead when
its owner (tags written by ``codecorpus run``, or the pid Dagster's run launcher logs in an
engine event) is on this host and no longer alive.
"""

from __future__ import annotations

import socket

import dagster as dg

from corpus.locks import pid_alive

_ACTIVE = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.CANCELING]


def _owner(instance: dg.DagsterInstance, run: dg.DagsterRun) -> tuple[str, int, str] | None:
    tags = run.tags
    if "codecorpus/pid" in tags:
        return tags.get("codecorpus/host", ""), int(tags["codecorpus/pid"]), tags.get("codecorpus/proc_start", "")
    records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=20).records
    for rec in records:
        event = rec.event_log_entry.dagster_event
        md = getattr(getattr(event, "event_specific_data", None), "metadata", None) or {}
        pid = md.get("pid")
        if pid is not None:
            value = getattr(pid, "value", pid)
            try:
                return socket.gethostname(), int(value), ""
            except (TypeError, ValueError):
                continue
    return None


def dead_runs(instance: dg.DagsterInstance) -> list[tuple[dg.DagsterRun, str]]:
    """Active runs whose owning process on this host is gone, with who owned them."""
    out = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=_ACTIVE)):
        owner = _owner(instance, run)
        if owner is None:
            continue
        host, pid, start = owner
        if host == socket.gethostname() and not pid_alive(pid, start):
            out.append((run, f"pid {pid} on {host}"))
    return out


def fail_dead_runs(instance: dg.DagsterInstance, dry_run: bool = False) -> list[str]:
    """Mark runs left STARTED by a dead process as FAILURE; returns their run ids."""
    failed = []
    for run, who in dead_runs(instance):
        if not dry_run:
            instance.report_run_failed(run, f"codecorpus gc: the run's process ({who}) is gone; marked failed")
        failed.append(run.run_id)
    return failed

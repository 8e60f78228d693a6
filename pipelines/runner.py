"""Plan and execute a whole-graph materialization as a sequence of runs.

Dagster executes one partition key per run, so the graph is cut into *waves*: maximal
groups of assets, in dependency order, that share a partitions definition. Each wave runs
once per partition key (all languages, all registered text batches, or once).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dagster as dg

from assets.resources import CorpusResource


@dataclass
class Wave:
    partitions_def: dg.PartitionsDefinition | None
    asset_keys: list[dg.AssetKey] = field(default_factory=list)
    partition_keys: list[str] = field(default_factory=list)


def _prepare(instance: dg.DagsterInstance, corpus: CorpusResource) -> None:
    from pipelines.definitions import stage_modules

    for mod in stage_modules():
        hook = getattr(mod, "prepare_run", None)
        if callable(hook):
            hook(instance, corpus)


def plan_waves(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    corpus: CorpusResource,
    select: Sequence[str] | None = None,
    partitions: Sequence[str] | None = None,
) -> list[Wave]:
    """Topological order of the graph, grouped into waves of equal partitioning."""
    _prepare(instance, corpus)
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.materializable_asset_keys]
    if select:
        wanted = {dg.AssetKey.from_user_string(s) for s in select}
        unknown = wanted - set(keys)
        if unknown:
            raise SystemExit(f"unknown asset(s): {sorted(k.to_user_string() for k in unknown)}")
        keys = [k for k in keys if k in wanted]
    keyset = set(keys)
    parents = {k: {p for p in graph.get(k).parent_keys if p in keyset} for k in keys}
    pdef = {k: graph.get(k).partitions_def for k in keys}
    done: set[dg.AssetKey] = set()
    waves: list[Wave] = []
    while len(done) < len(keys):
        ready = sorted((k for k in keys if k not in done and parents[k] <= done), key=lambda k: k.to_user_string())
        if not ready:
            raise RuntimeError("cycle in the asset graph")
        current = waves[-1] if waves else None
        same = [k for k in ready if current is not None and pdef[k] == current.partitions_def]
        if not same:
            current = Wave(pdef[ready[0]])
            waves.append(current)
            same = [k for k in ready if pdef[k] == current.partitions_def]
        # Add the ready assets of this partitioning, then whatever they unlock, transitively.
        while same:
            current.asset_keys.extend(same)
            done.update(same)
            same = sorted(
                (k for k in keys if k not in done and parents[k] <= done and pdef[k] == current.partitions_def),
                key=lambda k: k.to_user_string(),
            )
    for w in waves:
        if w.partitions_def is not None:
            all_keys = list(w.partitions_def.get_partition_keys(dynamic_partitions_store=instance))
            # A key filter narrows the waves whose partitioning it names (e.g. languages) and
            # leaves the others (e.g. text batches) whole.
            chosen = [p for p in all_keys if partitions and p in partitions]
            w.partition_keys = chosen or all_keys
    return [w for w in waves if w.partitions_def is None or w.partition_keys]


def owner_tags() -> dict[str, str]:
    """Who runs a run: lets ``codecorpus gc`` tell a run left STARTED by a dead process."""
    from corpus.locks import proc_start_time

    return {"codecorpus/host": socket.gethostname(), "codecorpus/pid": str(os.getpid()),
            "codecorpus/proc_start": proc_start_time(os.getpid())}


def run_waves(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    waves: Sequence[Wave],
    log: Callable[[str], None] = print,
    log_level: str = "WARNING",
) -> list[str]:
    """Execute the waves in order; returns a description of each failed run (empty = success).

    A failed partition does not stop its siblings, but later waves are skipped if anything
    upstream failed, so no stage consumes a half-built graph. ``log_level`` is the console
    level of Dagster's own event log (the full log is always in the instance / UI).
    """
    job = defs.resolve_implicit_global_asset_job_def()
    failures: list[str] = []
    total = sum(max(1, len(w.partition_keys)) for w in waves)
    n = 0
    for w in waves:
        names = " ".join(k.to_user_string() for k in w.asset_keys)
        for pk in w.partition_keys or [None]:
            n += 1
            label = f"[{n}/{total}] {names}" + (f" (partition {pk})" if pk else "")
            log(f"{label}: running")
            t0 = time.monotonic()
            result = job.execute_in_process(
                instance=instance,
                asset_selection=w.asset_keys,
                partition_key=pk,
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
                tags=owner_tags(),
            )
            if result.success:
                log(f"{label}: ok in {time.monotonic() - t0:.1f}s (run {result.run_id[:8]})")
            else:
                err = _first_error(result)
                failures.append(f"{label}: {err}")
                log(f"{label}: FAILED: {err}")
        if failures:
            break
    return failures


def _first_error(result: dg.ExecuteInProcessResult) -> str:
    for ev in result.all_events:
        if ev.event_type_value == "STEP_FAILURE" and ev.step_failure_data and ev.step_failure_data.error:
            err = ev.step_failure_data.error
            while err.cause is not None:  # the user's exception, not Dagster's wrapper
                err = err.cause
            return f"{ev.step_key}: {err.message.strip()}"
    return "run failed (see the Dagster UI for the run's logs)"



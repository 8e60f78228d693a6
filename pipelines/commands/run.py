"""``codecorpus run``: materialize the whole graph on the embedded default, with progress."""

from __future__ import annotations

import argparse
import os
import sys
import time

from pipelines.commands._executor import add_executor_arguments, executor_spec

NAME = "run"
HELP = "materialize every asset (all partitions) on the local Dagster instance"
DESCRIPTION = (
    "Materialize the whole asset graph in dependency order on the embedded default: local "
    "Dagster instance (DAGSTER_HOME), local Parquet under CODECORPUS_DATA, local sandbox, CPU "
    "training. Runs appear in the Dagster UI (dagster dev -w workspace.yaml)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="data root (default: $CODECORPUS_DATA or ./data)")
    p.add_argument("--profile", choices=["default", "tiny"], help="size of the embedded run (default: default)")
    p.add_argument("--select", nargs="*", metavar="ASSET", help="only these assets (and nothing upstream)")
    p.add_argument("--partition", nargs="*", metavar="KEY", help="only these partition keys (e.g. languages); partitionings none of them belong to run whole")
    p.add_argument("--ephemeral", action="store_true", help="use an in-memory Dagster instance")
    p.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="console level of Dagster's event log (default WARNING; the UI keeps everything)")
    p.add_argument("--list", action="store_true", help="print the plan (waves of assets and partitions) and exit")
    add_executor_arguments(p)


def main(args: argparse.Namespace) -> int:
    import dagster as dg

    from corpus import shards
    from pipelines.definitions import build_definitions
    from pipelines.resources import default_resources
    from pipelines.runner import plan_waves, run_waves

    if args.data:
        os.environ["CODECORPUS_DATA"] = shards.abspath(args.data)
    resources = default_resources(data_root=args.data and shards.abspath(args.data), profile=args.profile,
                                  executor=executor_spec(args))
    defs = build_definitions(resources)
    if args.ephemeral:
        instance = dg.DagsterInstance.ephemeral()
    else:
        os.environ.setdefault("DAGSTER_HOME", os.getcwd())
        instance = dg.DagsterInstance.get()
        from pipelines.housekeeping import fail_dead_runs

        for run_id in fail_dead_runs(instance):  # an earlier `codecorpus run` that was killed
            print(f"marked run {run_id[:8]} failed: its process is gone")
    waves = plan_waves(defs, instance, resources["corpus"], select=args.select, partitions=args.partition)
    if args.list:
        for w in waves:
            print(f"{','.join(w.partition_keys) or '-'}: {' '.join(k.to_user_string() for k in w.asset_keys)}")
        return 0
    t0 = time.time()
    failures = run_waves(defs, instance, waves, log=lambda m: print(m, flush=True), log_level=args.log_level)
    dt = time.time() - t0
    if failures:
        print(f"codecorpus run: {len(failures)} run(s) failed in {dt:.0f}s:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        return 1
    print(f"codecorpus run: all assets materialized in {dt:.0f}s; data under {resources['corpus'].data_root}")
    return 0

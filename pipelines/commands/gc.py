"""``codecorpus gc``: remove what killed writers left, old versions past retention, and mark
runs left STARTED by a dead process as failed."""

from __future__ import annotations

import argparse
import os
import sys

NAME = "gc"
HELP = "remove stale temporaries and old shard-set versions; fail runs whose process died"
DESCRIPTION = (
    "Walk every shard set under --root (default CODECORPUS_DATA) and, holding each set's writer lock "
    "(a set being written is skipped), remove partial versions, work folders of dead writers and "
    "versions older than the newest --keep; restore a set parked by an interrupted replace. Then "
    "mark Dagster runs left STARTED by a process that no longer exists as failed (--no-runs to skip)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", help="data root (default: CODECORPUS_DATA or ./data)")
    p.add_argument("--keep", type=int, default=None,
                   help="old versions to keep per set (default: CODECORPUS_KEEP_VERSIONS, else 1)")
    p.add_argument("--no-runs", action="store_true", help="do not touch the Dagster instance")
    p.add_argument("--dry-run", action="store_true", help="only list dead runs (sets are always cleaned safely)")


def main(args: argparse.Namespace) -> int:
    from corpus import shards

    root = os.path.abspath(args.root or shards.data_root())
    if args.keep is not None and args.keep < 0:
        print("codecorpus gc: --keep must be >= 0", file=sys.stderr)
        return 2
    removed = 0
    if os.path.isdir(root):
        for path in shards.set_paths_under(root):
            gone = [] if args.dry_run else shards.gc_set(path, args.keep)
            for g in gone:
                print(f"removed {g}")
            removed += len(gone)
    print(f"gc: {removed} stale temporaries / old versions removed under {root}")
    if not args.no_runs:
        import dagster as dg

        from pipelines.housekeeping import fail_dead_runs

        instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None
        if instance is None:
            print("gc: DAGSTER_HOME is not set; no run records checked")
        else:
            for run_id in fail_dead_runs(instance, dry_run=args.dry_run):
                print(f"{'would mark' if args.dry_run else 'marked'} run {run_id} failed (its process is gone)")
    return 0

"""The ``--executor / --workers / --ray-address`` flags every sharded verb shares."""

from __future__ import annotations

import argparse

from corpus.executor import KINDS, ExecutorSpec


def add_executor_arguments(p: argparse.ArgumentParser) -> None:
    env = ExecutorSpec.from_env()
    g = p.add_argument_group("execution (same output bytes on every executor)")
    g.add_argument("--executor", choices=KINDS, default=env.kind,
                   help=f"local: this process; process: a pool on this machine; ray: a Ray cluster "
                   f"(default: CODECORPUS_EXECUTOR, else local; now {env.kind})")
    g.add_argument("--workers", type=int, default=env.workers,
                   help=f"process pool size, or CPUs of a local Ray cluster (default {env.workers})")
    g.add_argument("--ray-address", default=env.address,
                   help="ray: 'local' (start one in-process), 'auto', host:6379 or ray://host:10001 "
                   f"(default: CODECORPUS_RAY_ADDRESS, else local; now {env.address})")


def executor_spec(args: argparse.Namespace) -> ExecutorSpec:
    return ExecutorSpec(kind=args.executor, workers=args.workers, address=args.ray_address)

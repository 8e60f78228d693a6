"""``codecorpus``: one entry point, one verb per module in ``pipelines/commands``.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``main(args) -> int``. Library verbs (crawl, dedup, decontam, ...) call the library directly
and need no Dagster instance; ``run`` materializes the graph.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import pipelines.commands as commands_pkg


def _command_modules():
    for info in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"pipelines.commands.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codecorpus",
        description="Build Qwen2.5-Coder-style code-LLM training corpora (Dagster assets + CLI).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_main=mod.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._main(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - refused or failed storage work becomes one clear line
        message = _refusal(exc)
        if message is None:
            raise
        print(f"codecorpus {args.command}: {message}", file=sys.stderr)
        return 2


def _refusal(exc: BaseException) -> str | None:
    """The message for errors a user fixes by changing paths, permissions, space or timing:
    overlapping output, busy set, read-only / permission / disk full, invalid text, a shard
    set that is missing or malformed, an unreachable cluster, a shard task that failed for good
    (named). Anything else is a bug and keeps its traceback."""
    from corpus import safety
    from corpus.executor import ExecutorError, TaskError
    from corpus.locks import SetBusyError
    from corpus.shards import ShardSetError

    if isinstance(exc, (safety.SafetyError, SetBusyError, ShardSetError, ExecutorError, TaskError)):
        return str(exc)
    if isinstance(exc, OSError):
        where = exc.filename or "output"
        err = safety.storage_error(str(where), exc)
        return str(err) if err else None
    return None


if __name__ == "__main__":
    raise SystemExit(main())

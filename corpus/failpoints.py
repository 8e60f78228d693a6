"""Named fault-injection points in the commit protocol, for tests that kill a writer between
every pair of filesystem steps.

``CODECORPUS_FAILPOINTS="commit.swap=kill"`` (or ``raise``; several comma-separated) makes the
process SIGKILL itself or raise ``InjectedFault`` when it reaches that point; ``kill-once``
kills only the first process of a run to get there (a marker file in
``CODECORPUS_FAILPOINT_DIR``), so a retried task then succeeds. Tests may also call ``arm``.
With nothing armed a failpoint is one dict lookup.
"""

from __future__ import annotations

import os
import signal

_ARMED: dict[str, str] = {}
_SEEN: list[str] = []
_TRACE = [False]


class InjectedFault(RuntimeError):
    """Raised at an armed failpoint whose action is ``raise``."""


def _load_env() -> None:
    for item in filter(None, os.environ.get("CODECORPUS_FAILPOINTS", "").split(",")):
        name, _, action = item.partition("=")
        _ARMED[name.strip()] = action.strip() or "raise"


_load_env()


def arm(name: str, action: str = "raise") -> None:
    if action not in ("raise", "kill", "kill-once"):
        raise ValueError(f"failpoint action {action!r}: use 'raise', 'kill' or 'kill-once'")
    _ARMED[name] = action


def disarm_all() -> None:
    _ARMED.clear()
    _SEEN.clear()
    _TRACE[0] = False


def trace(on: bool = True) -> None:
    """Record the failpoints passed (tests use it to enumerate a protocol's steps)."""
    _TRACE[0] = on
    _SEEN.clear()


def seen() -> list[str]:
    """Failpoints passed since ``trace(True)``."""
    return list(_SEEN)


def hit(name: str) -> None:
    """A step boundary of the commit protocol."""
    if _TRACE[0]:
        _SEEN.append(name)
    action = _ARMED.get(name)
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "kill-once":
        marker = os.path.join(os.environ.get("CODECORPUS_FAILPOINT_DIR", "/tmp"), f"{name}.fired")
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "raise":
        raise InjectedFault(f"injected fault at {name}")

"""Run one child process with a wall-clock deadline, capped output and streamed stdin.

Shared by the bwrap backend (host side) and the docker supervisor's logic; plain stdlib.
Output is read while the child runs: more than ``cap`` bytes on either stream stops the run
(``output_limited``) instead of buffering an unbounded flood in memory.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Pumped:
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool
    stderr_truncated: bool
    timed_out: bool
    output_limited: bool
    exited: bool


def pump(proc: subprocess.Popen, stdin: bytes, cap: int, deadline: float, kill: Callable[[], None],
         grace_s: float = 0.5) -> Pumped:
    """Feed stdin, collect stdout/stderr up to ``cap`` each, kill at ``deadline`` or on overflow.

    Returns once both streams hit EOF and the process exited (or was killed). A process that
    exits while something it left behind still holds the pipes open is given ``grace_s`` and
    then ``kill`` is called (which must end the whole tree).
    """
    sel = selectors.DefaultSelector()
    bufs = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    trunc = {fd: False for fd in bufs}
    for f in (proc.stdout, proc.stderr):
        os.set_blocking(f.fileno(), False)
        sel.register(f.fileno(), selectors.EVENT_READ)
    view = memoryview(stdin)
    if proc.stdin is not None:
        if stdin:
            os.set_blocking(proc.stdin.fileno(), False)
            sel.register(proc.stdin.fileno(), selectors.EVENT_WRITE)
        else:
            proc.stdin.close()
    timed_out = flooded = killed = False
    open_fds = set(bufs)
    exit_seen_at: float | None = None
    while open_fds:
        now = time.monotonic()
        if not killed and now >= deadline:
            timed_out = killed = True
            kill()
        if exit_seen_at is None and proc.poll() is not None:
            exit_seen_at = now
        if not killed and exit_seen_at is not None and now - exit_seen_at > grace_s:
            killed = True
            kill()
        wait = max(0.0, min(deadline - now, 0.05 if exit_seen_at is not None else 0.25)) if not killed else 0.05
        for key, _ in sel.select(wait):
            fd = key.fd
            if fd in bufs:
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    sel.unregister(fd)
                    open_fds.discard(fd)
                    continue
                buf = bufs[fd]
                room = cap - len(buf)
                if len(chunk) > room:
                    buf += chunk[: max(room, 0)]
                    trunc[fd] = True
                    if not killed:
                        flooded = killed = True
                        kill()
                else:
                    buf += chunk
            else:
                try:
                    n = os.write(fd, view[:65536])
                    view = view[n:]
                except BlockingIOError:
                    continue
                except OSError:  # reader gone (BrokenPipe): the program did not want more input
                    view = view[:0]
                if not view:
                    sel.unregister(fd)
                    proc.stdin.close()
        if killed and time.monotonic() > deadline + 10:
            break  # pipes held open by something kill() could not reach: give up on them
    if proc.stdin is not None and not proc.stdin.closed:
        try:
            sel.unregister(proc.stdin.fileno())
        except (KeyError, ValueError):
            pass
        proc.stdin.close()
    sel.close()
    # Both streams closed, but the program may still run (it closed stdout and spins): the
    # deadline still applies.
    exited = True
    try:
        proc.wait(timeout=max(0.0, deadline - time.monotonic()) if not killed else 5)
    except subprocess.TimeoutExpired:
        timed_out = timed_out or not killed
        kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            exited = False
    o, e = proc.stdout.fileno(), proc.stderr.fileno()
    return Pumped(bytes(bufs[o]), bytes(bufs[e]), trunc[o], trunc[e], timed_out, flooded, exited)

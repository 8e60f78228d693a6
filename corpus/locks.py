"""One writer per shard set: a lock that names its owner and dies with it.

On local (and NFS) paths the lock is ``fcntl.flock`` on a file beside the set's versions: the
kernel releases it when the owner dies, even by SIGKILL, so a stale lock can never block a
re-run and breaking one needs no guesswork. The file also records who holds it (host, pid,
process start time, run id, start time) so a refused writer's message names the owner.

Object stores have no locks. There the lock is an object with the same owner record; it is
stale when its owner is on this host and dead (pid gone, or reused: the start time differs) or
when its heartbeat is older than ``ttl_s``. This is advisory: two writers that check within the
same instant can both win, which is why the commit itself is still old-or-new.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass

import pyarrow.fs as pafs

LOCK_FILE = "_lock"
DEFAULT_TTL_S = 3600.0


class SetBusyError(RuntimeError):
    """Another live writer holds the shard set; the message names it."""


@dataclass(frozen=True)
class Owner:
    """Who holds a lock: enough to tell a live owner from a dead one on any host."""

    host: str
    pid: int
    proc_start: str
    run_id: str
    started_at: float
    heartbeat: float

    @classmethod
    def me(cls, run_id: str | None = None) -> Owner:
        now = time.time()
        return cls(socket.gethostname(), os.getpid(), proc_start_time(os.getpid()),
                   run_id or uuid.uuid4().hex[:12], now, now)

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started_at))
        return f"pid {self.pid} on {self.host} (run {self.run_id}, since {started})"

    def alive(self, ttl_s: float = DEFAULT_TTL_S) -> bool:
        """False only when the owner is certainly gone (same host) or silent past ``ttl_s``."""
        if self.host == socket.gethostname():
            return pid_alive(self.pid, self.proc_start)
        return time.time() - self.heartbeat < ttl_s


def proc_start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22), or ''."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def pid_alive(pid: int, start: str = "") -> bool:
    """Is ``pid`` a live process, and the same one (start time) that wrote ``start``?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if start and proc_start_time(pid) not in ("", start):
        return False  # the pid was reused by another process
    return True


def _read_owner(text: str) -> Owner | None:
    try:
        return Owner(**json.loads(text))
    except (ValueError, TypeError):
        return None


class LocalLock:
    """``flock`` on ``<dir>/_lock``; held until ``release`` or the process dies."""

    def __init__(self, lock_dir: str, what: str, run_id: str | None = None) -> None:
        self.path = os.path.join(lock_dir, LOCK_FILE)
        self.what = what
        self.owner = Owner.me(run_id)
        self._fd: int | None = None

    def acquire(self) -> LocalLock:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise SetBusyError(self._busy_message()) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(self.owner)).encode(), 0)
        self._fd = fd
        return self

    def _busy_message(self) -> str:
        try:
            with open(self.path, encoding="utf-8") as fh:
                owner = _read_owner(fh.read())
        except OSError:
            owner = None
        who = owner.describe() if owner else "another process"
        return (f"{self.what}: another writer is running ({who}; lock {self.path}); "
                "wait for it to finish or stop it, then re-run")

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> LocalLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class ObjectLock:
    """An owner-record object for stores without locks; stale owners are broken (see module doc)."""

    def __init__(self, fs: pafs.FileSystem, path: str, what: str, run_id: str | None = None,
                 ttl_s: float = DEFAULT_TTL_S) -> None:
        self.fs, self.path, self.what, self.ttl_s = fs, path, what, ttl_s
        self.owner = Owner.me(run_id)
        self._held = False

    def _current(self) -> Owner | None:
        if self.fs.get_file_info(self.path).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(self.path) as fh:
            return _read_owner(fh.read().decode(errors="replace"))

    def acquire(self) -> ObjectLock:
        cur = self._current()
        if cur is not None and cur.alive(self.ttl_s):
            raise SetBusyError(f"{self.what}: another writer is running ({cur.describe()}; lock {self.path}); "
                               "wait for it to finish or stop it, then re-run")
        self.heartbeat()
        if self._current() != self.owner:  # lost a race with another writer
            cur = self._current()
            raise SetBusyError(f"{self.what}: another writer took the lock ({cur.describe() if cur else '?'})")
        self._held = True
        return self

    def heartbeat(self) -> None:
        self.owner = Owner(**(asdict(self.owner) | {"heartbeat": time.time()}))
        with self.fs.open_output_stream(self.path) as fh:
            fh.write(json.dumps(asdict(self.owner)).encode())

    def release(self) -> None:
        if self._held and self._current() == self.owner:
            self.fs.delete_file(self.path)
        self._held = False

    def __enter__(self) -> ObjectLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

"""Host side of the per-slot spawn server (see _zygote_server.py for why it exists)."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import time

_SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_zygote_server.py")


def _python() -> str:
    # The server drops to the slot uid after start-up: it must not need files under /root.
    for cand in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(cand, os.X_OK):
            return cand
    import sys

    return sys.executable


class ZygoteProc:
    """The subset of subprocess.Popen that pump() and the bwrap backend use."""

    def __init__(self, zyg: Zygote, pid: int, stdin, stdout, stderr, args):
        self.zyg, self.pid, self.args = zyg, pid, args
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.returncode: int | None = None

    def _take(self, timeout: float | None) -> None:
        if self.returncode is not None:
            return
        code = self.zyg.wait_exit(self.pid, timeout)
        if code is not None:
            self.returncode = code

    def poll(self) -> int | None:
        self._take(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._take(timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode


class Zygote:
    """One spawn server, started inside a slot's cgroup (by ``prefix``, the slot launcher)."""

    def __init__(self, prefix: list[str], uid: int, gid: int):
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [*prefix, _python(), "-I", "-S", _SERVER, str(theirs.fileno()), str(uid), str(gid)],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True, cwd="/", env={"PATH": "/usr/bin:/bin"})
        finally:
            theirs.close()
        self.exits: dict[int, int] = {}
        self.dead = False
        ready = self._recv(30)
        if not ready or not ready.get("ready"):
            self.close()
            raise OSError("sandbox spawn server did not start")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _recv(self, timeout: float | None) -> dict | None:
        if self.dead:
            return None
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return None
        msg = self.sock.recv(1 << 16)
        if not msg:
            self.dead = True
            return None
        return json.loads(msg)

    def spawn(self, argv: list[str], env: dict[str, str], fds: list[tuple[int, int]]) -> int:
        """Start ``argv`` (absolute path) with host fds placed at target numbers; returns its pid."""
        req = {"argv": argv, "env": env, "fds": [t for _, t in fds]}
        socket.send_fds(self.sock, [json.dumps(req).encode()], [f for f, _ in fds])
        end = time.monotonic() + 30
        while time.monotonic() < end:
            msg = self._recv(max(0.0, end - time.monotonic()))
            if msg is None:
                break
            if "pid" in msg:
                return int(msg["pid"])
            if "error" in msg:
                raise OSError(msg["error"])
            if "exit" in msg:
                self.exits[int(msg["exit"])] = int(msg["code"])
        self.dead = True
        raise OSError("sandbox spawn server did not answer")

    def wait_exit(self, pid: int, timeout: float | None) -> int | None:
        """Exit code of ``pid`` once the server reports it; None if not within ``timeout``."""
        end = None if timeout is None else time.monotonic() + timeout
        while pid not in self.exits:
            if self.dead:
                return -9  # the server is gone; the cgroup kill takes care of its children
            left = None if end is None else max(0.0, end - time.monotonic())
            msg = self._recv(left)
            if msg is None:
                if self.dead:
                    continue
                return None
            if "exit" in msg:
                self.exits[int(msg["exit"])] = int(msg["code"])
        return self.exits.pop(pid)

    def close(self) -> None:
        self.dead = True
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            self.proc.kill()
            self.proc.wait(5)
        except (OSError, subprocess.SubprocessError):
            pass

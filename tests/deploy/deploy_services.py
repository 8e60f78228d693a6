"""Services the deployment tests start themselves, on loopback, bounded in time, always torn
down: a throw-away PostgreSQL cluster (Debian's server binaries, run as an unprivileged user),
``dagster-daemon`` and ``dagster dev`` processes in their own process groups."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _pg_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


def _unprivileged_user() -> tuple[str, int, int] | None:
    """Postgres refuses to run as root: use the ``postgres`` account (Debian's package creates
    it) or ``nobody``; None when we are not root (then we run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return name, pw.pw_uid, pw.pw_gid
    pytest.skip("running as root and no unprivileged account (postgres, nobody) to run PostgreSQL as")


@dataclass
class Postgres:
    host: str
    port: int
    user: str
    db: str

    def env(self) -> dict[str, str]:
        """The variables deploy/postgres/dagster.yaml reads."""
        return {"DAGSTER_PG_HOST": self.host, "DAGSTER_PG_PORT": str(self.port), "DAGSTER_PG_USERNAME": self.user,
                "DAGSTER_PG_PASSWORD": "trust-auth-unused", "DAGSTER_PG_DB": self.db}


@contextlib.contextmanager
def postgres_server(timeout: float = 60.0) -> Iterator[Postgres]:
    """A fresh PostgreSQL cluster in a temp dir on 127.0.0.1:<free port> (trust auth), stopped
    and deleted on exit. Skips where the server binaries are not installed."""
    pg_bin = _pg_bin()
    if pg_bin is None:
        pytest.skip("PostgreSQL server not installed (scripts/system_deps.sh installs Debian's postgresql)")
    user = _unprivileged_user()
    base = tempfile.mkdtemp(prefix="codecorpus-pg-")
    data, log = os.path.join(base, "data"), os.path.join(base, "server.log")
    os.chmod(base, 0o755)
    if user:
        os.chown(base, user[1], user[2])

    def as_user(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess:
        full = ["runuser", "-u", user[0], "--", *cmd] if user else cmd
        return subprocess.run(full, capture_output=True, text=True, **kw)

    port = free_port()
    pg = Postgres("127.0.0.1", port, "dagster", "dagster")
    try:
        r = as_user([f"{pg_bin}/initdb", "-D", data, "-U", pg.user, "--auth=trust", "-E", "UTF8", "--no-sync"],
                    timeout=timeout)
        assert r.returncode == 0, f"initdb failed: {r.stdout}{r.stderr}"
        opts = f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c max_connections=100"
        r = as_user([f"{pg_bin}/pg_ctl", "-D", data, "-l", log, "-o", opts, "-w", "-t", str(int(timeout)), "start"],
                    timeout=timeout + 10)
        assert r.returncode == 0, f"pg_ctl start failed: {r.stdout}{r.stderr}\n{_tail(log)}"
        r = as_user([f"{pg_bin}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", pg.user, pg.db], timeout=timeout)
        assert r.returncode == 0, f"createdb failed: {r.stderr}"
        yield pg
    finally:
        if os.path.exists(os.path.join(data, "postmaster.pid")):
            as_user([f"{pg_bin}/pg_ctl", "-D", data, "-m", "immediate", "-w", "-t", "30", "stop"], timeout=40)
        shutil.rmtree(base, ignore_errors=True)


def _tail(path: str, n: int = 4000) -> str:
    try:
        with open(path, errors="replace") as fh:
            return fh.read()[-n:]
    except OSError:
        return ""


@contextlib.contextmanager
def process(cmd: list[str], env: dict[str, str], log_path: str, cwd: str = REPO,
            stop_timeout: float = 20.0) -> Iterator[subprocess.Popen]:
    """``cmd`` in its own process group (its run workers die with it), output to ``log_path``."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        for sig, wait in ((signal.SIGTERM, stop_timeout), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):  # run workers left in the group
            os.killpg(proc.pid, signal.SIGKILL)


def dagster_env(home: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for Dagster processes running this checkout (not an installed copy)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "CODECORPUS_"))}
    env.update({"DAGSTER_HOME": home, "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])),
                "PATH": BIN + os.pathsep + env.get("PATH", "")})
    env.update(extra or {})
    return env


def write_instance(home: str, config: str, replace: dict[str, str] | None = None) -> str:
    """The instance file ``config`` (relative to the repository) copied into ``home`` as
    ``dagster.yaml``, with each ``replace`` key swapped for its value (which must occur)."""
    os.makedirs(home, exist_ok=True)
    with open(os.path.join(REPO, config)) as fh:
        text = fh.read()
    for old, new in (replace or {}).items():
        assert old in text, f"{config} no longer contains {old!r}"
        text = text.replace(old, new)
    path = os.path.join(home, "dagster.yaml")
    with open(path, "w") as fh:
        fh.write(text)
    return path

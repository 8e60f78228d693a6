"""Killed steps leave no zombies behind, also without the per-slot spawn server.

A killed bwrap orphans its inner init; where the host's PID 1 never reaps (some container
runtimes) the orphan stays a zombie of the slot uid and counts against RLIMIT_NPROC until
bwrap cannot fork ("Can't fork for pid 1"). The spawn server and the launcher's --reap mode
are child subreapers that reap such orphans.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

import sandbox


def _orphaned_zombies(uids: range) -> list[int]:
    """pids of zombies owned by a slot uid whose parent is PID 1 (nobody will reap them)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(ln.split(":", 1) for ln in f.read().splitlines() if ":" in ln)
        except OSError:
            continue
        uid = int(fields.get("Uid", "-1 0").split()[0])
        if uid in uids and fields.get("State", "").strip().startswith("Z") and fields.get("PPid", "").strip() == "1":
            found.append(int(pid))
    return found


@pytest.mark.parametrize("zygote", ["0", "1"])
def test_killed_steps_leave_no_orphaned_zombies(zygote, bwrap_backend, monkeypatch):
    """24 steps killed on timeout plus 24 that exit: at no moment does a process of a slot
    uid sit as a zombie under PID 1 (sampled all along: a PID 1 that reaps now and then
    would hide them from a check at the end)."""
    from sandbox.backends import bwrap

    if os.geteuid() != 0:
        pytest.skip("slot uids exist only when run as root")
    monkeypatch.setenv("CODECORPUS_SANDBOX_ZYGOTE", zygote)
    uids = range(bwrap.UID_BASE, bwrap.UID_BASE + 4096 * bwrap.MAX_SLOTS + bwrap.MAX_SLOTS)
    before = set(_orphaned_zombies(uids))
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.update(set(_orphaned_zombies(uids)) - before)
            time.sleep(0.005)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        reqs = [sandbox.Request(code="import time\ntime.sleep(30)\n", language="python", timeout_s=0.3)
                for _ in range(24)]
        reqs += [sandbox.Request(code="print(1)\n", language="python") for _ in range(24)]
        results = sandbox.execute_many(reqs, backend=bwrap_backend)
        time.sleep(0.2)
    finally:
        done.set()
        t.join()
    assert [r.status for r in results] == ["timeout"] * 24 + ["passed"] * 24, [r.status for r in results]
    assert not seen, f"zombies of slot uids left to PID 1: {sorted(seen)}"
    r = sandbox.execute("print('hello')", "python", backend=bwrap_backend)
    assert r.status == "passed" and r.stdout == "hello\n", r

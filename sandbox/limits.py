"""Resource limits for one sandboxed step: rlimits applied in the child, cgroups where available.

Two layers on purpose: rlimits work everywhere (also without root) and bound each process;
a per-slot cgroup (memory + pids) bounds the whole process tree and tells an OOM kill apart
from an ordinary crash. Cgroup v1 (separate memory/pids hierarchies) and v2 are supported;
without write access to either, only rlimits apply and ``cgroup_mode()`` says ``none``.
"""

from __future__ import annotations

import os
import resource
import signal
import time
from dataclasses import dataclass

MiB = 1024 * 1024
CGROUP_ROOT = "/sys/fs/cgroup"
_GROUP_NAME = "codecorpus-sandbox"


@dataclass(frozen=True)
class Limits:
    """Caps for one step. Sizes in bytes unless the name says otherwise."""

    timeout_s: float = 10.0
    memory_mb: int = 512
    max_output_bytes: int = 1 * MiB  # per stream; more kills the run (status output_limit)
    max_file_bytes: int = 64 * MiB  # RLIMIT_FSIZE: largest file the program may write
    disk_mb: int = 64  # size of each private tmpfs (/work, /tmp, /dev/shm)
    max_procs: int = 64  # pids in the slot's cgroup (and RLIMIT_NPROC of the slot's uid)
    max_open_files: int = 256
    address_space: bool = True  # RLIMIT_AS = memory (off for JVM/V8/Go, which reserve huge VM)

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_mb) * MiB


def rlimits_for(limits: Limits, *, cgroup: bool) -> list[tuple[int, tuple[int, int]]]:
    """The (resource, (soft, hard)) pairs to set in the child before exec."""
    cpu = int(limits.timeout_s) + 1
    out = [
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_FSIZE, (limits.max_file_bytes, limits.max_file_bytes)),
        (resource.RLIMIT_NOFILE, (limits.max_open_files, limits.max_open_files)),
        (resource.RLIMIT_NPROC, (limits.max_procs, limits.max_procs)),
        (resource.RLIMIT_CORE, (0, 0)),
    ]
    if limits.address_space:
        out.append((resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes)))
    elif not cgroup:
        # No cgroup to bound the tree: still cap the address space, with room for VM reservations.
        big = limits.memory_bytes + 8192 * MiB
        out.append((resource.RLIMIT_AS, (big, big)))
    return out


def _own_cgroup(controller: str) -> str | None:
    """This process's cgroup path for a v1 controller ('' key = v2), from /proc/self/cgroup."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                if (controller and controller in ctrls.split(",")) or (not controller and ctrls == ""):
                    return path
    except OSError:
        return None
    return None


def _writable_dir(path: str) -> bool:
    return os.path.isdir(path) and os.access(path, os.W_OK)


def cgroup_mode() -> str:
    """'v1', 'v2' or 'none': which cgroup layout this process can create slot groups in."""
    if os.environ.get("CODECORPUS_SANDBOX_CGROUP", "").lower() in ("0", "none", "off"):
        return "none"
    v1m, v1p = os.path.join(CGROUP_ROOT, "memory"), os.path.join(CGROUP_ROOT, "pids")
    if os.path.isfile(os.path.join(v1m, "memory.limit_in_bytes")) and _writable_dir(v1m) and _writable_dir(v1p):
        return "v1"
    if os.path.isfile(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
        base = os.path.join(CGROUP_ROOT, (_own_cgroup("") or "/").lstrip("/"))
        parent = os.path.dirname(base) if base.rstrip("/") != CGROUP_ROOT else base
        try:
            with open(os.path.join(parent, "cgroup.subtree_control")) as f:
                ctl = f.read().split()
        except OSError:
            return "none"
        if "memory" in ctl and "pids" in ctl and _writable_dir(parent):
            return "v2"
    return "none"


class CgroupSlot:
    """A reusable cgroup (memory + pids) for one concurrency slot.

    ``prepare`` sets the limits and returns fds the child writes ``0`` into (joining the group
    before exec); ``oom_kills`` counts OOM kills so far; ``kill_all`` empties the group.
    """

    def __init__(self, name: str, mode: str):
        self.mode = mode
        self.dirs: list[str] = []
        if mode == "v1":
            for ctrl in ("memory", "pids"):
                own = (_own_cgroup(ctrl) or "/").lstrip("/")
                base = os.path.join(CGROUP_ROOT, ctrl, own, _GROUP_NAME)
                if not _writable_dir(os.path.dirname(base)):
                    base = os.path.join(CGROUP_ROOT, ctrl, _GROUP_NAME)
                self.dirs.append(os.path.join(base, name))
        elif mode == "v2":
            own = os.path.join(CGROUP_ROOT, (_own_cgroup("") or "/").lstrip("/"))
            parent = os.path.dirname(own) if own.rstrip("/") != CGROUP_ROOT else own
            self.dirs.append(os.path.join(parent, f"{_GROUP_NAME}-{name}"))
        for d in self.dirs:
            os.makedirs(d, exist_ok=True)
        if mode == "v2":
            # Needed so the nested group gets the controllers; harmless if already on.
            try:
                with open(os.path.join(os.path.dirname(self.dirs[0]), "cgroup.subtree_control"), "w") as f:
                    f.write("+memory +pids")
            except OSError:
                pass

    def _write(self, d: str, name: str, value: str) -> None:
        with open(os.path.join(d, name), "w") as f:
            f.write(value)

    def prepare(self, limits: Limits, open_procs: bool = True, extra_procs: int = 0, extra_bytes: int = 0) -> list[int]:
        """Set the limits (plus room for resident helpers); optionally open cgroup.procs to join."""
        mem_limit, pid_limit = str(limits.memory_bytes + extra_bytes), str(limits.max_procs + extra_procs)
        if self.mode == "v1":
            mem, pids = self.dirs
            self._write(mem, "memory.limit_in_bytes", mem_limit)
            try:
                self._write(mem, "memory.max_usage_in_bytes", "0")
            except OSError:
                pass
            self._write(pids, "pids.max", pid_limit)
        else:
            d = self.dirs[0]
            self._write(d, "memory.max", mem_limit)
            try:
                self._write(d, "memory.swap.max", "0")
            except OSError:
                pass
            self._write(d, "pids.max", pid_limit)
        if not open_procs:
            return []
        return [os.open(os.path.join(d, "cgroup.procs"), os.O_WRONLY) for d in self.dirs]

    def oom_kills(self) -> int:
        path, key = (
            (os.path.join(self.dirs[0], "memory.oom_control"), "oom_kill")
            if self.mode == "v1"
            else (os.path.join(self.dirs[0], "memory.events"), "oom_kill")
        )
        try:
            with open(path) as f:
                for line in f:
                    k, _, v = line.partition(" ")
                    if k == key:
                        return int(v)
        except (OSError, ValueError):
            pass
        return 0

    def hit_limit(self) -> int:
        """v1 failcnt (times usage hit the limit); v2 'max' events."""
        if self.mode == "v1":
            try:
                with open(os.path.join(self.dirs[0], "memory.failcnt")) as f:
                    return int(f.read())
            except (OSError, ValueError):
                return 0
        try:
            with open(os.path.join(self.dirs[0], "memory.events")) as f:
                for line in f:
                    k, _, v = line.partition(" ")
                    if k == "max":
                        return int(v)
        except (OSError, ValueError):
            pass
        return 0

    def pids(self, spare: frozenset[int] = frozenset()) -> list[int]:
        out: list[int] = []
        for d in self.dirs:
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    out.extend(int(x) for x in f.read().split())
            except (OSError, ValueError):
                pass
        return sorted(set(out) - spare)

    def kill_all(self, deadline_s: float = 2.0, spare: frozenset[int] = frozenset()) -> bool:
        """SIGKILL every process in the group (but ``spare``) until none is left; True when done."""
        if self.mode == "v2" and not spare:
            try:
                self._write(self.dirs[0], "cgroup.kill", "1")
            except OSError:
                pass
        end = time.monotonic() + deadline_s
        while True:
            pids = self.pids(spare)
            if not pids:
                return True
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            if time.monotonic() > end:
                return False
            time.sleep(0.0005)

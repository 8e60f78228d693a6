"""bubblewrap backend: one fresh namespace sandbox per step, on the host's toolchains.

Per step: ``bwrap --unshare-all`` (no network, own pid/ipc/uts/cgroup/user namespaces, nested
user namespaces disabled), only the toolchain's directories bound read-only, fresh size-capped
tmpfs for /work, /tmp and /dev/shm, a generated /etc, the root remounted read-only,
``--die-with-parent``, ``--new-session``, ``--clearenv``. Each concurrency slot has its own
cgroup (memory + pids) and, as root, its own unprivileged host uid that owns no file. Steps are
started by the slot's resident spawn server (zygote.py), which sits in the slot cgroup so
bwrap inherits it by fork instead of paying a cgroup migration (~10 ms) per run; launcher.c
sets the step's rlimits. Without cgroups or a C compiler the same limits are applied by the
launcher, sh+prlimit+setpriv, or a preexec_fn; the launcher then stays behind as a child
subreaper (``--reap``) so that what a killed bwrap orphans is reaped, not left to PID 1. The
wall clock is enforced from the host: on timeout or output overflow the step is killed
(process group SIGKILLed, or SIGTERM to a reaping launcher, which SIGKILLs bwrap) and so is the
whole cgroup.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from sandbox.backends import seccomp
from sandbox.backends._io import pump
from sandbox.backends.base import StepOutcome
from sandbox.backends.zygote import Zygote, ZygoteProc
from sandbox.languages import (
    BUILD,
    MIRROR_ROOT,
    SRC,
    WORK,
    Plan,
    Toolchain,
    base_binds,
    base_links,
    host_toolchain,
    host_toolchain_reason,
)
from sandbox.limits import CgroupSlot, Limits, cgroup_mode, rlimits_for

NAME = "bwrap"
SANDBOX_UID = 1000  # uid/gid seen inside the sandbox
UID_BASE = 1_600_000  # host uids of slots (root only): no file on the host belongs to them
MAX_SLOTS = 256


def available() -> tuple[bool, str]:
    exe = shutil.which("bwrap")
    if exe is None:
        return False, "bwrap not installed (apt-get install bubblewrap)"
    try:
        p = subprocess.run([exe, "--unshare-all", "--ro-bind", "/", "/", "--", "/bin/true"],
                           capture_output=True, timeout=20, preexec_fn=_drop_privileges_probe)
    except (OSError, subprocess.SubprocessError) as e:
        return False, f"bwrap cannot start: {e}"
    if p.returncode != 0:
        return False, "bwrap cannot create namespaces here: " + p.stderr.decode("utf-8", "replace").strip()
    return True, exe


def _drop_privileges_probe() -> None:
    if os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(UID_BASE, UID_BASE, UID_BASE)
        os.setresuid(UID_BASE, UID_BASE, UID_BASE)


class _Slot:
    def __init__(self, index: int, cg_mode: str):
        self.index = index
        root = os.geteuid() == 0
        self.uid = UID_BASE + (os.getpid() % 4096) * MAX_SLOTS + index if root else os.getuid()
        self.gid = self.uid if root else os.getgid()
        self.cgroup = CgroupSlot(f"p{os.getpid()}-s{index}", cg_mode) if cg_mode != "none" else None
        if self.cgroup is not None:
            try:  # a hierarchy that lets us mkdir but not set limits is no use: rlimits only then
                self.cgroup.prepare(Limits(), open_procs=False)
            except OSError:
                for d in self.cgroup.dirs:
                    try:
                        os.rmdir(d)
                    except OSError:
                        pass
                self.cgroup = None
        self.zygote: Zygote | None = None
        self.zygote_failed = False

    def spawner(self) -> Zygote | None:
        """The slot's spawn server (started on first use; None where it cannot run)."""
        if (self.cgroup is None or self.zygote_failed or os.environ.get("CODECORPUS_SANDBOX_ZYGOTE") == "0"
                or _compiled_launcher() is None):
            return None
        if self.zygote is not None and (self.zygote.dead or self.zygote.proc.poll() is not None):
            self.zygote.close()
            self.zygote = None
        if self.zygote is None:
            prefix = _join_prefix([os.path.join(d, "cgroup.procs") for d in self.cgroup.dirs])
            if prefix is None:
                self.zygote_failed = True
                return None
            try:
                self.zygote = Zygote(prefix, self.uid if os.geteuid() == 0 else -1,
                                     self.gid if os.geteuid() == 0 else -1)
            except OSError:
                self.zygote_failed = True
                return None
        return self.zygote

    def spare(self) -> frozenset[int]:
        return frozenset((self.zygote.pid,)) if self.zygote is not None and not self.zygote.dead else frozenset()


class _Slots:
    """Slots bound concurrency and give each concurrent step its own cgroup and uid."""

    def __init__(self):
        self.pid = os.getpid()
        self.mode = cgroup_mode()
        self._free: queue.LifoQueue[int] = queue.LifoQueue()
        self._slots: dict[int, _Slot] = {}
        self._lock = threading.Lock()
        for i in reversed(range(MAX_SLOTS)):
            self._free.put(i)
        _prune_stale_cgroups()
        atexit.register(self.close)

    def acquire(self) -> _Slot:
        i = self._free.get()
        with self._lock:
            slot = self._slots.get(i)
            if slot is None:
                try:
                    slot = _Slot(i, self.mode)
                except OSError:
                    self.mode = "none"
                    slot = _Slot(i, "none")
                self._slots[i] = slot
        return slot

    def release(self, slot: _Slot) -> None:
        self._free.put(slot.index)

    def close(self) -> None:
        if self.pid != os.getpid():
            return  # inherited across fork: the parent owns these
        for slot in self._slots.values():
            if slot.zygote is not None:
                slot.zygote.close()
            if slot.cgroup is not None:
                slot.cgroup.kill_all(0.5)
                for d in slot.cgroup.dirs:
                    try:
                        os.rmdir(d)
                    except OSError:
                        pass


def _prune_stale_cgroups() -> None:
    """Remove slot cgroups left by dead processes (named p<pid>-s<n>)."""
    import glob

    for d in glob.glob("/sys/fs/cgroup/*/**/codecorpus-sandbox*/p*-s*", recursive=True) + glob.glob(
            "/sys/fs/cgroup/*/codecorpus-sandbox/p*-s*"):
        name = os.path.basename(d)
        try:
            pid = int(name[1:].split("-")[0])
        except ValueError:
            continue
        if pid != os.getpid() and not os.path.exists(f"/proc/{pid}"):
            try:
                os.rmdir(d)
            except OSError:
                pass


_slots: _Slots | None = None
_slots_lock = threading.Lock()


def slots() -> _Slots:
    """This process's slots (a forked child gets its own: cgroups, uids and servers are per pid)."""
    global _slots
    with _slots_lock:
        if _slots is None or _slots.pid != os.getpid():
            _slots = _Slots()
        return _slots


_ETC: dict[tuple[str, ...], str] = {}
_ETC_LOCK = threading.Lock()


def _etc_dir(mount_points: tuple[str, ...] = ()) -> str:
    """A private /etc for the sandbox (one mount): passwd/group naming the sandbox user,
    localhost-only hosts, a copy of the loader cache, and empty directories where toolchain
    binds under /etc (alternatives, the JDK's config) are mounted."""
    with _ETC_LOCK:
        d = _ETC.get(mount_points)
        if d is not None and os.path.isdir(d):
            return d
        d = tempfile.mkdtemp(prefix="codecorpus-sandbox-etc-")
        cache = b""
        if os.path.exists("/etc/ld.so.cache"):
            with open("/etc/ld.so.cache", "rb") as f:
                cache = f.read()
        files = {
            "ld.so.cache": cache,
            "passwd": f"root:x:0:0::/nonexistent:/usr/sbin/nologin\nsandbox:x:{SANDBOX_UID}:{SANDBOX_UID}::{WORK}:/bin/sh\n"
                      "nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n".encode(),
            "group": f"root:x:0:\nsandbox:x:{SANDBOX_UID}:\nnogroup:x:65534:\n".encode(),
            "hosts": b"127.0.0.1 localhost sandbox\n::1 localhost\n",
            "nsswitch.conf": b"passwd: files\ngroup: files\nhosts: files\n",
        }
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
            os.chmod(os.path.join(d, name), 0o644)
        for mp in mount_points:
            os.makedirs(os.path.join(d, os.path.relpath(mp, "/etc")), mode=0o755, exist_ok=True)
        os.chmod(d, 0o755)
        _ETC[mount_points] = d
        atexit.register(shutil.rmtree, d, True)
        return d


def _run_root() -> str:
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    return base


def _bwrap_args(tc: Toolchain, plan: Plan, phase: str, run_dir: str, limits: Limits, env: dict[str, str],
                files: list[tuple[str, int]], status_fd: int, bind_fds: dict[str, int],
                seccomp_fd: int = -1) -> list[str]:
    a = [shutil.which("bwrap") or "/usr/bin/bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
         "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox", "--cap-drop", "ALL",
         "--clearenv", "--json-status-fd", str(status_fd)]
    if seccomp_fd >= 0:  # backends/seccomp.py: no ptrace, io_uring, keyrings, bpf... in the step
        a += ["--seccomp", str(seccomp_fd)]
    binds = (*base_binds(), *tc.binds)
    a += ["--ro-bind", _etc_dir(tuple(sorted({d for _, d in binds if d.startswith("/etc/")}))), "/etc"]
    seen = {"/etc"}
    for host, dest in binds:
        if dest in seen:
            continue
        if dest in bind_fds:
            seen.add(dest)
            a += ["--ro-bind-fd", str(bind_fds[dest]), dest]
        elif os.path.exists(host):
            seen.add(dest)
            a += ["--ro-bind", host, dest]
    for target, link in base_links():
        a += ["--symlink", target, link]
    for link, target in (("/bin", "usr/bin"), ("/lib", "usr/lib"), ("/lib64", "usr/lib64"), ("/sbin", "usr/sbin")):
        if os.path.islink(link) and link not in seen:
            a += ["--symlink", target, link]
    size = str(limits.disk_mb * 1024 * 1024)
    a += ["--proc", "/proc", "--dev", "/dev", "--size", size, "--tmpfs", "/tmp", "--size", size, "--tmpfs", "/dev/shm"]
    a += ["--ro-bind", os.path.join(run_dir, "src"), SRC]
    if phase == "compile":
        a += ["--bind", os.path.join(run_dir, "build"), BUILD, "--chdir", BUILD]
    else:
        if plan.compile is not None:
            a += ["--ro-bind", os.path.join(run_dir, "build"), BUILD]
        a += ["--size", size, "--tmpfs", WORK]
        made = {WORK}
        for rel, fd in files:
            parts = rel.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = WORK + "/" + "/".join(parts[:i])
                if d not in made:
                    made.add(d)
                    a += ["--dir", d]
            a += ["--file", str(fd), f"{WORK}/{rel}"]
        a += ["--chdir", WORK]
    a += ["--remount-ro", "/"]
    for k, v in env.items():
        a += ["--setenv", k, v]
    return a


_RL_NAMES = {
    resource.RLIMIT_CPU: "cpu", resource.RLIMIT_FSIZE: "fsize", resource.RLIMIT_NOFILE: "nofile",
    resource.RLIMIT_NPROC: "nproc", resource.RLIMIT_CORE: "core", resource.RLIMIT_AS: "as",
}
_PRLIMIT, _SETPRIV, _SH = shutil.which("prlimit"), shutil.which("setpriv"), shutil.which("sh")


_LAUNCHER_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.c")
_launcher_bin: str | None | bool = False  # False: not looked for yet
_launcher_lock = threading.Lock()


def _compiled_launcher() -> str | None:
    """Path of the compiled launcher.c (built once per machine, cached by source hash)."""
    if _launcher_bin is not False:
        return _launcher_bin
    with _launcher_lock:
        return _find_or_build_launcher()


def _find_or_build_launcher() -> str | None:
    global _launcher_bin
    if _launcher_bin is not False:
        return _launcher_bin
    _launcher_bin = None
    cc = shutil.which("cc") or shutil.which("gcc")
    try:
        with open(_LAUNCHER_SRC, "rb") as f:
            src = f.read()
    except OSError:
        return None
    import hashlib

    name = f"launcher-{hashlib.sha256(src).hexdigest()[:12]}"
    for d in (MIRROR_ROOT, os.path.join(os.path.expanduser("~"), ".cache", "codecorpus-sandbox")):
        path = os.path.join(d, name)
        if os.access(path, os.X_OK):
            _launcher_bin = path
            return path
        if cc is None:
            continue
        try:
            os.makedirs(d, mode=0o755, exist_ok=True)
            tmp = f"{path}.tmp{os.getpid()}"
            p = subprocess.run([cc, "-O2", "-o", tmp, _LAUNCHER_SRC], capture_output=True, timeout=120)
            if p.returncode == 0:
                os.chmod(tmp, 0o755)
                os.replace(tmp, path)
                _launcher_bin = path
                return path
        except (OSError, subprocess.SubprocessError):
            continue
    return None


REAP_SEP = "--reap"  # launcher.c separator: fork, reap every orphan, forward the child's status


def _stop(proc: subprocess.Popen, reaping: bool) -> None:
    """Kill a directly started step's whole tree.

    A reaping launcher gets SIGTERM: it SIGKILLs bwrap (and through --die-with-parent the
    sandbox), then stays until it has reaped every orphan. SIGKILLing its process group
    instead would orphan bwrap's inner init to PID 1 again.
    """
    try:
        if reaping:
            os.kill(proc.pid, signal.SIGTERM)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass


def _launcher(slot: _Slot, limits: Limits, cgroup_procs: list[str]) -> list[str] | None:
    """argv prefix that joins the cgroup, sets rlimits and drops to the slot uid, then execs.

    Prefers the compiled launcher.c (one small exec); else sh + prlimit + setpriv from
    util-linux; None when neither exists (then ``_preexec`` does the same in Python). Both
    beat a ``preexec_fn``, which stops subprocess from using vfork (~15 ms in a big process).
    """
    rl = rlimits_for(limits, cgroup=bool(cgroup_procs))
    root = os.geteuid() == 0
    exe = _compiled_launcher()
    if exe is not None:
        # "--reap": the launcher stays behind as a child subreaper and reaps what a killed
        # bwrap orphans (its inner init), which a host PID 1 that never reaps would keep as
        # zombies of the slot uid until RLIMIT_NPROC stops bwrap from forking.
        return [exe, str(len(cgroup_procs)), *cgroup_procs, str(len(rl)),
                *(f"{res}:{soft}:{hard}" for res, (soft, hard) in rl),
                str(slot.uid if root else -1), str(slot.gid if root else -1), REAP_SEP]
    if not (_PRLIMIT and _SH and (_SETPRIV or not root)):
        return None
    pre: list[str] = []
    if cgroup_procs:
        pre = [_SH, "-c", 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"',
               "sh", *cgroup_procs, "--"]
    pre.append(_PRLIMIT)
    for res, (soft, hard) in rl:
        pre.append(f"--{_RL_NAMES[res]}={soft}:{hard}")
    pre.append("--")
    if root:
        pre += [_SETPRIV, f"--reuid={slot.uid}", f"--regid={slot.gid}", "--clear-groups", "--"]
    return pre


def _join_prefix(cgroup_procs: list[str]) -> list[str] | None:
    """argv prefix that only joins the cgroups (for the slot's spawn server, which stays root)."""
    exe = _compiled_launcher()
    return None if exe is None else [exe, str(len(cgroup_procs)), *cgroup_procs, "0", "-1", "-1", "--"]


def _preexec(slot: _Slot, limits: Limits, cg_fds: list[int]):
    rl = rlimits_for(limits, cgroup=bool(cg_fds))

    def fn() -> None:
        for fd in cg_fds:
            os.write(fd, b"0")  # join the slot cgroup before exec: every descendant stays in it
        for res, lim in rl:
            resource.setrlimit(res, lim)
        if os.geteuid() == 0:
            os.setgroups([])
            os.setresgid(slot.gid, slot.gid, slot.gid)
            os.setresuid(slot.uid, slot.uid, slot.uid)

    return fn


def _step(tc: Toolchain, plan: Plan, phase: str, argv: list[str], run_dir: str, slot: _Slot, limits: Limits,
          stdin: bytes, files: dict[str, bytes]) -> StepOutcome:
    r_status, w_status = os.pipe()
    file_fds: list[tuple[str, int]] = []
    cg_fds: list[int] = []
    bind_fds: dict[str, int] = {}
    seccomp_fd = -1
    proc = None
    reaping = False
    t0 = time.monotonic()
    try:
        filt = seccomp.filter_path() if os.environ.get("CODECORPUS_SANDBOX_SECCOMP") != "0" else None
        if filt is not None:
            seccomp_fd = os.open(filt, os.O_RDONLY)  # one fd per step: bwrap reads it to the end
        for rel in files:
            file_fds.append((rel, os.open(os.path.join(run_dir, "files", rel), os.O_RDONLY)))
        # Remapped toolchains (rustup, a Go tarball) often live under /root, which the slot uid
        # cannot traverse: open them here (as the caller) and hand bwrap the directory fd.
        for host, dest in tc.binds:
            if host != dest and dest not in bind_fds and os.path.isdir(host):
                bind_fds[dest] = os.open(host, os.O_PATH | os.O_DIRECTORY)
        env = dict(plan.env)
        if phase == "compile":
            env["HOME"] = "/tmp"
        oom_before = 0
        zyg = slot.spawner()
        spare = slot.spare()
        if slot.cgroup is not None:
            slot.cgroup.kill_all(1.0, spare)
            cg_fds = slot.cgroup.prepare(limits, open_procs=zyg is None and _launcher(slot, limits, []) is None,
                                         extra_procs=1 if zyg else 0, extra_bytes=ZYGOTE_BYTES if zyg else 0)
            oom_before = slot.cgroup.oom_kills()
        reaping = False
        if zyg is not None:
            proc = _spawn_via_zygote(zyg, tc, plan, phase, run_dir, limits, env, file_fds, bind_fds, w_status,
                                     argv, bool(stdin), seccomp_fd)
        else:
            args = _bwrap_args(tc, plan, phase, run_dir, limits, env, file_fds, w_status, bind_fds,
                               seccomp_fd) + ["--", *argv]
            pass_fds = [w_status, *(fd for _, fd in file_fds), *bind_fds.values(),
                        *([seccomp_fd] if seccomp_fd >= 0 else [])]
            prefix = _launcher(slot, limits, [os.path.join(d, "cgroup.procs") for d in slot.cgroup.dirs]
                               if slot.cgroup is not None else [])
            reaping = prefix is not None and prefix[-1] == REAP_SEP
            proc = subprocess.Popen(
                (prefix or []) + args, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"}, cwd="/",
                pass_fds=pass_fds, start_new_session=True,
                preexec_fn=None if prefix is not None else _preexec(slot, limits, cg_fds), close_fds=True,
            )
        os.close(w_status)
        w_status = -1
        for fd in [*(fd for _, fd in file_fds), *bind_fds.values(), *([seccomp_fd] if seccomp_fd >= 0 else [])]:
            os.close(fd)
        file_fds, bind_fds, seccomp_fd = [], {}, -1

        def kill() -> None:
            _stop(proc, reaping)
            if slot.cgroup is not None:
                slot.cgroup.kill_all(2.0, spare)

        out = pump(proc, stdin, limits.max_output_bytes, t0 + limits.timeout_s, kill)
        status_text = b""
        while True:
            chunk = os.read(r_status, 65536)
            if not chunk:
                break
            status_text += chunk
        step = StepOutcome(stdout=out.stdout, stderr=out.stderr, stdout_truncated=out.stdout_truncated,
                           stderr_truncated=out.stderr_truncated, timed_out=out.timed_out,
                           output_limited=out.output_limited, duration_s=time.monotonic() - t0)
        started = exit_code = None
        for line in status_text.decode("utf-8", "replace").splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            started = obj.get("child-pid", started)
            exit_code = obj.get("exit-code", exit_code)
        step.exit_code = exit_code if exit_code is not None else proc.returncode
        setup_failed = step.exit_code == 1 and out.stderr.startswith(b"bwrap: ") and b"\n" not in out.stderr.rstrip()
        if (started is None or setup_failed) and not (out.timed_out or out.output_limited):
            step.sandbox_failure = "bwrap could not set up the sandbox: " + out.stderr.decode("utf-8", "replace").strip()
        if slot.cgroup is not None:
            step.oom_killed = slot.cgroup.oom_kills() > oom_before
            slot.cgroup.kill_all(2.0, slot.spare())
        return step
    finally:
        for fd in (r_status, w_status, seccomp_fd, *cg_fds, *(fd for _, fd in file_fds), *bind_fds.values()):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        if proc is not None and proc.poll() is None:
            if reaping:
                _stop(proc, True)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    pass
        if isinstance(proc, ZygoteProc):
            for f in (proc.stdin, proc.stdout, proc.stderr):
                if f is not None and not f.closed:
                    f.close()


ZYGOTE_BYTES = 32 * 1024 * 1024  # the spawn server's share of the slot cgroup's memory


def _spawn_via_zygote(zyg: Zygote, tc: Toolchain, plan: Plan, phase: str, run_dir: str, limits: Limits,
                      env: dict[str, str], file_fds: list[tuple[str, int]], bind_fds: dict[str, int], status_fd: int,
                      argv: list[str], with_stdin: bool, seccomp_fd: int = -1) -> ZygoteProc:
    """Start bwrap through the slot's spawn server; fds get fixed numbers (3, 4, ...) in the child.

    The server already runs as the slot uid inside the slot cgroup; the compiled launcher in
    front of bwrap only sets the step's rlimits.
    """
    launcher = _compiled_launcher() or "/nonexistent/launcher"  # spawner() checked it exists
    mapping: list[tuple[int, int]] = []
    nxt = 3

    def place(fd: int) -> int:
        nonlocal nxt
        mapping.append((fd, nxt))
        nxt += 1
        return nxt - 1

    child_status = place(status_fd)
    child_files = [(rel, place(fd)) for rel, fd in file_fds]
    child_binds = {dest: place(fd) for dest, fd in bind_fds.items()}
    child_seccomp = place(seccomp_fd) if seccomp_fd >= 0 else -1
    args = _bwrap_args(tc, plan, phase, run_dir, limits, env, child_files, child_status, child_binds,
                       child_seccomp) + ["--", *argv]
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    if with_stdin:
        in_r, in_w = os.pipe()
    else:
        in_r, in_w = os.open(os.devnull, os.O_RDONLY), -1
    rl = rlimits_for(Limits(**{**limits.__dict__, "max_procs": limits.max_procs + 1}), cgroup=True)
    prefix = [launcher, "0", str(len(rl)), *(f"{res}:{soft}:{hard}" for res, (soft, hard) in rl), "-1", "-1", "--"]
    try:
        pid = zyg.spawn(prefix + args, {"PATH": "/usr/bin:/bin"}, [(in_r, 0), (out_w, 1), (err_w, 2), *mapping])
    except OSError:
        for fd in (out_r, err_r, in_w):
            if fd >= 0:
                os.close(fd)
        raise
    finally:
        for fd in (in_r, out_w, err_w):
            os.close(fd)
    return ZygoteProc(zyg, pid, os.fdopen(in_w, "wb", buffering=0) if in_w >= 0 else None,
                      os.fdopen(out_r, "rb", buffering=0), os.fdopen(err_r, "rb", buffering=0), args)


def _write_tree(base: str, files: dict[str, bytes], mode: int = 0o644) -> None:
    for rel, data in files.items():
        path = os.path.join(base, rel)
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)


SETUP_RETRY_DELAYS_S = (0.02, 0.1, 0.3)


def _step_retrying(tc: Toolchain, plan: Plan, phase: str, argv: list[str], run_dir: str, slot: _Slot,
                   limits: Limits, stdin: bytes, files: dict[str, bytes]) -> StepOutcome:
    """`_step`, retried when bwrap itself could not fork (EAGAIN) before any user code ran.

    The previous run's processes of this slot's uid can still be counted against RLIMIT_NPROC /
    pids.max for a few milliseconds after they were killed; bwrap then fails to create its pid 1.
    Nothing of the request ran, so trying again is safe; any other failure is returned as is.
    """
    step = _step(tc, plan, phase, argv, run_dir, slot, limits, stdin, files)
    for delay in SETUP_RETRY_DELAYS_S:
        if not (step.sandbox_failure and "Resource temporarily unavailable" in step.sandbox_failure):
            break
        time.sleep(delay)
        step = _step(tc, plan, phase, argv, run_dir, slot, limits, stdin, files)
    return step


def run_plan(plan: Plan, tc: Toolchain, stdin: bytes, files: dict[str, bytes]) -> tuple[StepOutcome | None, StepOutcome | None]:
    """Compile (if the language needs it) then run; returns (compile outcome, run outcome)."""
    slot = slots().acquire()
    run_dir = tempfile.mkdtemp(prefix="codecorpus-run-", dir=_run_root())
    try:
        os.chmod(run_dir, 0o755)
        os.makedirs(os.path.join(run_dir, "src"), mode=0o755)
        _write_tree(os.path.join(run_dir, "src"), plan.sources.files)
        _write_tree(os.path.join(run_dir, "files"), files, mode=0o600)
        comp = None
        if plan.compile is not None:
            build = os.path.join(run_dir, "build")
            os.makedirs(build, mode=0o755)
            if os.geteuid() == 0:
                os.chown(build, slot.uid, slot.gid)
            comp = _step_retrying(tc, plan, "compile", plan.compile, run_dir, slot, plan.compile_limits, b"", {})
            if comp.exit_code != 0 or comp.sandbox_failure or comp.timed_out or comp.output_limited or comp.oom_killed:
                return comp, None
        return comp, _step_retrying(tc, plan, "run", plan.run, run_dir, slot, plan.run_limits, stdin, files)
    finally:
        slots().release(slot)
        shutil.rmtree(run_dir, ignore_errors=True)


def toolchain(language: str) -> Toolchain | None:
    return host_toolchain(language)


def toolchain_reason(language: str) -> str:
    return host_toolchain_reason(language)

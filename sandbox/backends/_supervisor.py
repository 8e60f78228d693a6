"""In-container supervisor for the docker backend: pid 1 of each warm container (stdlib only).

Started as ``python3 -I -S -c <_io.py + this file>``; it reads one JSON request per line on
stdin (source files, work files, stdin, the compile/run steps with their limits) and answers
one JSON line on stdout. Each step runs with rlimits, a wall-clock deadline and an output cap
(the same ``pump`` as the host side); then every other process is SIGKILLed (``kill(-1)``
spares only the caller, which is pid 1) and /src, /build, /work, /tmp, /dev/shm (also where the
run made directories unreadable or chmodded them), POSIX message queues and SysV IPC are wiped,
so the next request in this container starts clean; what a wipe cannot remove is reported as
``dirty`` and the host recycles the container. Being pid 1 it also reaps orphans.
Staying resident saves a ``docker exec`` and the interpreter start per request.
"""

import base64
import json
import os
import resource
import signal
import stat
import subprocess
import sys
import time

try:  # on the host (tests); inside the container this file is sent after _io.py's source
    from sandbox.backends._io import pump
except ImportError:  # pragma: no cover - exercised inside the container
    pass

CLEAN_DIRS = ("/src", "/build", "/work", "/tmp", "/dev/shm")
MQUEUE_DIR = "/dev/mqueue"


def _oom_kills():
    for path in ("/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events"):
        try:
            with open(path) as f:
                for line in f:
                    k, _, v = line.partition(" ")
                    if k == "oom_kill":
                        return int(v)
        except (OSError, ValueError):
            continue
    return 0


def kill_strays(deadline_s=2.0):
    """SIGKILL every other process of ours until none is left; reap the zombies."""
    me = os.getpid()
    end = time.monotonic() + deadline_s
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        alive = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)]
        alive = [p for p in alive if _state(p) not in ("Z", "X", "")]
        if not alive or time.monotonic() > end:
            return not alive
        time.sleep(0.005)


def _state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


_MODES = {}  # CLEAN_DIRS' modes when the container started: a run may chmod them


def _record_modes():
    for d in CLEAN_DIRS + (MQUEUE_DIR,):
        try:
            _MODES[d] = os.stat(d).st_mode & 0o7777
        except OSError:
            pass


def _force_remove(path):
    """Remove ``path`` even where the run made directories unreadable (it ran as our uid, so
    chmod works); iterative, so a deeply nested tree cannot exhaust the stack."""
    stack = [(path, False)]
    while stack:
        p, listed = stack.pop()
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            try:
                os.unlink(p)
            except OSError:
                pass
            continue
        if listed:
            try:
                os.rmdir(p)
            except OSError:
                pass
            continue
        try:
            os.chmod(p, 0o700)
            names = os.listdir(p)
        except OSError:
            names = []
        stack.append((p, True))
        stack.extend((os.path.join(p, n), False) for n in names)


def wipe():
    for d in CLEAN_DIRS + (MQUEUE_DIR,):  # POSIX message queues are files of the mqueue fs
        if d in _MODES:
            try:
                os.chmod(d, _MODES[d])
            except OSError:
                pass
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            _force_remove(os.path.join(d, n))


def leftovers():
    """What a wipe could not remove ('' when the container is as fresh): the host recycles the
    container otherwise."""
    left = []
    for d in CLEAN_DIRS + (MQUEUE_DIR,):
        try:
            if os.listdir(d):
                left.append(d + " not empty")
            if d in _MODES and os.stat(d).st_mode & 0o7777 != _MODES[d]:
                left.append(d + " mode changed")
        except OSError as e:
            if d in _MODES:
                left.append(f"{d}: {e.strerror}")
    for kind in ("shm", "msg", "sem"):
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                if len(f.read().splitlines()) > 1:
                    left.append("SysV " + kind)
        except OSError:
            pass
    alive = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid())
             and _state(p) not in ("Z", "X", "")]
    if alive:
        left.append(f"{len(alive)} processes")
    return "; ".join(left)


def remove_sysv_ipc():
    """Delete SysV shm/msg/sem objects a run left in this container's IPC namespace."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
    except Exception:
        return
    for kind, ctl in (("shm", "shmctl"), ("msg", "msgctl"), ("sem", "semctl")):
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 1 and cols[1].lstrip("-").isdigit():
                getattr(libc, ctl)(int(cols[1]), 0, None)  # IPC_RMID


def _write(base, files):
    for rel, b64 in files.items():
        path = os.path.join(base, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(b64))


def run_step(step, stdin):
    lim = step["limits"]
    rl = [
        (resource.RLIMIT_CPU, (int(lim["timeout_s"]) + 1, int(lim["timeout_s"]) + 2)),
        (resource.RLIMIT_FSIZE, (lim["max_file_bytes"], lim["max_file_bytes"])),
        (resource.RLIMIT_NOFILE, (lim["max_open_files"], lim["max_open_files"])),
        (resource.RLIMIT_CORE, (0, 0)),
    ]
    if lim["address_space"]:
        rl.append((resource.RLIMIT_AS, (lim["memory_bytes"], lim["memory_bytes"])))

    def pre():
        for r, v in rl:
            resource.setrlimit(r, v)
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")  # the program, never the supervisor, is the OOM killer's choice
        except OSError:
            pass

    oom0 = _oom_kills()
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(step["argv"], cwd=step["cwd"], env=step["env"],
                                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                preexec_fn=pre)
    except OSError as e:
        return {"sandbox_failure": f"cannot start {step['argv'][0]}: {e}", "duration_s": time.monotonic() - t0}

    def kill():
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        kill_strays()

    out = pump(proc, stdin, lim["max_output_bytes"], t0 + lim["timeout_s"], kill)
    kill_strays()
    return {
        "exit_code": proc.returncode, "stdout": base64.b64encode(out.stdout).decode(),
        "stderr": base64.b64encode(out.stderr).decode(), "stdout_truncated": out.stdout_truncated,
        "stderr_truncated": out.stderr_truncated, "timed_out": out.timed_out,
        "output_limited": out.output_limited, "oom_killed": _oom_kills() > oom0,
        "duration_s": time.monotonic() - t0,
    }


def handle(req):
    """Run the request's steps. ``fresh`` (default) starts from a clean container and writes the
    files; ``keep`` leaves /src, /build and /work for a follow-up request (compile, then run
    after the host lowered the container's memory limit)."""
    if req.get("fresh", True):
        kill_strays(0.5)
        wipe()
        remove_sysv_ipc()
        _write("/src", req["sources"])
        _write("/work", req["files"])
    results = []
    for step in req["steps"]:
        stdin = base64.b64decode(req["stdin"]) if step["phase"] == "run" else b""
        res = run_step(step, stdin)
        results.append(res)
        if res.get("exit_code") != 0 or res.get("sandbox_failure"):
            break
    ans = {"steps": results}
    if not req.get("keep", False) or any(r.get("exit_code") != 0 for r in results):
        kill_strays(0.5)
        wipe()
        remove_sysv_ipc()
        dirty = leftovers()
        if dirty:
            ans["dirty"] = dirty
    return ans


def _not_dumpable():
    """Programs run as our uid: without this they could open /proc/1/fd/1 and forge answers."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0
    except Exception:
        pass


def serve(inp, out):
    """One request per line in, one answer per line out, until stdin closes."""
    _not_dumpable()
    _record_modes()
    out.write(b'{"ready": true}\n')
    out.flush()
    for line in inp:
        if not line.strip():
            continue
        nonce = None
        try:
            req = json.loads(line)
            nonce = req.get("nonce")
            ans = handle(req)
        except Exception as e:  # a bad request must not take the container down
            ans = {"error": f"{type(e).__name__}: {e}"}
        ans["nonce"] = nonce  # the host drops answers without its per-request nonce
        out.write(json.dumps(ans).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)

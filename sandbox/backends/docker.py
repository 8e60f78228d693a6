"""Docker backend: a pool of warm, locked-down containers, each run by a resident supervisor.

Containers: image built by sandbox/image/build_image.sh (no registry needed), network none,
read-only root, tmpfs /src /build /work /tmp and /dev/shm, memory (= swap) / pids / CPU limits,
all capabilities dropped, no-new-privileges, uid 65534. Pid 1 of each container is the
supervisor (sandbox/backends/_supervisor.py); a request leases one container exclusively and
sends its plan as one JSON line over the attached stdin; the supervisor enforces the step
timeouts and output caps *inside* the container, kills strays and wipes the dirs after.
Containers are labelled ``codecorpus.sandbox`` and recycled after ``RECYCLE_AFTER`` runs or
after any run that timed out, hit a limit, failed or left state the supervisor's wipe could not
remove (its answer says ``dirty``); containers of dead owners are pruned by
label when a pool starts.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import secrets
import socket
import subprocess
import threading
import time
from dataclasses import dataclass

from sandbox.backends.base import StepOutcome
from sandbox.languages import Plan, Toolchain

NAME = "docker"
LABEL = "codecorpus.sandbox"
OWNER_LABEL = "codecorpus.sandbox.owner"
RECYCLE_AFTER = 200
MEMORY_HEADROOM_MB = 64  # supervisor + page cache on top of the request's memory
BUILD_TIMEOUT_S = 900
_HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_SCRIPT = os.path.join(os.path.dirname(_HERE), "image", "build_image.sh")


def _supervisor_source() -> str:
    parts = []
    for name in ("_io.py", "_supervisor.py"):
        with open(os.path.join(_HERE, name)) as f:
            parts.append("\n".join(ln for ln in f.read().splitlines() if not ln.startswith("from __future__")))
    return "\n\n".join(parts)


SUPERVISOR = _supervisor_source()


def _client():
    import docker

    return docker.from_env(timeout=120)


def available() -> tuple[bool, str]:
    try:
        import docker  # noqa: F401
    except ImportError:
        return False, "docker Python SDK not installed (pip install docker)"
    try:
        c = _client()
        c.ping()
    except Exception as e:
        return False, f"no Docker engine reachable ({type(e).__name__}); start dockerd (scripts/services.sh)"
    return True, "docker engine " + str(c.version().get("Version", "?"))


def image_tag() -> str:
    p = subprocess.run(["bash", BUILD_SCRIPT, "--print-tag"], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError(f"{BUILD_SCRIPT} --print-tag failed: {p.stderr.strip()}")
    return p.stdout.strip().splitlines()[-1]


_image_lock = threading.Lock()
_image: str | None = None


def ensure_image(timeout_s: float = BUILD_TIMEOUT_S) -> str:
    """The sandbox image tag, building it (once per machine; cached by content hash) if missing."""
    global _image
    with _image_lock:
        if _image is not None:
            return _image
        override = os.environ.get("CODECORPUS_SANDBOX_IMAGE")
        tag = override or image_tag()
        import docker

        try:
            _client().images.get(tag)
        except docker.errors.ImageNotFound:
            if override:
                raise RuntimeError(f"CODECORPUS_SANDBOX_IMAGE={override} is not present in the Docker engine") from None
            p = subprocess.run(["bash", BUILD_SCRIPT], capture_output=True, text=True, timeout=timeout_s)
            if p.returncode != 0:
                raise RuntimeError(
                    f"building the sandbox image failed ({BUILD_SCRIPT}): {p.stderr.strip()[-2000:]}") from None
            tag = p.stdout.strip().splitlines()[-1]
        _image = tag
        return tag


class _Channel:
    """Line protocol over a container's attach socket (docker's 8-byte multiplexed frames)."""

    def __init__(self, sock):
        self.sock = sock
        self.raw = getattr(sock, "_sock", sock)
        self.buf = b""
        self.out = b""
        self.err = b""

    def _fill(self) -> None:
        data = self.raw.recv(262144)
        if not data:
            raise ConnectionError("container closed its output (supervisor died: " +
                                  self.err.decode("utf-8", "replace").strip()[-300:] + ")")
        self.buf += data
        while len(self.buf) >= 8:
            stream, size = self.buf[0], int.from_bytes(self.buf[4:8], "big")
            if len(self.buf) < 8 + size:
                break
            payload, self.buf = self.buf[8:8 + size], self.buf[8 + size:]
            if stream == 2:
                self.err = (self.err + payload)[-65536:]
            else:
                self.out += payload

    def readline(self, timeout_s: float) -> bytes:
        self.raw.settimeout(timeout_s)
        while b"\n" not in self.out:
            self._fill()
        line, _, self.out = self.out.partition(b"\n")
        return line

    def send(self, data: bytes, timeout_s: float) -> None:
        self.raw.settimeout(timeout_s)
        self.raw.sendall(data)

    def close(self) -> None:
        try:
            self.sock.close()
        except Exception:
            pass


@dataclass
class _Container:
    id: str
    memory_mb: int
    channel: _Channel
    runs: int = 0


class Pool:
    """Warm containers keyed by memory limit; each lease is exclusive."""

    def __init__(self, image: str, python: str, disk_mb: int = 64, max_procs: int = 64, cpus: float = 1.0):
        self.client = _client()
        self.image, self.python = image, python
        self.disk_mb, self.max_procs, self.cpus = disk_mb, max_procs, cpus
        self.pid = os.getpid()
        self.owner = f"{socket.gethostname()}:{self.pid}"
        self._idle: dict[int, list[_Container]] = {}
        self._all: dict[str, _Container] = {}
        self._lock = threading.Lock()
        self.prune_stale()
        atexit.register(self.close)

    def prune_stale(self) -> int:
        """Remove labelled containers whose owning process (on this host) is gone."""
        n = 0
        host = socket.gethostname()
        for c in self.client.containers.list(all=True, filters={"label": LABEL}):
            owner = c.labels.get(OWNER_LABEL, "")
            h, _, pid = owner.rpartition(":")
            alive = h == host and pid.isdigit() and os.path.exists(f"/proc/{pid}")
            if not alive or c.status not in ("running", "created"):
                try:
                    c.remove(force=True)
                    n += 1
                except Exception:
                    pass
        return n

    def _create(self, memory_mb: int) -> _Container:
        from docker.types import Ulimit

        mem = f"{memory_mb + MEMORY_HEADROOM_MB}m"
        tmp = f"size={self.disk_mb}m,mode=1777"
        python = self.python
        c = self.client.containers.create(
            self.image, [python, "-I", "-S", "-c", SUPERVISOR], stdin_open=True, user="65534:65534",
            network_mode="none", read_only=True, hostname="sandbox",
            tmpfs={"/src": tmp, "/build": f"size={max(self.disk_mb, 256)}m,mode=1777,exec", "/work": tmp,
                   "/tmp": tmp},
            shm_size=f"{self.disk_mb}m", mem_limit=mem, memswap_limit=mem, pids_limit=self.max_procs + 16,
            nano_cpus=int(self.cpus * 1e9), cap_drop=["ALL"], security_opt=["no-new-privileges"],
            ulimits=[Ulimit(name="nofile", soft=1024, hard=1024)],
            labels={LABEL: "1", OWNER_LABEL: self.owner}, stop_signal="SIGKILL",
        )
        with self._lock:
            self._all[c.id] = box = _Container(c.id, memory_mb, None)
        try:
            sock = self.client.api.attach_socket(c.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            box.channel = _Channel(sock)
            c.start()
            ready = box.channel.readline(60)
            if b"ready" not in ready:
                raise RuntimeError(f"sandbox supervisor did not start: {ready[:200]!r}")
        except Exception:
            self._remove(box)
            raise
        return box

    def warm(self, n: int, memory_mb: int = 512) -> None:
        """Start ``n`` idle containers now (in parallel) so the first requests do not pay for it."""
        threads = [threading.Thread(target=lambda: self.release(self._create(memory_mb), True)) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def resize(self, box: _Container, memory_mb: int) -> None:
        """Change a leased container's memory (= swap) limit, e.g. around a compile step."""
        mem = f"{memory_mb + MEMORY_HEADROOM_MB}m"
        self.client.api.update_container(box.id, mem_limit=mem, memswap_limit=mem)

    def acquire(self, memory_mb: int) -> _Container:
        with self._lock:
            idle = self._idle.get(memory_mb)
            if idle:
                return idle.pop()
        return self._create(memory_mb)

    def release(self, box: _Container, healthy: bool) -> None:
        box.runs += 1
        if healthy and box.runs < RECYCLE_AFTER:
            with self._lock:
                self._idle.setdefault(box.memory_mb, []).append(box)
            return
        self._remove(box)

    def _remove(self, box: _Container) -> None:
        with self._lock:
            self._all.pop(box.id, None)
        if box.channel is not None:
            box.channel.close()
        try:
            self.client.api.remove_container(box.id, force=True)
        except Exception:
            pass

    def close(self) -> None:
        if self.pid != os.getpid():
            return  # inherited across fork: the parent owns these containers
        for box in list(self._all.values()):
            self._remove(box)
        self._idle.clear()


_pool: Pool | None = None
_pool_lock = threading.Lock()


def pool() -> Pool:
    """This process's pool (a forked child starts its own: attach sockets cannot be shared)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():
            _pool = Pool(ensure_image(), _supervisor_python())
        return _pool


def _limits_dict(lim) -> dict:
    return {"timeout_s": lim.timeout_s, "max_file_bytes": lim.max_file_bytes, "max_open_files": lim.max_open_files,
            "address_space": lim.address_space, "memory_bytes": lim.memory_bytes,
            "max_output_bytes": lim.max_output_bytes}


def _exec(box: _Container, payload: bytes, nonce: str, budget_s: float) -> dict:
    """Send one request line to the container's supervisor and read its answer line."""
    box.channel.send(payload + b"\n", 30)
    ans = json.loads(box.channel.readline(budget_s))
    if ans.get("nonce") != nonce:
        raise ValueError("answer without this request's nonce (forged or out of sync)")
    return ans


def _outcome(d: dict) -> StepOutcome:
    return StepOutcome(
        exit_code=d.get("exit_code"), stdout=base64.b64decode(d.get("stdout", "")),
        stderr=base64.b64decode(d.get("stderr", "")), stdout_truncated=d.get("stdout_truncated", False),
        stderr_truncated=d.get("stderr_truncated", False), timed_out=d.get("timed_out", False),
        output_limited=d.get("output_limited", False), oom_killed=d.get("oom_killed", False),
        sandbox_failure=d.get("sandbox_failure"), duration_s=d.get("duration_s", 0.0),
    )


def run_plan(plan: Plan, tc: Toolchain, stdin: bytes, files: dict[str, bytes]) -> tuple[StepOutcome | None, StepOutcome | None]:
    """Compile (container raised to the compiler's memory) then run (lowered back to the
    request's ``memory_mb``), in one leased container; (compile outcome, run outcome)."""
    p = pool()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    run_step = {"phase": "run", "argv": plan.run, "cwd": "/work", "env": plan.env,
                "limits": _limits_dict(plan.run_limits)}
    base = {"sources": {k: b64(v) for k, v in plan.sources.files.items()},
            "files": {k: b64(v) for k, v in files.items()}, "stdin": b64(stdin)}
    run_mem = plan.run_limits.memory_mb
    box = p.acquire(run_mem)
    healthy = False
    dirty: list[str] = []  # what the supervisor's wipe could not remove: recycle the container
    t0 = time.monotonic()

    def request(steps: list[dict], **flags) -> list[StepOutcome]:
        nonce = secrets.token_hex(16)
        payload = json.dumps({"nonce": nonce, **base, "steps": steps, **flags}).encode()
        res = _exec(box, payload, nonce, sum(s["limits"]["timeout_s"] for s in steps) + 30)
        if "error" in res:
            raise ValueError(f"supervisor rejected the request: {res['error']}")
        if res.get("dirty"):
            dirty.append(str(res["dirty"]))
        return [_outcome(s) for s in res["steps"]]

    try:
        comp = None
        if plan.compile is not None:
            comp_mem = max(run_mem, plan.compile_limits.memory_mb)
            step = {"phase": "compile", "argv": plan.compile, "cwd": "/build", "env": dict(plan.env, HOME="/tmp"),
                    "limits": _limits_dict(plan.compile_limits)}
            if comp_mem != run_mem:
                p.resize(box, comp_mem)
            try:
                (comp,) = request([step], keep=True)
            finally:
                if comp_mem != run_mem:
                    p.resize(box, run_mem)  # the program never runs with the compiler's allowance
            if comp.exit_code != 0 or comp.timed_out or comp.oom_killed or comp.output_limited or comp.sandbox_failure:
                healthy = not (comp.timed_out or comp.oom_killed or comp.output_limited or comp.sandbox_failure)
                return comp, None
        outs = request([run_step], fresh=comp is None)
        run = outs[0] if outs else None
        healthy = run is not None and not (run.timed_out or run.oom_killed or run.output_limited or run.sandbox_failure)
        return comp, run
    except (OSError, TimeoutError, ValueError, ConnectionError) as e:
        return None, StepOutcome(sandbox_failure=f"docker container failed: {type(e).__name__}: {e}",
                                 duration_s=time.monotonic() - t0)
    except Exception as e:  # docker.errors.APIError from resize and the like
        return None, StepOutcome(sandbox_failure=f"docker API failed: {type(e).__name__}: {e}",
                                 duration_s=time.monotonic() - t0)
    finally:
        p.release(box, healthy and not dirty)


_toolchains: dict[str, Toolchain] | None = None


def _image_toolchains() -> dict[str, Toolchain]:
    global _toolchains
    if _toolchains is None:
        labels = _client().images.get(ensure_image()).labels or {}
        raw = json.loads(base64.b64decode(labels.get("codecorpus.toolchains", "") or b"e30="))
        _toolchains = {lang: Toolchain(lang, dict(v["tools"]), (), dict(v.get("env", {})), v.get("version", ""))
                       for lang, v in raw.items()}
    return _toolchains


def _supervisor_python() -> str:
    tc = _image_toolchains().get("python")
    if tc is None:
        raise RuntimeError("the sandbox image has no python (the supervisor needs it); rebuild it")
    return tc.tools["python"]


def toolchain(language: str) -> Toolchain | None:
    return _image_toolchains().get(language)


def toolchain_reason(language: str) -> str:
    return "" if toolchain(language) else f"not in the sandbox image ({os.path.relpath(BUILD_SCRIPT)})"

"""Backend mechanics: unprivileged uids, cgroups, the docker pool's labels, recycling and pruning."""

from __future__ import annotations

import os
import subprocess

import pytest

import sandbox
from sandbox.limits import CgroupSlot, Limits, cgroup_mode, rlimits_for


def _host_uids_of_sandboxed_programs() -> set[int]:
    uids = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{pid}/status") as f:
                status = f.read()
        except OSError:
            continue
        if b"/src/main.py" in cmd:
            uids.add(int(next(ln for ln in status.splitlines() if ln.startswith("Uid:")).split()[1]))
    return uids


def test_bwrap_runs_unprivileged_in_fresh_namespaces(bwrap_backend):
    import threading
    import time

    box = {}
    t = threading.Thread(target=lambda: box.setdefault("r", sandbox.execute(
        "import os, time\nprint(os.getuid(), os.getgid())\nprint(sorted(os.listdir('/')))\nprint(os.getpid())\n"
        "time.sleep(3)\n", "python", backend=bwrap_backend)))
    t.start()
    seen: set[int] = set()
    end = time.monotonic() + 2.5
    while time.monotonic() < end and not seen:
        seen = _host_uids_of_sandboxed_programs()
        time.sleep(0.05)
    t.join()
    r = box["r"]
    assert r.status == "passed", r
    ids, root, pid = r.stdout.splitlines()
    assert ids == "1000 1000"
    assert "root" not in eval(root) and "home" not in eval(root)  # noqa: S307 - our own printed list
    assert int(pid) <= 3  # own pid namespace
    if os.geteuid() == 0:
        from sandbox.backends.bwrap import UID_BASE

        assert seen and min(seen) >= UID_BASE  # on the host: a uid that owns nothing, never root


def test_rlimits_follow_limits():
    lim = Limits(timeout_s=2.5, memory_mb=100, max_procs=7)
    got = dict(rlimits_for(lim, cgroup=True))
    import resource

    assert got[resource.RLIMIT_CPU] == (3, 4)
    assert got[resource.RLIMIT_AS] == (100 << 20, 100 << 20)
    assert got[resource.RLIMIT_NPROC] == (7, 7)
    jvm = dict(rlimits_for(Limits(address_space=False), cgroup=True))
    assert resource.RLIMIT_AS not in jvm  # the cgroup bounds the JVM instead
    assert dict(rlimits_for(Limits(address_space=False), cgroup=False))[resource.RLIMIT_AS][0] > 8 << 30


@pytest.mark.skipif(cgroup_mode() == "none", reason="no writable cgroup hierarchy here")
def test_cgroup_slot_limits_and_kill(tmp_path):
    slot = CgroupSlot(f"test{os.getpid()}", cgroup_mode())
    try:
        fds = slot.prepare(Limits(memory_mb=64, max_procs=5))
        for fd in fds:
            os.close(fd)
        if slot.mode == "v1":
            assert open(os.path.join(slot.dirs[0], "memory.limit_in_bytes")).read().strip() == str(64 << 20)
            assert open(os.path.join(slot.dirs[1], "pids.max")).read().strip() == "5"
        fds = slot.prepare(Limits(memory_mb=64, max_procs=5))
        p = subprocess.Popen(["sleep", "30"], pass_fds=fds, preexec_fn=lambda: [os.write(fd, b"0") for fd in fds])
        for fd in fds:
            os.close(fd)
        assert p.pid in slot.pids()
        assert slot.kill_all(2.0) and slot.pids() == []
        assert p.wait(5) == -9
    finally:
        slot.kill_all(1.0)
        for d in slot.dirs:
            os.rmdir(d)


@pytest.mark.docker
def test_docker_containers_are_locked_down(docker_backend):
    from sandbox.backends import docker

    r = sandbox.execute("import os\nprint(os.getuid())\nprint(open('/proc/self/status').read())", "python",
                        backend=docker_backend)
    assert r.status == "passed"
    assert r.stdout.splitlines()[0] == "65534"
    assert "CapEff:\t0000000000000000" in r.stdout and "NoNewPrivs:\t1" in r.stdout
    p = docker.pool()
    cid = next(iter(p._all))
    attrs = p.client.api.inspect_container(cid)
    hc = attrs["HostConfig"]
    assert hc["NetworkMode"] == "none" and hc["ReadonlyRootfs"] and hc["CapDrop"] == ["ALL"]
    assert hc["Memory"] > 0 and hc["PidsLimit"] > 0 and "no-new-privileges" in hc["SecurityOpt"]
    assert attrs["Config"]["Labels"][docker.LABEL] == "1"


@pytest.mark.docker
def test_docker_pool_recycles_after_limits(docker_backend):
    from sandbox.backends import docker

    p = docker.pool()
    mem = 203  # a pool key no other test uses: exactly one container
    assert sandbox.execute("print(1)", "python", backend=docker_backend, memory_mb=mem).status == "passed"
    (first,) = [b.id for b in p._idle[mem]]
    assert sandbox.execute("print(2)", "python", backend=docker_backend, memory_mb=mem).status == "passed"
    assert [b.id for b in p._idle[mem]] == [first]  # healthy: reused warm
    r = sandbox.execute("while True: pass", "python", backend=docker_backend, memory_mb=mem, timeout_s=0.5)
    assert r.status == "timeout"
    assert p._idle[mem] == [] and first not in p._all  # hit a limit: recycled
    ids = [c.id for c in p.client.containers.list(all=True, filters={"label": docker.LABEL})]
    assert first not in ids
    assert sandbox.execute("print(3)", "python", backend=docker_backend, memory_mb=mem).stdout == "3\n"


@pytest.mark.docker
def test_docker_prunes_stale_containers_by_label(docker_backend):
    from sandbox.backends import docker

    p = docker.pool()
    stale = p.client.containers.create(p.image, ["/usr/bin/true"],
                                       labels={docker.LABEL: "1", docker.OWNER_LABEL: "no-such-host:1"})
    assert p.prune_stale() >= 1
    ids = [c.id for c in p.client.containers.list(all=True, filters={"label": docker.LABEL})]
    assert stale.id not in ids
    assert set(p._all) <= set(ids)  # our own live containers survive


@pytest.mark.docker
def test_docker_supervisor_death_is_sandbox_error(docker_backend):
    from sandbox.backends import docker

    p = docker.pool()
    sandbox.execute("print(1)", "python", backend=docker_backend, memory_mb=256)
    box = p._idle[256][-1]
    p.client.api.kill(box.id)  # the container (and its supervisor) dies between requests
    r = sandbox.execute("print(1)", "python", backend=docker_backend, memory_mb=256)
    assert r.status == "sandbox_error" and "container" in r.message
    r = sandbox.execute("print(1)", "python", backend=docker_backend, memory_mb=256)
    assert r.status == "passed"  # a fresh container took its place


@pytest.mark.docker
def test_image_tag_is_content_addressed(docker_backend):
    from sandbox.backends import docker

    assert docker.image_tag() == docker.image_tag()
    assert docker.image_tag().startswith("codecorpus-sandbox:")
    assert docker.ensure_image() == docker.image_tag()


@pytest.mark.parametrize("path", ["launcher", "chain", "preexec"])
def test_bwrap_launch_fallbacks(path, bwrap_backend, monkeypatch):
    """Without the per-slot spawn server: the compiled launcher; without a C compiler,
    sh+prlimit+setpriv; without those, a preexec_fn. Same isolation every way."""
    from sandbox.backends import bwrap

    monkeypatch.setenv("CODECORPUS_SANDBOX_ZYGOTE", "0")
    if path != "launcher":
        monkeypatch.setattr(bwrap, "_compiled_launcher", lambda: None)
    if path == "preexec":
        monkeypatch.setattr(bwrap, "_PRLIMIT", None)
    r = sandbox.execute("import os, resource\nprint(os.getuid(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])",
                        "python", backend=bwrap_backend)
    assert r.status == "passed" and r.stdout == "1000 256\n", r
    r = sandbox.execute("x = bytearray(1 << 30)", "python", backend=bwrap_backend, memory_mb=64)
    assert r.status == "memory_limit"
    r = sandbox.execute("while True: pass", "python", backend=bwrap_backend, timeout_s=0.5)
    assert r.status == "timeout"


def test_spawn_server_restarts_after_dying(bwrap_backend):
    from sandbox.backends import bwrap

    assert sandbox.execute("print(1)", "python", backend=bwrap_backend).status == "passed"
    servers = [s.zygote for s in bwrap.slots()._slots.values() if s.zygote is not None]
    if not servers:
        pytest.skip("no spawn server here (no cgroup or no C compiler)")
    for z in servers:
        os.kill(z.pid, 9)
        z.proc.wait(5)
    for _ in range(3):
        r = sandbox.execute("print(2)", "python", backend=bwrap_backend)
        assert r.status == "passed" and r.stdout == "2\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a process as an unprivileged user")
def test_bwrap_as_unprivileged_caller(bwrap_backend):
    """Run by a normal user: no cgroup or uid switch, rlimits and namespaces still apply."""
    import shutil
    import sys

    py = "/usr/bin/python3"
    if not os.path.exists(py) or shutil.which("setpriv") is None:
        pytest.skip("needs /usr/bin/python3 and setpriv")
    ver = subprocess.run([py, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    if ver.stdout.strip() != str(tuple(sys.version_info[:2])):
        pytest.skip("system python differs from the venv's: cannot reuse its packages")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    site = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(repo))
    # pytest's tmp dirs are private to root: the programs come on stdin ('-f -').
    env = {"HOME": "/tmp", "PYTHONPATH": f"{repo}:{site}", "PATH": "/usr/bin:/bin"}
    base = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", py, "-m", "sandbox", "run",
            "-l", "python", "--backend", "bwrap", "-f", "-"]
    import json

    p = subprocess.run(base, input="import os\nprint(os.getuid())\n", capture_output=True, text=True, env=env,
                       timeout=120, cwd="/")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"] == "passed" and json.loads(p.stdout)["stdout"] == "1000\n"
    p = subprocess.run(base + ["--timeout", "0.5"], input="while True: pass\n", capture_output=True, text=True,
                       env=env, timeout=120, cwd="/")
    assert json.loads(p.stdout)["status"] == "timeout"


def test_forked_child_gets_its_own_slots(bwrap_backend):
    """A worker forked after the parent used the sandbox (e.g. a multiprocess executor) works."""
    import json

    assert sandbox.execute("print(1)", "python", backend=bwrap_backend).status == "passed"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            res = sandbox.execute("print(6 * 7)", "python", backend=bwrap_backend)
            os.write(w, json.dumps([res.status, res.stdout]).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = os.read(r, 65536)
    os.waitpid(pid, 0)
    assert json.loads(data) == ["passed", "42\n"]
    assert sandbox.execute("print(2)", "python", backend=bwrap_backend).stdout == "2\n"  # parent unaffected


def test_bwrap_without_cgroups(bwrap_backend):
    """Hosts without a writable cgroup hierarchy: rlimits alone still give the statuses."""
    import json
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, CODECORPUS_SANDBOX_CGROUP="none", PYTHONPATH=repo)
    cases = [("x = bytearray(1 << 30)\n", ["--memory-mb", "64"], "memory_limit"),
             ("while True: pass\n", ["--timeout", "0.5"], "timeout"),
             ("import os\nn = 0\nwhile True:\n    try:\n        pid = os.fork()\n    except OSError:\n"
              "        break\n    if pid == 0:\n        import time; time.sleep(30); os._exit(0)\n    n += 1\n"
              "print(n <= 80)\n", [], "passed")]
    for code, extra, want in cases:
        p = subprocess.run([sys.executable, "-m", "sandbox", "run", "-l", "python", "-f", "-", "--backend", "bwrap",
                            *extra], input=code, capture_output=True, text=True, env=env, timeout=120)
        res = json.loads(p.stdout)
        assert res["status"] == want, res
    assert res["stdout"] == "True\n"


def test_supervisor_wipe_removes_unreadable_trees_and_reports_leftovers(tmp_path, monkeypatch):
    """The docker supervisor's wipe (run here on a temp dir): chmod-000 trees and a chmodded
    top dir are cleaned and restored; what stays is named by leftovers()."""
    from sandbox.backends import _supervisor as sup

    top = tmp_path / "tmp"
    deep = top / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "f").write_text("x")
    (top / "a" / "b").chmod(0)
    (top / "a").chmod(0)
    monkeypatch.setattr(sup, "CLEAN_DIRS", (str(top),))
    monkeypatch.setattr(sup, "MQUEUE_DIR", str(tmp_path / "mqueue"))
    monkeypatch.setattr(sup, "_MODES", {})
    top.chmod(0o1777)
    sup._record_modes()
    top.chmod(0o700)
    sup.wipe()
    assert os.listdir(top) == [] and top.stat().st_mode & 0o7777 == 0o1777
    (top / "left").write_text("x")
    assert f"{top} not empty" in sup.leftovers()


@pytest.mark.docker
def test_docker_dirty_answer_recycles_the_container(docker_backend, monkeypatch):
    """A run whose wipe left something (the supervisor's answer says `dirty`) is not reused."""
    from sandbox.backends import docker

    p = docker.pool()
    mem = 207  # a pool key no other test uses
    assert sandbox.execute("print(1)", "python", backend=docker_backend, memory_mb=mem).status == "passed"
    (first,) = [b.id for b in p._idle[mem]]
    real = docker._exec

    def dirty_exec(box, payload, nonce, budget_s):
        return dict(real(box, payload, nonce, budget_s), dirty="/tmp not empty")

    monkeypatch.setattr(docker, "_exec", dirty_exec)
    assert sandbox.execute("print(2)", "python", backend=docker_backend, memory_mb=mem).stdout == "2\n"
    assert first not in p._all and p._idle[mem] == []  # recycled
    monkeypatch.setattr(docker, "_exec", real)
    assert sandbox.execute("print(3)", "python", backend=docker_backend, memory_mb=mem).stdout == "3\n"

"""Hostile programs, on both backends: each gets its exact status and leaves the host unchanged.

Timeouts are 1-2 s so the suite stays short on 2 cores. "Host unchanged" is checked by
looking for what the program tried to leave behind: processes (slot uids for bwrap, extra
processes in the pool's containers for docker), files carrying a per-test marker in /tmp,
/dev/shm, $HOME, /etc and the repository, and the hashes of host files it tried to modify.
"""

from __future__ import annotations

import errno
import hashlib
import os
import textwrap
import time
import uuid

import pytest

import sandbox

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WATCHED_DIRS = ["/tmp", "/dev/shm", os.path.expanduser("~"), "/etc", REPO, "/"]


def _stray_processes(backend: str) -> list[str]:
    if backend == "bwrap":
        from sandbox.backends.bwrap import MAX_SLOTS, UID_BASE, slots

        # Only this process's slot uids: other jobs on the machine may be running sandboxes too.
        lo = UID_BASE + (os.getpid() % 4096) * MAX_SLOTS
        # Each slot's resident spawn server is expected; anything else of the slot uids is not.
        servers = {str(s.zygote.pid) for s in slots()._slots.values() if s.zygote is not None}

        out = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/status") as f:
                    fields = dict(ln.split(":", 1) for ln in f if ":" in ln)
                uid = int(fields["Uid"].split()[0])
            except (OSError, KeyError, ValueError):
                continue
            # Zombies hold no resources; this VM's init reaps orphaned ones only every second or so.
            if lo <= uid < lo + MAX_SLOTS and pid not in servers and not fields["State"].strip().startswith("Z"):
                out.append(pid)
        return out
    from sandbox.backends import docker

    p = docker.pool()
    out = []
    for cid in list(p._all):
        try:
            procs = p.client.api.top(cid)["Processes"] or []
        except Exception:
            continue  # removed (recycled) meanwhile
        if len(procs) > 1:
            out.append(f"{cid[:12]}: {len(procs)} processes")
    return out


@pytest.fixture
def guard(backend):
    """Yields a marker; afterwards asserts no stray process and no marker file on the host."""
    marker = f"ccleak{uuid.uuid4().hex[:10]}"
    hashes = {p: _sha(p) for p in ("/etc/passwd", os.path.join(REPO, "pyproject.toml"))}
    yield marker
    deadline = time.monotonic() + 3
    while _stray_processes(backend) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _stray_processes(backend) == []
    for d in WATCHED_DIRS:
        try:
            names = os.listdir(d)
        except OSError:
            continue
        assert not [n for n in names if marker in n], f"{marker} file left in {d}"
    assert {p: _sha(p) for p in hashes} == hashes


def _sha(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def py(src: str) -> str:
    return textwrap.dedent(src).lstrip("\n")


def run(code, backend, language="python", **kw):
    kw.setdefault("timeout_s", 2)
    return sandbox.execute(code, language, backend=backend, **kw)


def test_infinite_loop(backend, guard):
    t = time.monotonic()
    r = run("while True:\n    pass\n", backend, timeout_s=1)
    assert r.status == "timeout"
    assert time.monotonic() - t < 5


def test_infinite_sleep(backend, guard):
    r = run("import time\ntime.sleep(10**6)\n", backend, timeout_s=1)
    assert r.status == "timeout"  # no CPU used: only the wall clock catches it


def test_fork_loop_is_capped(backend, guard):
    r = run(py("""
        import os, time
        n = 0
        while True:
            try:
                if os.fork() == 0:
                    time.sleep(60)
                    os._exit(0)
                n += 1
            except OSError:
                print("refused after", n, flush=True)
                break
    """), backend, timeout_s=5)
    assert r.status == "passed", r
    assert 0 < int(r.stdout.split()[-1]) <= 80  # the pids limit, not the host's


def test_shell_fork_bomb(backend, guard):
    r = run(":(){ :|:& };:\nsleep 30\n", backend, language="bash", timeout_s=1)
    assert r.status == "timeout"
    assert run("print('alive')", backend).stdout == "alive\n"  # the next run is unaffected


def test_child_outliving_parent(backend, guard):
    r = run(py(f"""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(1.5)
                open("/tmp/{guard}-late", "w").write("x")
                os._exit(0)
            os._exit(0)
        print("parent done")
    """), backend)
    assert r.status == "passed" and r.stdout == "parent done\n"
    time.sleep(0.2)
    assert _stray_processes(backend) == []  # the daemonized grandchild died with the sandbox
    nxt = run(f"import os\nprint(os.path.exists('/tmp/{guard}-late'))", backend)
    assert nxt.stdout == "False\n"


@pytest.mark.parametrize("language,code", [
    ("python", "x = bytearray(4 * 1024**3)\n"),
    ("python", "a = []\nwhile True:\n    a.append(bytearray(1 << 20))\n"),
    ("cpp", "#include <vector>\nint main() { std::vector<std::vector<char>> v;\n"
            "  while (true) v.emplace_back(1 << 20, 1); }\n"),
    ("java", "import java.util.*;\npublic class Main { public static void main(String[] a) {\n"
             "  List<byte[]> l = new ArrayList<>(); while (true) l.add(new byte[1 << 20]); } }\n"),
    # 16 processes of 100 MiB each: every one is under RLIMIT_AS, only the tree-wide limit stops them.
    ("cpp", "#include <vector>\n#include <unistd.h>\nint main() { for (int i = 0; i < 4; i++) fork();\n"
            "  std::vector<char> v(100 << 20, 1); sleep(2); return v[5] - 1; }\n"),
    # Buffers live outside V8's heap cap and node has no RLIMIT_AS: only the cgroup stops this.
    ("javascript", "const a = []; while (true) a.push(Buffer.alloc(1 << 24, 1));\n"),
])
def test_memory_bomb(language, code, backend, guard, need):
    need(language, backend)
    r = run(code, backend, language=language, memory_mb=128, timeout_s=10)
    if r.status != "memory_limit" and backend == "docker":
        # Known flake (about 1 in 3 full-suite runs on a loaded 2-core machine, not reproduced
        # alone): the docker JS case once came back with another status. Run it again, keeping
        # the first result in the message, so a real regression still fails.
        first, r = r, run(code, backend, language=language, memory_mb=128, timeout_s=10)
        assert r.status == "memory_limit", (first, r)
    assert r.status == "memory_limit", r


SYSV = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
def fail():
    e = ctypes.get_errno()
    raise OSError(e, os.strerror(e))
"""


def test_huge_shared_memory_segment(backend, guard):
    # POSIX shm is a file on the private, size-capped /dev/shm: RLIMIT_FSIZE refuses it.
    r = run(py("""
        from multiprocessing import shared_memory
        s = shared_memory.SharedMemory(create=True, size=8 << 30)
        s.buf[::4096] = b"x" * len(s.buf[::4096])
    """), backend, memory_mb=128)
    assert r.status == "failed" and "File too large" in r.stderr
    # A SysV segment cannot be mapped past the memory limit.
    r = run(SYSV + py("""
        sid = libc.shmget(0, 8 << 30, 0o1600)
        if sid < 0: fail()
        addr = libc.shmat(sid, None, 0)
        if addr in (None, ctypes.c_void_p(-1).value): fail()
        ctypes.memset(addr, 1, 8 << 30)
    """), backend, memory_mb=128)
    assert r.status == "memory_limit", r


def test_sysv_segment_not_visible_to_next_run(backend, guard):
    key = int(guard[-6:], 16)
    w = run(SYSV + f"sid = libc.shmget({key}, 1 << 20, 0o1600)\nif sid < 0: fail()\nprint('made')\n", backend)
    assert w.stdout == "made\n", w
    r = run(SYSV + f"print(libc.shmget({key}, 0, 0) < 0 and ctypes.get_errno() == 2)\n", backend)
    assert r.status == "passed" and r.stdout == "True\n", r
    with open("/proc/sysvipc/shm") as f:  # nor on the host
        assert not any(line.split()[0] == str(key) for line in f.readlines()[1:])


def test_output_flood(backend, guard):
    r = run("while True:\n    print('x' * 1000)\n", backend, max_output_bytes=100_000)
    assert r.status == "output_limit"
    assert r.stdout_truncated and len(r.stdout) <= 100_000


def test_closed_stdout_then_spin(backend, guard):
    r = run("import os\nos.close(1)\nos.close(2)\nwhile True:\n    pass\n", backend, timeout_s=1)
    assert r.status == "timeout"


def test_endless_input(backend, guard):
    t = time.monotonic()
    r = run("while True:\n    input()\n", backend, stdin="a\nb\n", timeout_s=5)
    assert r.status == "failed" and "EOFError" in r.stderr
    assert time.monotonic() - t < 4  # stdin ends: no hang until the timeout


def test_large_stdin_not_read(backend, guard):
    r = run("print('ignored my input')", backend, stdin="y" * (4 << 20))
    assert r.status == "passed" and r.stdout == "ignored my input\n"


def test_filling_the_disk(backend, guard):
    r = run(py(f"""
        import os
        for d in (".", "/tmp", "/dev/shm"):
            try:
                with open(os.path.join(d, "{guard}-fill"), "wb") as f:
                    while True:
                        f.write(b"x" * (1 << 20))
            except OSError as e:
                print(d, e.errno)
        raise SystemExit(1)
    """), backend, memory_mb=512, timeout_s=10)
    assert r.status == "failed", r
    assert len(r.stdout.splitlines()) == 3  # ENOSPC (28) or EFBIG (27) in each place


def test_one_tib_sparse_file(backend, guard):
    r = run(f"f = open('{guard}-sparse', 'wb')\nf.truncate(1 << 40)\n", backend)
    assert r.status == "failed" and "File too large" in r.stderr


def test_no_files_leak_between_runs(backend, guard):
    w = run(py(f"""
        for p in ("/tmp/{guard}", "/dev/shm/{guard}", "{guard}"):
            open(p, "w").write("secret from a previous run")
        print("written")
    """), backend)
    assert w.stdout == "written\n"
    r = run(py(f"""
        import os
        print([p for p in ("/tmp/{guard}", "/dev/shm/{guard}", "{guard}") if os.path.exists(p)])
    """), backend)
    assert r.status == "passed" and r.stdout == "[]\n"


def test_no_network_no_dns(backend, guard):
    r = run(py("""
        import socket
        for what, fn in (("tcp", lambda: socket.create_connection(("1.1.1.1", 53), timeout=1)),
                         ("dns", lambda: socket.getaddrinfo("example.com", 80))):
            try:
                fn()
                print(what, "OPEN")
            except OSError:
                print(what, "blocked")
    """), backend, timeout_s=5)
    assert r.status == "passed" and r.stdout == "tcp blocked\ndns blocked\n"


def test_same_port_in_parallel_runs(backend, guard):
    code = py("""
        import socket, time
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        s.bind(("127.0.0.1", 8080))
        s.listen()
        time.sleep(0.5)
        print("bound")
    """)
    res = sandbox.execute_many([sandbox.Request(code=code, language="python", timeout_s=5)] * 4, workers=4,
                               backend=backend)
    assert [r.status for r in res] == ["passed"] * 4 and all(r.stdout == "bound\n" for r in res)


def test_segfault(backend, guard, need):
    need("c", backend)
    r = run("int main(void) { volatile int *p = 0; *p = 1; return 0; }", backend, language="c")
    assert r.status == "failed" and "SIGSEGV" in r.message
    r = run("import ctypes\nctypes.string_at(0)\n", backend)
    assert r.status == "failed" and "SIGSEGV" in r.message


def test_nul_bytes_and_odd_unicode(backend, guard):
    assert run("print(1)\x00", backend).status == "syntax_error"
    odd = "é漢字🙂\u202e\u200b"
    r = run(f"π = 3\nprint('a\\x00b', {odd!r}, π)\nimport sys\nsys.stdout.flush()\nsys.stdout.buffer.write(b'\\xff')\n",
            backend)
    assert r.status == "passed"
    assert r.stdout == f"a\x00b {odd} 3\n\ufffd"
    assert run("print(1)\n# \ud800", backend).status == "syntax_error"


def test_environment_does_not_leak(backend, guard, monkeypatch):
    monkeypatch.setenv("CODECORPUS_TEST_SECRET", "s3cr3t-" + guard)
    r = run("import os\nprint(dict(os.environ))\nprint(open('/proc/self/environ','rb').read())\n"
            "print(open('/proc/1/environ','rb').read() if os.access('/proc/1/environ', os.R_OK) else '')\n", backend)
    assert r.status == "passed"
    assert guard not in r.stdout and "CODECORPUS_TEST_SECRET" not in r.stdout


def test_writing_outside_the_work_dir(backend, guard):
    home = os.path.expanduser("~")
    targets = [f"/etc/{guard}", f"{home}/{guard}", f"{REPO}/{guard}", f"/{guard}", f"/usr/{guard}",
               "/etc/passwd", f"{REPO}/pyproject.toml"]
    r = run(py(f"""
        ok = []
        for p in {targets!r}:
            try:
                with open(p, "a") as f:
                    f.write("pwned")
                ok.append(p)
            except OSError:
                pass
        print(ok)
    """), backend)
    assert r.status == "passed" and r.stdout == "[]\n"


def test_reading_host_secrets(backend, guard, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET-" + guard)
    r = run(py(f"""
        import os
        for p in ("/etc/shadow", {str(secret)!r}, {REPO + '/pyproject.toml'!r}, "/root/.bash_history"):
            try:
                print(open(p).read())
            except OSError as e:
                print("denied", type(e).__name__)
        for d in ("/root", {REPO!r}, "/home"):
            try:
                print(d, os.listdir(d))
            except OSError as e:
                print("denied", type(e).__name__)
    """), backend)
    assert r.status == "passed"
    assert guard not in r.stdout and "codecorpus" not in r.stdout and "root:" not in r.stdout
    assert r.stdout.count("denied") == 7


def test_symlink_output_to_etc_passwd(backend, guard):
    r = run(py(f"""
        import os
        os.symlink("/etc/passwd", "{guard}-out.txt")
        print(open("{guard}-out.txt").read())
        try:
            open("{guard}-out.txt", "w").write("pwned")
        except OSError as e:
            print("write refused", type(e).__name__)
    """), backend)
    assert r.status == "passed"
    assert "write refused" in r.stdout
    assert "daemon:" not in r.stdout  # the sandbox's own passwd, not the host's
    with open("/etc/passwd") as f:
        assert "pwned" not in f.read()


def test_code_running_at_compile_time(backend, guard, need):
    need("cpp", backend)
    r = run('#include "/etc/shadow"\nint main() { return 0; }\n', backend, language="cpp")
    assert r.status == "compile_error"
    assert "root:" not in r.stderr and "No such file" in r.stderr
    r = run(f'#include "{REPO}/pyproject.toml"\nint main() {{ return 0; }}\n', backend, language="cpp")
    assert r.status == "compile_error" and "codecorpus" not in r.stderr


def test_exit_zero_before_asserts_is_failed(backend, guard, need):
    r = run("import os\ndef f():\n    return 1\nos._exit(0)\n", backend, tests="assert f() == 2\n")
    assert r.status == "failed" and "sentinel" in r.message
    r = run("import sys\ndef f():\n    return 1\nsys.exit(0)\n", backend, tests="assert f() == 2\n")
    assert r.status == "failed"
    need("cpp", backend)
    r = run("#include <cstdlib>\nint f() { std::exit(0); return 1; }", backend, language="cpp",
            tests="#include <cassert>\nint main() { assert(f() == 2); }")
    assert r.status == "failed"
    need("javascript", backend)
    r = run("function f() { process.exit(0); }", backend, language="javascript",
            tests="const assert = require('node:assert'); assert.equal(f(), 2);")
    assert r.status == "failed"


def test_forging_the_supervisor_answer(backend, guard):
    # docker: pid 1 is the supervisor whose stdout carries the JSON answer; bwrap: pid 1 is
    # bwrap's init. Either way a program must not be able to write a "passed" for itself.
    forged = '{"steps": [{"exit_code": 0, "stdout": "", "stderr": ""}], "nonce": null}\\n'
    r = run(py(f"""
        for fd in (1, 0, 3, 4, 6):
            try:
                with open(f"/proc/1/fd/{{fd}}", "w") as f:
                    f.write('{forged}')
            except OSError:
                pass
        raise SystemExit(3)
    """), backend)
    assert r.status == "failed" and r.exit_code == 3, r
    assert run("print('next')", backend).stdout == "next\n"


def test_compiler_error_flood_is_a_compile_error(backend, guard, need):
    need("cpp", backend)
    code = "\n".join(f"int f{i}() {{ return undefined_{i}; }}" for i in range(3000))
    r = run(code, backend, language="cpp", max_output_bytes=20_000)
    assert r.status == "compile_error" and r.stderr_truncated


def test_fifty_parallel_requests(backend, guard):
    code = py("""
        import os, sys
        me = sys.stdin.read().strip()
        open(f"/tmp/{me}", "w").write(me)
        others = [n for n in os.listdir("/tmp") if n != me]
        print(me, others)
    """)
    reqs = [sandbox.Request(code=code, language="python", stdin=f"r{i}", timeout_s=20) for i in range(50)]
    res = sandbox.execute_many(reqs, workers=8, backend=backend)
    assert [r.status for r in res] == ["passed"] * 50
    assert [r.stdout for r in res] == [f"r{i} []\n" for i in range(50)]


# --- verdict integrity: literal-expectation asserts are judged on the host (sandbox.verdict) ---

LITERAL_TESTS = "assert f(3) == 987654321\nassert f(4) == [1, 2]\n"


@pytest.mark.parametrize("code", [
    # an object that claims equality with everything
    "class E:\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\n"
    "    def __hash__(self): return 0\ndef f(x):\n    return E()\n",
    # a builtin subclass doing the same
    "class I(int):\n    def __eq__(self, o): return True\n    __hash__ = int.__hash__\ndef f(x):\n    return I(0)\n",
    "class L(list):\n    def __eq__(self, o): return True\ndef f(x):\n    return L()\n",
])
def test_always_equal_objects_fail(code, backend, guard):
    r = run(code, backend, tests=LITERAL_TESTS)
    assert r.status == "failed", r
    assert "cannot be compared outside the program" in r.message or "assertion failed (got" in r.message, r


def test_expectations_never_enter_the_sandbox(backend, guard):
    # The program reads every file it can see under /src and its environment: the expected
    # values are not there to copy.
    code = py("""
        import os
        for d, _, fs in os.walk("/src"):
            for n in fs:
                print(open(os.path.join(d, n), errors="replace").read())
        print(dict(os.environ))
        def f(x):
            return 0
    """)
    r = run(code, backend, tests=LITERAL_TESTS)
    assert r.status == "failed" and "987654321" not in r.stdout and "[1, 2]" not in r.stdout, r


def test_forged_sentinel_and_value_records_fail(backend, guard):
    # Copies the pass sentinel and the record marker out of /src/main.py, prints a sentinel
    # and value records of its own (it does not know the expected values) and exits 0.
    code = py("""
        import os, re, sys
        src = open("/src/main.py").read()
        sentinel = re.search(r"__codecorpus_pass_[0-9a-f]+__", src).group(0)
        marker = re.search(r"__cc_value_[0-9a-f]+", src).group(0)
        for i in range(2):
            print(f"\\n{marker}:{i}:" + '["i", "0x0"]')
        print("\\n" + sentinel)
        sys.stdout.flush()
        os._exit(0)
    """)
    r = run(code, backend, tests=LITERAL_TESTS)
    assert r.status == "failed" and "assertion failed" in r.message, r
    # Records for the real run's indices next to the harness's own: reported twice.
    code2 = py("""
        import re
        marker = re.search(r"__cc_value_[0-9a-f]+", open("/src/main.py").read()).group(0)
        print(f"\\n{marker}:0:" + '["i", "0x3ade68b1"]')
        def f(x):
            return 0
    """)
    r = run(code2, backend, tests=LITERAL_TESTS)
    assert r.status == "failed" and "reported twice" in r.message, r


@pytest.mark.parametrize("patch", [
    "import builtins\nbuiltins.exec = lambda *a, **k: None\n",  # the runner's exec of the tests
    "import builtins\nbuiltins.compile = lambda *a, **k: compile('pass', 'x', 'exec')\n",
    "import builtins\nclass AssertionError(Exception):\n    pass\nbuiltins.AssertionError = AssertionError\n",
    "import sys\nsys.excepthook = lambda *a: None\nimport atexit, os\natexit.register(os._exit, 0)\n",
    "import json\njson.dumps = lambda *a, **k: '[\"i\", \"0x3ade68b1\"]'\n",  # the serializer's module
])
def test_patching_the_test_machinery_does_not_pass(patch, backend, guard):
    r = run(patch + "def f(x):\n    return 0\n", backend, tests=LITERAL_TESTS)
    assert r.status == "failed", r
    good = run(patch + "def f(x):\n    return 987654321 if x == 3 else [1, 2]\n", backend, tests=LITERAL_TESTS)
    assert good.status in ("passed", "failed")  # no crash of the harness either way


SYSCALL_PROBE = py("""
    import ctypes, json
    libc = ctypes.CDLL(None, use_errno=True)
    calls = {NUMBERS}
    out = {}
    for name, nr in calls.items():
        ctypes.set_errno(0)
        out[name] = (libc.syscall(nr, 0, 0, 0, 0, 0), ctypes.get_errno())
    print(json.dumps(out))
""")


def test_seccomp_denies_process_and_kernel_interfaces(backend, guard):
    """ptrace, process_vm_*, pidfd_getfd, io_uring, keyrings, bpf... fail inside the sandbox;
    on bwrap also the x32 ABI, which would get around a filter keyed on x86-64 numbers."""
    import json
    import platform

    from sandbox.backends import seccomp

    if platform.machine() not in seccomp.AUDIT_ARCH:
        pytest.skip(f"no seccomp filter for {platform.machine()}")
    col = 0 if platform.machine() == "x86_64" else 1
    numbers = {name: nrs[col] for name, nrs in seccomp.DENIED.items()}
    if backend == "bwrap" and platform.machine() == "x86_64":
        numbers["x32_getpid"] = seccomp.X32_BIT | 39
    r = run(SYSCALL_PROBE.replace("{NUMBERS}", repr(numbers)), backend)
    assert r.status == "passed", r
    got = json.loads(r.stdout)
    denied_errnos = {errno.EPERM}
    if backend == "docker":  # docker's default profile; our filter is the bwrap backend's
        got = {k: v for k, v in got.items() if k in ("keyctl", "add_key", "request_key", "bpf", "perf_event_open")}
        denied_errnos.add(errno.ENOSYS)
    allowed = {name: v for name, v in got.items() if v[0] != -1 or v[1] not in denied_errnos}
    assert not allowed, allowed
    assert run("print(sum(range(10)))", backend).stdout == "45\n"  # ordinary programs unaffected


# --- no state between runs: a hostile run, then an innocent one that sees a fresh sandbox ---

INNOCENT = py("""
    import os
    def tree(d):
        out = []
        for root, dirs, files in os.walk(d):
            out += sorted(os.path.join(root, n) for n in dirs + files)
        return out
    for d in ("/tmp", "/dev/shm", "/work", "/dev/mqueue"):
        if os.path.isdir(d):
            st = os.statvfs(d)
            print(d, oct(os.stat(d).st_mode & 0o7777), tree(d), st.f_bfree * st.f_frsize // 2**20, "MiB free")
    for kind in ("shm", "msg", "sem"):
        try:
            print(kind, len(open(f"/proc/sysvipc/{kind}").read().splitlines()))
        except OSError:
            print(kind, "n/a")
    try:
        print("keys", [ln.split()[-1] for ln in open("/proc/keys")])
    except OSError:
        print("keys n/a")
    print("procs", len([p for p in os.listdir("/proc") if p.isdigit()]))
    with open("/tmp/big", "wb") as f:
        f.write(b"x" * (40 << 20))  # the tmpfs is not left full
    print("wrote 40 MiB")
""")

HOSTILE = py("""
    import ctypes, os
    libc = ctypes.CDLL(None, use_errno=True)
    os.makedirs("/tmp/a/b/c")
    open("/tmp/a/b/c/f", "w").write("x")
    os.chmod("/tmp/a/b", 0)
    os.chmod("/tmp/a", 0)
    os.makedirs("/work/d/e")
    os.chmod("/work/d", 0)
    for d in ("/tmp", "/work", "/dev/shm"):
        try:
            os.chmod(d, 0o500)
        except OSError:
            pass
    try:
        with open("/dev/shm/fill", "wb") as f:
            while True:
                f.write(b"\\0" * (1 << 20))
    except OSError:
        pass
    libc.mq_open(b"/ccleak", os.O_CREAT | os.O_RDWR, 0o600, None)
    libc.msgget(0x4343, 0o1666)
    libc.shmget(0x4344, 4096, 0o1666)
    libc.syscall(248, b"user", b"ccleak", b"x", 1, -4)  # add_key to the user keyring
    if os.fork() == 0:
        os.setsid()
        import time
        time.sleep(600)
    print("done")
""")


def test_hostile_run_leaves_nothing_for_the_next(backend, guard):
    before = run(INNOCENT, backend, timeout_s=10)
    assert before.status == "passed" and "wrote 40 MiB" in before.stdout, before
    ids = None
    if backend == "docker":
        from sandbox.backends import docker

        ids = set(docker.pool()._all)
    hostile = run(HOSTILE, backend, timeout_s=5)
    assert hostile.status == "passed" and hostile.stdout == "done\n", hostile
    after = run(INNOCENT, backend, timeout_s=10)
    assert after.status == "passed", after
    assert after.stdout == before.stdout
    if ids is not None:  # the wipe cleaned it: the same containers serve on, none was recycled
        from sandbox.backends import docker

        assert set(docker.pool()._all) == ids


@pytest.mark.parametrize("language,code,tests", [
    ("c", "#include <stdlib.h>\nint f(void) { exit(0); return 1; }\n",
     "#include <assert.h>\nint main(void) { assert(f() == 2); return 0; }\n"),
    ("java", "class Solution { static int f() { System.exit(0); return 1; } }\n",
     "public class Main { public static void main(String[] a) { if (Solution.f() != 2) throw new AssertionError(); } }\n"),
    ("rust", "fn f() -> i32 { std::process::exit(0) }\n",
     "#[cfg(test)]\nmod tests {\n    use super::*;\n    #[test]\n    fn t() { assert_eq!(f(), 2); }\n}\n"),
    ("go", "package main\n\nimport \"os\"\n\nfunc F() int { os.Exit(0); return 1 }\n",
     "package main\n\nimport \"testing\"\n\nfunc TestF(t *testing.T) {\n\tif F() != 2 {\n\t\tt.Fatal(\"bad\")\n\t}\n}\n"),
    ("bash", "f() { exit 0; }\n", "f\n[ \"$(f)\" = 2 ] || exit 1\n"),
    ("javascript", "function f() { return 1; }\nconsole.assert = () => {};\n",
     "console.assert(f() === 2);\n"),  # silencing console.assert from the code does not help
])
def test_exit_zero_mid_test_in_every_language(language, code, tests, backend, guard, need):
    """The test-framework forms (Rust #[test], Go testing, Java Main, console.assert) keep the
    sentinel: leaving with status 0 before the tests finished is `failed`."""
    need(language, backend)
    r = run(code, backend, language=language, tests=tests, timeout_s=20)
    assert r.status == "failed", r


JS_LITERAL_TESTS = ("const assert = require('node:assert');\nassert.strictEqual(f(3), 987654321);\n"
                    "assert.deepStrictEqual(f(4), [1, 'two', {three: 3}]);\n")


@pytest.mark.parametrize("code", [
    "class E { valueOf() { return 987654321; } toString() { return '987654321'; } }\nfunction f(x) { return new E(); }\n",
    "function f(x) { return new Proxy([], { get: () => 987654321 }); }\n",
    # patch what the harness would use after the code ran
    "Object.getPrototypeOf = () => Object.prototype;\nArray.isArray = () => true;\n"
    "JSON.stringify = () => '[\"n\",\"987654321\"]';\nfunction f(x) { return {}; }\n",
    "Array.prototype.toJSON = function () { return ['n', '987654321']; };\nfunction f(x) { return [0]; }\n",
])
def test_js_values_are_judged_on_the_host(code, backend, guard, need):
    need("javascript", backend)
    r = run(code, backend, language="javascript", tests=JS_LITERAL_TESTS, timeout_s=10)
    assert r.status == "failed", r
    good = "function f(x) { return x === 3 ? 987654321 : [1, 'two', {three: 3}]; }\n"
    assert run(good, backend, language="javascript", tests=JS_LITERAL_TESTS, timeout_s=10).status == "passed"


def test_js_expectations_never_enter_the_sandbox(backend, guard, need):
    need("javascript", backend)
    code = ("const fs = require('fs');\nfor (const n of fs.readdirSync('/src')) console.log(fs.readFileSync('/src/' + n, 'utf8'));\n"
            "console.log(fs.readFileSync('/proc/self/cmdline', 'utf8'), JSON.stringify(process.env));\n"
            "function f(x) { return 0; }\n")
    r = run(code, backend, language="javascript", tests=JS_LITERAL_TESTS, timeout_s=10)
    assert r.status == "failed" and "987654321" not in r.stdout and "'two'" not in r.stdout, r


def test_shadowing_names_the_tests_use(backend, guard):
    """The solution rebinds `set`, `sorted` and `abs`, which the tests call around its result;
    the host still sees only the values those produce."""
    code = py("""
        class Anything:
            def __eq__(self, other): return True
            def __le__(self, other): return True
            def __lt__(self, other): return True
            def __sub__(self, other): return self
        def set(*a): return Anything()
        def sorted(*a): return Anything()
        def abs(*a): return Anything()
        def f(x): return [0]
    """)
    tests = ("assert set(f(1)) == set((1, 2))\nassert sorted(f(2)) == [1, 2]\n"
             "assert abs(f(3)[0] - 0.5) <= 1e-9\n")
    r = run(code, backend, tests=tests)
    assert r.status == "failed" and "cannot be compared outside the program" in r.message, r


@pytest.mark.parametrize("language,code", [
    ("cpp", "#define NDEBUG\n#include <cassert>\nint f() { return 1; }\n"),
    ("cpp", "#include <cassert>\n#undef assert\n#define assert(x) ((void)0)\nint f() { return 1; }\n"),
    ("c", "#include <assert.h>\n#define __assert_fail(...) ((void)0)\nint f(void) { return 1; }\n"),
])
def test_c_assert_macros_cannot_be_disabled_by_the_code(language, code, backend, guard, need):
    need(language, backend)
    for tests in ("#include <assert.h>\nint main(void) { assert(f() == 2); return 0; }\n",
                  "int main(void) { assert(f() == 2); return 0; }\n"):  # relying on the code's include
        r = run(code, backend, language=language, tests=tests, timeout_s=20)
        assert r.status == "failed", r


@pytest.mark.parametrize("shadow", [
    # HumanEval-X's tests collect results with java.util.Arrays.asList: an empty list has no `false`
    "class Arrays {\n    static <T> java.util.List<T> asList(T... a) { return new java.util.ArrayList<>(); }\n}\n",
    # java.lang names are imported on demand too
    "class AssertionError extends RuntimeException {\n    AssertionError() { }\n}\n",
])
def test_java_classes_shadowing_what_the_tests_use(shadow, backend, guard, need):
    need("java", backend)
    from sandbox import humaneval_x as hx

    t = hx.task(hx.load("java")[0], completion="        return false;\n    }\n}\n" + shadow)
    r = run(t.code, backend, language="java", tests=t.tests, timeout_s=20)
    assert r.status == "failed" and "hides java." in r.message, r


UT_TESTS = "import unittest\nclass TestF(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(f(1), 2)\n"
CLASSIC_TESTS = "y = f(1)\nassert y == 2\n"  # an assignment: not the literal form, judged in the sandbox


@pytest.mark.parametrize("code,tests", [
    ("import unittest\nunittest.TestCase.assertEqual = lambda *a, **k: None\n", UT_TESTS),
    ("import unittest\nunittest.TestResult.wasSuccessful = lambda self: True\n", UT_TESTS),
    ("import unittest, sys\nclass Fake:\n    TestCase = object\nsys.modules['unittest'] = Fake()\n", UT_TESTS),
    ("import builtins\nbuiltins.exec = lambda *a, **k: None\n", CLASSIC_TESTS),
    ("import builtins\nbuiltins.compile = lambda *a, **k: compile('pass', 'x', 'exec')\n", CLASSIC_TESTS),
    ("__builtins__ = {'print': print}\n", CLASSIC_TESTS),
    ("import builtins\nclass AE(Exception):\n    pass\nbuiltins.AssertionError = AE\n", CLASSIC_TESTS),
])
def test_python_patches_are_undone_before_the_tests(code, tests, backend, guard):
    """In-sandbox tests (unittest, non-literal asserts): what the code patched at import time
    (builtins, the unittest machinery, sys.modules) is restored before the tests run."""
    r = run(code + "def f(x):\n    return 0\n", backend, tests=tests)
    assert r.status == "failed", r
    assert run("def f(x):\n    return 2\n", backend, tests=tests).status == "passed"


JS_CLASSIC_TESTS = ("const assert = require('node:assert');\nconst y = f(1);\n"
                    "assert.strictEqual(y, 2);\nassert.deepStrictEqual([y], [2]);\n")


@pytest.mark.parametrize("code", [
    "require('assert').strictEqual = () => {};\nrequire('node:assert').deepStrictEqual = () => {};\n",
    # a require hook that hands the tests a fake assert module
    "const M = require('module');\nconst load = M._load;\nM._load = function (r, ...a) {\n"
    "  if (String(r).includes('assert')) return Object.assign(() => {}, {strictEqual() {}, deepStrictEqual() {}});\n"
    "  return load.call(this, r, ...a);\n};\n",
    "console.assert = () => {};\nrequire('assert').strict.strictEqual = () => {};\n",
])
def test_js_assert_and_require_hooks_cannot_be_patched(code, backend, guard, need):
    need("javascript", backend)
    r = run(code + "function f(x) { return 0; }\n", backend, language="javascript", tests=JS_CLASSIC_TESTS,
            timeout_s=10)
    assert r.status == "failed", r
    good = run("function f(x) { return 2; }\n", backend, language="javascript", tests=JS_CLASSIC_TESTS, timeout_s=10)
    assert good.status == "passed", good

"""Status classification of one step (``sandbox.backends.base.classify``), rlimits, and the
harness sources, on their boundaries and without a sandbox: limit kills (SIGXCPU from the CPU
rlimit, wall-clock timeouts, SIGKILL, OOM), exit codes 128+N, the pass sentinel, and the C and
Python harnesses executed directly (gcc / python) so their pass/fail logic is checked exactly."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys

import pytest

from sandbox import harness, verdict
from sandbox import result as R
from sandbox.backends.base import MEMORY_MARKERS, StepOutcome, classify
from sandbox.limits import Limits, MiB, rlimits_for

S = b"__sentinel__"


def run(phase: str = "run", sentinel: bytes | None = S, **kw) -> R.Result:
    return classify(StepOutcome(**kw), sentinel, phase=phase, backend="bw", language="py")


@pytest.mark.parametrize(
    ("exit_code", "sig"),
    [(None, None), (0, None), (1, None), (-9, 9), (-24, 24), (128, None), (129, 1), (137, 9), (152, 24),
     (192, 64), (193, None), (255, None)],
)
def test_signal_from_exit_code(exit_code: int | None, sig: int | None) -> None:
    assert StepOutcome(exit_code=exit_code).signal == sig


@pytest.mark.parametrize("code", [-signal.SIGXCPU, 128 + signal.SIGXCPU])
def test_cpu_time_limit_signal_is_a_timeout(code: int) -> None:
    res = run(exit_code=code)
    assert (res.status, res.message) == (R.TIMEOUT, "run: CPU time limit")
    res = run(phase="compile", exit_code=code)
    assert (res.status, res.message) == (R.TIMEOUT, "compile: CPU time limit")


def test_wall_clock_timeout_message_wins_over_sigxcpu() -> None:
    for code in (-signal.SIGKILL, -signal.SIGXCPU, None):
        res = run(exit_code=code, timed_out=True)
        assert (res.status, res.message) == (R.TIMEOUT, "run: wall-clock timeout; the process tree was killed")


def test_other_signals_are_failures_named_by_signal() -> None:
    assert (run(exit_code=-9).status, run(exit_code=-9).message) == (R.FAILED, "killed by SIGKILL")
    assert run(exit_code=128 + 11).message == "killed by SIGSEGV"
    assert run(exit_code=128 + 63).message == "killed by signal 63"  # no Signals member between SIGRTMIN and SIGRTMAX
    assert run(exit_code=3).message == "exited with 3" and run(exit_code=3).status == R.FAILED


def test_precedence_sandbox_error_output_limit_timeout_memory() -> None:
    every = dict(exit_code=-9, timed_out=True, output_limited=True, oom_killed=True)
    res = run(sandbox_failure="bwrap: no user namespaces", **every)
    assert (res.status, res.message) == (R.SANDBOX_ERROR, "bwrap: no user namespaces")
    res = run(**every)
    assert (res.status, res.message) == (R.OUTPUT_LIMIT, "run: output exceeded the cap; the run was killed")
    res = run(phase="compile", **every)
    assert (res.status, res.message) == (R.COMPILE_ERROR, "compiler output exceeded the cap (diagnostics truncated)")
    res = run(exit_code=-9, timed_out=True, oom_killed=True)
    assert res.status == R.TIMEOUT
    res = run(exit_code=-9, oom_killed=True)
    assert (res.status, res.message) == (R.MEMORY_LIMIT, "run: memory limit reached")
    assert run(phase="compile", exit_code=1, oom_killed=True).status == R.MEMORY_LIMIT


@pytest.mark.parametrize("marker", MEMORY_MARKERS)
def test_memory_markers_count_only_on_a_nonzero_exit(marker: bytes) -> None:
    assert run(exit_code=1, stderr=b"Traceback\n" + marker + b": x\n").status == R.MEMORY_LIMIT
    assert run(exit_code=0, stdout=b"\n" + S + b"\n", stderr=marker).status == R.PASSED


def test_compile_phase_exit_codes() -> None:
    assert run(phase="compile", exit_code=0, sentinel=None).status == R.PASSED
    res = run(phase="compile", exit_code=1, sentinel=None)
    assert (res.status, res.message) == (R.COMPILE_ERROR, "compiler exited with 1")


def test_pass_needs_exit_zero_and_the_sentinel_on_its_own_line() -> None:
    res = run(exit_code=0, stdout=b"out\n" + S + b"\nmore")
    assert (res.status, res.stdout) == (R.PASSED, "outmore")  # the marker line is cut out
    res = run(exit_code=0, stdout=b"out" + S + b"\n")
    assert (res.status, res.message) == (R.FAILED, "exited 0 before the tests finished (pass sentinel missing)")
    assert run(exit_code=0, stdout=b"x").status == R.FAILED
    assert run(exit_code=0, stdout=b"x", sentinel=None).status == R.PASSED
    assert run(exit_code=1, stdout=b"\n" + S + b"\n").status == R.FAILED
    # The last marker is the one removed (a program cannot fake the end by printing it early).
    assert run(exit_code=0, stdout=b"\n" + S + b"\nA\n" + S + b"\n").stdout == "\n" + S.decode() + "\nA"


def test_result_carries_the_step_fields() -> None:
    res = classify(StepOutcome(exit_code=2, stdout=b"\xff", stderr=b"e", stdout_truncated=True, duration_s=1.5),
                   None, phase="run", backend="docker", language="c")
    assert (res.exit_code, res.stdout, res.stderr, res.stdout_truncated, res.stderr_truncated) == (
        2, "\ufffd", "e", True, False)
    assert (res.duration_s, res.backend, res.language, res.passed) == (1.5, "docker", "c", False)


def test_rlimits_exact() -> None:
    lim = Limits(timeout_s=2.5, memory_mb=100, max_output_bytes=1, max_file_bytes=7, max_procs=9, max_open_files=11)
    got = dict(rlimits_for(lim, cgroup=True))
    assert got[resource.RLIMIT_CPU] == (3, 4)  # CPU seconds: int(timeout) + 1 soft, one more hard
    assert got[resource.RLIMIT_FSIZE] == (7, 7) and got[resource.RLIMIT_NOFILE] == (11, 11)
    assert got[resource.RLIMIT_NPROC] == (9, 9) and got[resource.RLIMIT_CORE] == (0, 0)
    assert got[resource.RLIMIT_AS] == (100 * MiB, 100 * MiB)
    no_as = Limits(memory_mb=100, address_space=False)
    assert resource.RLIMIT_AS not in dict(rlimits_for(no_as, cgroup=True))
    assert dict(rlimits_for(no_as, cgroup=False))[resource.RLIMIT_AS] == ((100 + 8192) * MiB,) * 2
    assert dict(rlimits_for(Limits(timeout_s=1.0), cgroup=True))[resource.RLIMIT_CPU] == (2, 3)


# ------------------------------------------------------------------------------- harness sources

def test_harness_without_tests_runs_the_program_itself() -> None:
    assert harness.python(b"x", None) == harness.Sources({"main.py": b"x"}, "main.py", None)
    assert harness.bash(b"x", None) == harness.Sources({"main.sh": b"x"}, "main.sh", None)
    assert harness.c_family(b"x", None, "c", "main.c") == harness.Sources({"main.c": b"x"}, "main.c", None, ["main.c"])
    assert harness.rust(b"x", None).compile_files == ["main.rs"]
    assert harness.go(b"x", None).files == {"main.go": b"x"}
    assert harness.javascript(b"let x = 1;", None).entry == "main.js"
    assert harness.javascript(b"import fs from 'fs';", None).entry == "main.mjs"
    assert harness.javascript(b"let x = 1;", b"export const y = 2;").entry == "main.mjs"
    assert harness.javascript(b"let x: number = 1;", None, "typescript").entry == "main.ts"


def test_sentinels_are_fresh_and_printed_last() -> None:
    a, b = harness.python(b"", b""), harness.python(b"", b"")
    assert a.sentinel != b.sentinel and a.sentinel is not None and a.sentinel.startswith(b"__codecorpus_pass_")
    sh = harness.bash(b"echo hi", b"test 1 = 1")
    assert sh.files["main.sh"] == b"echo hi\ntest 1 = 1\nprintf '\\n%s\\n' '" + sh.sentinel + b"'\n"  # type: ignore[operator]
    js = harness.javascript(b"f()", b"g()")
    # code, then the tests (after the frozen node:assert prelude and the failing console.assert,
    # see sandbox/harness.py), then the sentinel printed when the event loop drains
    main = js.files["main.js"]
    assert main.index(b"f()\n;") < main.index(b"g()\n;") < main.index(b"process.once('beforeExit'")
    assert main.rstrip().endswith(b"});") and js.sentinel in main.rsplit(b"process.once", 1)[1]


def test_splice_applies_edits_right_to_left() -> None:
    assert harness._splice(b"abcdef", [(0, 1, b"X"), (3, 5, b"YY"), (6, 6, b"!")]) == b"XbcYYf!"


@pytest.mark.parametrize(
    ("src", "n"),
    [(b"int main(void) { return 0; }", 0), (b"int main() { return 0; }", 0),
     (b"int main(int argc, char **argv) { return 0; }", 2), (b"int main(int c, char **v, char **e) { return 0; }", 3),
     (b"static int helper(void) { return 1; }\nint main(int argc) { return 0; }", 1)],
)
def test_c_main_parameter_count(src: bytes, n: int) -> None:
    found = harness._c_main(src, "c")
    assert found is not None and found[2] == n
    assert harness._c_main(b"int mainx(void) { return 0; }\nint f(void);", "c") is None
    # A definition tree-sitter cannot give a function declarator (``int x {}``) does not hide main.
    assert harness._c_main(b"int x {}\nint main(void) { return 0; }", "c") is not None


def _c_run(tmp_path, code: bytes, tests: bytes, grammar: str = "c") -> tuple[int, bytes, bytes]:
    compiler = "gcc" if grammar == "c" else "g++"
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} not installed")
    fname = "main.c" if grammar == "c" else "main.cpp"
    src = harness.c_family(code, tests, grammar, fname)
    assert src.entry == fname and src.compile_files == [fname] and src.sentinel is not None
    (tmp_path / fname).write_bytes(src.files[fname])
    exe = tmp_path / "a.out"
    subprocess.run([compiler, "-w", "-o", str(exe), str(tmp_path / fname)], check=True, capture_output=True)
    r = subprocess.run([str(exe), "x"], capture_output=True, timeout=20)
    return r.returncode, r.stdout, src.sentinel


@pytest.mark.parametrize(
    ("tests", "rc", "passed"),
    [
        (b"#include <assert.h>\nint main(void) { assert(add(1, 2) == 3); }", 0, True),  # falls off the end: 0
        (b"int main(int argc, char **argv) { return argc == 2 ? 0 : 5; }", 0, True),  # gets the real argv
        (b"int main() { return add(1, 1) == 3 ? 0 : 4; }", 4, False),
        (b"#include <stdlib.h>\nif (add(2, 2) != 4) exit(1);\nprintf(\"ok\");", 0, True),  # bare statements
        (b"#include <stdlib.h>\nint main(void) { exit(0); }", 0, False),  # exits before the harness: no sentinel
    ],
)
def test_c_harness_executes_with_the_exact_outcome(tmp_path, tests: bytes, rc: int, passed: bool) -> None:
    code = b"#include <stdio.h>\nint add(int a, int b) { return a + b; }\nint main(void) { puts(\"demo\"); }\n"
    got_rc, out, sentinel = _c_run(tmp_path, code, tests)
    assert got_rc == rc
    assert (b"\n" + sentinel + b"\n" in out) is passed
    assert b"demo" not in out  # the program's own main is renamed, not run


def test_cpp_harness_uses_cstdio(tmp_path) -> None:
    src = harness.c_family(b"int f() { return 1; }", b"int main() { return f() - 1; }", "cpp", "main.cpp")
    assert b"#include <cstdio>\n" in src.files["main.cpp"] and b"#include <stdio.h>" not in src.files["main.cpp"]
    rc, out, sentinel = _c_run(tmp_path, b"int f() { return 1; }", b"int main() { return f() - 1; }", "cpp")
    assert rc == 0 and out.endswith(b"\n" + sentinel + b"\n")


def _py_run(tmp_path, code: str, tests: str) -> tuple[int, str, bytes]:
    """Run the Python harness outside the sandbox; literal-expectation asserts are then judged
    on the host as the sandbox does (their values are reported, not compared in the program)."""
    src = harness.python(code.encode(), tests.encode())
    assert set(src.files) == {"solution.py", "tests.py", "main.py"} and src.entry == "main.py"
    for name, data in src.files.items():
        (tmp_path / name).write_bytes(data.replace(b"/src/", str(tmp_path).encode() + b"/"))
    r = subprocess.run([sys.executable, str(tmp_path / "main.py")], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    out, rc = r.stdout, r.returncode
    if src.literal is not None:
        out, failure = verdict.judge(out, src.literal)
        rc = rc if failure is None else 1
    return rc, out, src.sentinel  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("tests", "passed"),
    [
        ("assert add(1, 2) == 3", True),
        ("def test_a():\n    assert add(1, 1) == 3", False),
        ("def test_a():\n    assert add(1, 1) == 2\ndef test_b(x):\n    raise AssertionError", True),  # args: not a test
        ("def helper():\n    raise AssertionError\nassert add(0, 0) == 0", True),  # not named test*
        ("import unittest\nclass TestAdd(unittest.TestCase):\n    def test_x(self):\n        self.assertEqual(add(1, 1), 3)",
         False),
        ("import unittest\nclass TestAdd(unittest.TestCase):\n    def test_x(self):\n        self.assertEqual(add(1, 1), 2)",
         True),
        ("import os\nos._exit(0)", False),
    ],
)
def test_python_harness_executes_with_the_exact_outcome(tmp_path, tests: str, passed: bool) -> None:
    code = "def add(a, b):\n    return a + b\nif __name__ == '__main__':\n    raise SystemExit(9)\n"
    rc, out, sentinel = _py_run(tmp_path, code, tests)
    assert (rc == 0 and out.endswith("\n" + sentinel.decode() + "\n")) is passed


def test_java_harness_files_and_entry() -> None:
    src = harness.java(b"package a.b;\npublic class Sol { static int f() { return 1; } }",
                       b"public class T { public static void main(String[] a) { assert a != null; } }")
    assert set(src.files) >= {"a/b/Sol.java", "T.java"} and src.entry.startswith("CcHarness_")
    assert b"    T.main(args);\n" in src.files[src.entry + ".java"]
    bare = harness.java(b"class Sol {}", b"System.out.println(1);")
    assert any(k.startswith("CcTests_") for k in bare.files)
    assert harness.java(b"class A { public static void main(String[] x) {} }", None).entry == "A"
    assert harness.java(b"package p;\nclass A {}\nclass B { static void main(String[] x) {} }", None).entry == "p.B"
    with pytest.raises(ValueError, match="static main"):
        harness.java(b"class Sol {}", b"class T { void main(String[] a) {} }")
    with pytest.raises(ValueError, match="both define"):
        harness.java(b"public class T {}", b"public class T { public static void main(String[] a) {} }")


def test_rust_and_go_harness_rename_mains() -> None:
    r = harness.rust(b"fn main() { println!(\"demo\"); }", b"fn main() -> Result<(), String> { Ok(()) }")
    src = r.files["main.rs"]
    assert b"fn cc_program_main_" in src and b"if let Err(e) = cc_user_main_" in src and src.count(b"fn main()") == 1
    plain = harness.rust(b"", b"assert_eq!(1, 1);").files["main.rs"]
    assert b"() {\nassert_eq!(1, 1);\n}\n" in plain and b"    cc_user_main_" in plain
    g = harness.go(b"package main\nfunc main() {}\n", b"package main\nfunc main() { check() }\n")
    assert b"func ccProgramMain" in g.files["main.go"] and b"func ccUserMain" in g.files["cc_tests.go"]
    assert g.compile_files == ["main.go", "cc_tests.go", "cc_harness.go"]
    with pytest.raises(ValueError, match="func main"):
        harness.go(b"package main\n", b"package main\nfunc helper() {}\n")

"""Each language end to end on each backend: pass, failing test, syntax/compile errors, harness shapes."""

from __future__ import annotations

import pytest

import sandbox

CASES = {
    # language: (program, passing tests, failing tests)
    "python": ("def add(a, b):\n    return a + b\n", "assert add(2, 3) == 5\n", "assert add(2, 3) == 6\n"),
    "javascript": ("function add(a, b) { return a + b; }\n",
                   "const assert = require('node:assert');\nassert.strictEqual(add(2, 3), 5);\n",
                   "const assert = require('node:assert');\nassert.strictEqual(add(2, 3), 6);\n"),
    "cpp": ("#include <vector>\nint add(int a, int b) { return a + b; }\n",
            "#include <cassert>\nint main() {\n  assert(add(2, 3) == 5);\n}\n",
            "#include <cassert>\nint main() {\n  assert(add(2, 3) == 6);\n}\n"),
    "c": ("int add(int a, int b) { return a + b; }\n",
          "#include <assert.h>\nint main(void) { assert(add(2, 3) == 5); return 0; }\n",
          "#include <assert.h>\nint main(void) { assert(add(2, 3) == 6); return 0; }\n"),
    "java": ("public class Solution {\n  public static int add(int a, int b) { return a + b; }\n}\n",
             "public class Tests {\n  public static void main(String[] args) {\n    assert Solution.add(2, 3) == 5;\n  }\n}\n",
             "public class Tests {\n  public static void main(String[] args) {\n    assert Solution.add(2, 3) == 6;\n  }\n}\n"),
    "bash": ("add() { echo $(( $1 + $2 )); }\n", '[ "$(add 2 3)" = 5 ] || exit 1\n', '[ "$(add 2 3)" = 6 ] || exit 1\n'),
    "rust": ("fn add(a: i32, b: i32) -> i32 { a + b }\n", "fn main() { assert_eq!(add(2, 3), 5); }\n",
             "fn main() { assert_eq!(add(2, 3), 6); }\n"),
    "go": ("package main\n\nfunc add(a, b int) int { return a + b }\n",
           "package main\n\nfunc main() {\n\tif add(2, 3) != 5 {\n\t\tpanic(\"bad\")\n\t}\n}\n",
           "package main\n\nfunc main() {\n\tif add(2, 3) != 6 {\n\t\tpanic(\"bad\")\n\t}\n}\n"),
    "typescript": ("function add(a: number, b: number): number { return a + b; }\n",
                   "import assert from 'node:assert';\nassert.strictEqual(add(2, 3), 5);\n",
                   "import assert from 'node:assert';\nassert.strictEqual(add(2, 3), 6);\n"),
}
FAST = {"python", "javascript", "bash"}


def _params():
    for lang in CASES:
        yield pytest.param(lang, marks=() if lang in FAST or lang in ("cpp", "java") else ())


@pytest.mark.parametrize("language", list(CASES))
def test_tests_pass_and_fail(language, backend, need):
    need(language, backend)
    code, good, bad = CASES[language]
    ok = sandbox.execute(code, language, tests=good, timeout_s=20, backend=backend)
    assert ok.status == "passed", ok
    assert ok.backend == backend and ok.language == language
    assert "__codecorpus_pass_" not in ok.stdout  # the sentinel is stripped
    bad_r = sandbox.execute(code, language, tests=bad, timeout_s=20, backend=backend)
    assert bad_r.status == "failed", bad_r
    if language in ("python", "javascript"):  # literal expectations are judged on the host (verdict*.py)
        assert bad_r.message == f"tests line {1 if language == 'python' else 2}: assertion failed (got 5)"
    else:
        assert bad_r.exit_code != 0


@pytest.mark.parametrize("language,code", [
    ("python", "def f(:\n    pass\n"),
    ("javascript", "function f( { return 1 }\n"),
    ("cpp", "int main() { return 0 \n"),
    ("java", "public class A { void f( }\n"),
    ("c", "int main(void) { return 0\n"),
])
def test_syntax_error_runs_nothing(language, code, backend, need):
    """Interpreted languages stop at the parse; compiled ones let the compiler confirm it
    (tree-sitter's grammars lag the languages), and the program never runs."""
    if language in ("cpp", "java", "c"):
        need(language, backend)
    r = sandbox.execute(code, language, backend=backend)
    assert r.status == "syntax_error", r
    assert "parse error" in r.message and "line" in r.message
    assert "run" not in r.phases
    if language in ("cpp", "java", "c"):
        assert "compiler rejected it too" in r.message
    else:
        assert "compile" not in r.phases


def test_compile_error_is_not_a_syntax_error(backend, need):
    need("cpp", backend)
    # Parses fine, but the type checker rejects it.
    r = sandbox.execute("int main() { undefined_fn(1); return 0; }\n", "cpp", backend=backend)
    assert r.status == "compile_error"
    assert "undefined_fn" in r.stderr
    need("java", backend)
    r = sandbox.execute("public class A { public static void main(String[] a) { int x = \"s\"; } }", "java",
                        backend=backend)
    assert r.status == "compile_error" and "incompatible types" in r.stderr


def test_stdin_files_and_stdout(backend):
    code = ("import sys\nname = input()\ndata = open('data/in.txt').read()\n"
            "print(f'hello {name}: {data}')\nprint('warn', file=sys.stderr)\n")
    r = sandbox.execute(code, "python", stdin="world\n", files={"data/in.txt": "42"}, backend=backend)
    assert r.status == "passed", r
    assert r.stdout == "hello world: 42\n"
    assert r.stderr == "warn\n"
    assert not r.stdout_truncated and r.duration_s > 0


def test_python_test_functions_and_unittest(backend):
    code = "def inc(x):\n    return x + 1\n"
    funcs = "def test_one():\n    assert inc(1) == 2\n\ndef test_two():\n    assert inc(2) == 4\n"
    r = sandbox.execute(code, "python", tests=funcs, backend=backend)
    assert r.status == "failed" and "test_two" in r.stderr + r.message  # pytest-style functions are called
    ut = ("import unittest\nclass TestInc(unittest.TestCase):\n    def test_a(self):\n"
          "        self.assertEqual(inc(1), 2)\n")
    assert sandbox.execute(code, "python", tests=ut, backend=backend).status == "passed"
    ut_bad = ut.replace("2)", "3)")
    assert sandbox.execute(code, "python", tests=ut_bad, backend=backend).status == "failed"


def test_python_main_block_is_not_run_under_tests(backend):
    code = "import sys\ndef f(x):\n    return x + 1\nif __name__ == '__main__':\n    print(f(int(input())))\n"
    r = sandbox.execute(code, "python", tests="assert f(1) == 2\n", backend=backend)
    assert r.status == "passed" and r.stdout == ""  # no input() waiting for stdin
    r = sandbox.execute(code, "python", stdin="41\n", backend=backend)  # without tests it is the program
    assert r.status == "passed" and r.stdout == "42\n"
    r = sandbox.execute("def f():\n    return 1\n", "python", tests="assert f() == 1\nassert g() == 2\n",
                        backend=backend)
    assert r.status == "failed" and 'File "/src/tests.py", line 2' in r.stderr


def test_harness_shapes(backend, need):
    need("java", backend)
    need("cpp", backend)
    need("javascript", backend)
    # Java tests as bare statements (MBPP style) are wrapped in a generated main.
    r = sandbox.execute("class Util { static int sq(int x) { return x * x; } }", "java",
                        tests="assert Util.sq(3) == 9;\nList<Integer> l = new ArrayList<>();\nl.add(1);",
                        backend=backend, timeout_s=20)
    assert r.status == "passed", r
    # C++ tests without main: statements are wrapped too; a main that falls off its end passes.
    r = sandbox.execute("int sq(int x) { return x * x; }", "cpp", tests="#include <cassert>\nassert(sq(3) == 9);",
                        backend=backend)
    assert r.status == "passed", r
    # C++ main(argc, argv) and a nonzero return.
    r = sandbox.execute("int one() { return 1; }", "cpp", tests="int main(int argc, char** argv) { return one(); }",
                        backend=backend)
    assert r.status == "failed" and r.exit_code == 1
    # JavaScript as an ES module; an async test that rejects fails.
    r = sandbox.execute("export function f() { return 1; }", "javascript",
                        tests="import assert from 'node:assert';\nassert.equal(f(), 1);", backend=backend)
    assert r.status == "passed", r
    r = sandbox.execute("function f() { return 1; }", "javascript",
                        tests="(async () => { await null; throw new Error('late'); })();", backend=backend)
    assert r.status == "failed" and "late" in r.stderr


def test_program_output_without_tests(backend, need):
    need("cpp", backend)
    r = sandbox.execute('#include <cstdio>\nint main(){ printf("%d\\n", 6*7); return 3; }', "cpp", backend=backend)
    assert r.status == "failed" and r.exit_code == 3 and r.stdout == "42\n"


def test_unknown_language_and_bad_requests(backend):
    r = sandbox.execute("x", "cobol", backend=backend)
    assert r.status == "sandbox_error" and "unknown language 'cobol'" in r.message
    r = sandbox.execute("print(1)", "python", files={"../escape.txt": "x"}, backend=backend)
    assert r.status == "failed" and "relative path" in r.message
    r = sandbox.execute("print(1)", "python", timeout_s=0, backend=backend)
    assert r.status == "sandbox_error" and "timeout_s" in r.message
    r = sandbox.execute("class A {}", "java", tests="class T { void notMain() {} }", backend=backend)
    assert r.status == "failed" and "static main" in r.message


def test_missing_toolchain_reported_cleanly(backend):
    langs = sandbox.available_languages(backend)
    assert {"python", "java", "cpp", "javascript"} <= {k for k, v in langs.items() if v}
    missing = [k for k, v in langs.items() if not v]
    for lang in missing:
        r = sandbox.execute("x", lang, backend=backend, static_check=False)
        assert r.status == "sandbox_error" and "toolchain" in r.message


def test_execute_many_keeps_order(backend):
    reqs = [sandbox.Request(code=f"print({i} * 2)", language="python") for i in range(12)]
    reqs.append(sandbox.Request(code="def f(:", language="python"))
    seen = []
    res = sandbox.execute_many(reqs, workers=4, backend=backend, progress=lambda i, r: seen.append(i))
    assert [r.stdout for r in res[:12]] == [f"{i * 2}\n" for i in range(12)]
    assert res[12].status == "syntax_error"
    assert sorted(seen) == list(range(13))


def test_wrong_types_are_reported_not_raised(backend):
    r = sandbox.execute(None, "python", backend=backend)  # type: ignore[arg-type]
    assert r.status == "sandbox_error" and "code must be str or bytes" in r.message
    r = sandbox.execute("print(1)", "python", tests=3, backend=backend)  # type: ignore[arg-type]
    assert r.status == "sandbox_error" and "tests" in r.message
    r = sandbox.execute("print(1)", "python", timeout_s=float("nan"), backend=backend)
    assert r.status == "sandbox_error"
    r = sandbox.execute(b"print('bytes ok')", "python", backend=backend)
    assert r.status == "passed" and r.stdout == "bytes ok\n"
    r = sandbox.execute(b"print('\xff')", "python", backend=backend)  # not UTF-8
    assert r.status == "syntax_error" and "not valid UTF-8 (byte 0xff at offset 7)" in r.message

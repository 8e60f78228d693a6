"""The tree-sitter pre-check: clean code passes, broken code is located, bad text is named."""

from __future__ import annotations

import threading

import pytest

from sandbox import harness, static


@pytest.mark.parametrize("grammar,src", [
    ("python", "def f(x):\n    return [i for i in range(x)]\n"),
    ("java", "public class A { public static void main(String[] a) { System.out.println(1); } }"),
    ("cpp", "#include <vector>\ntemplate <class T> T id(T x) { return x; }\nint main() { return id(0); }\n"),
    ("javascript", "const f = async (x) => { await x; return `${x}`; };\n"),
    ("c", "int main(void) { int a[3] = {0}; return a[0]; }\n"),
    ("bash", "for i in 1 2; do echo \"$i\"; done\n"),
])
def test_clean_code_passes(grammar, src):
    assert static.check(src, grammar) is None


def test_errors_are_located():
    why = static.check("x = 1\ndef f(:\n    pass\n", "python")
    assert why is not None and "line 2" in why
    why = static.check("int main() { return 0 }", "cpp")
    assert why is not None and "missing ';'" in why
    assert static.check("class A { void f( }", "java") is not None


def test_nul_and_surrogates_are_named():
    assert "NUL byte at offset 5" in static.check("print\x00(1)", "python")
    assert "unpaired surrogate" in static.check("x = '\ud800'", "python")


def test_parsers_are_per_thread():
    errors = []

    def work():
        for _ in range(50):
            if static.check("def f():\n    return 1\n", "python") is not None:
                errors.append("false positive")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_c_harness_renames_main_and_adds_return():
    src = harness.c_family(b"int g() { return 1; }", b"#include <assert.h>\nint main(void) { assert(g()); }",
                           "c", "main.c")
    text = src.files["main.c"].decode()
    assert "int main(void)" not in text and "cc_user_main_" in text
    assert "return 0;\n}" in text and src.sentinel.decode() in text
    assert static.check(text, "c") is None


def test_java_harness_names_files_by_public_class():
    src = harness.java(b"public class Solver { }", b"public class MyTests { public static void main(String[] a) {} }")
    assert "Solver.java" in src.files and "MyTests.java" in src.files
    assert src.entry.startswith("CcHarness_") and f"{src.entry}.java" in src.files
    pkg = harness.java(b"package a.b;\npublic class C { public static void main(String[] x) {} }", None)
    assert "a/b/C.java" in pkg.files and pkg.entry == "a.b.C" and pkg.sentinel is None

"""Host-side bounds: oversized sources are refused before parsing, parses have a deadline, and a
tree-sitter error in a compiled language defers to the compiler."""

from __future__ import annotations

import resource
import time

import pytest

import sandbox
from sandbox import static


def test_50mb_source_is_refused_cheaply():
    code = "x = 1\n" * (50 * 1024 * 1024 // 6)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.monotonic()
    r = sandbox.execute(code, "python", tests="assert x == 1\n", backend="bwrap")
    assert time.monotonic() - t < 2.0
    assert r.status == "input_limit" and "max_source_bytes" in r.message and "code is" in r.message
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 100 * 1024  # KiB: < 100 MB more
    r = sandbox.execute("x = 1\n", "python", tests="#" * 2_000_000, backend="bwrap")
    assert r.status == "input_limit" and r.message.startswith("tests is")
    assert "input_limit" in sandbox.STATUSES


def test_cap_is_an_argument(bwrap_backend):
    r = sandbox.execute("print(1)\n" + "#" * 100, "python", max_source_bytes=50, backend=bwrap_backend)
    assert r.status == "input_limit"
    r = sandbox.execute("print(1)\n", "python", max_source_bytes=50, backend=bwrap_backend)
    assert r.status == "passed" and r.stdout == "1\n"


def test_parse_deadline_raises():
    src = b"int f(){return 1;}\n" * 200_000  # 4 MB: well over a 1 ms budget
    with pytest.raises(static.ParseLimit, match="PARSE_TIMEOUT_S"):
        static.parse(src, "cpp", timeout_s=0.001)
    assert not static.parse(src[: 19 * 3000], "cpp", timeout_s=0.001).root_node.has_error  # small: direct


# Valid C++ that tree-sitter-cpp's grammar does not parse (its error node is reported), and that
# g++ compiles: the compiler's verdict wins.
GRAMMAR_LAG_CPP = (
    "int bucket(int x) {\n  switch (x) {\n    case 1 ... 5: return 1;  // GNU case range\n"
    "    default: return 0;\n  }\n}\n",
    "#include <cassert>\nint main() { assert(bucket(3) == 1 && bucket(9) == 0); }\n",
)


def test_compiler_overrules_a_lagging_grammar(bwrap_backend, need):
    need("cpp", bwrap_backend)
    code, tests = GRAMMAR_LAG_CPP
    assert static.check(code, "cpp") is not None  # tree-sitter rejects it ...
    r = sandbox.execute(code, "cpp", tests=tests, backend=bwrap_backend)
    assert r.status == "passed", r  # ... g++ accepts it
    broken = sandbox.execute("int f() { return 1 \n", "cpp", tests="int main() { return f() - 1; }\n",
                             backend=bwrap_backend)
    assert broken.status == "syntax_error" and "compiler rejected it too" in broken.message

"""Offline test generation: static analysis, hypothesis inputs, harness output parsing."""

from __future__ import annotations

import ast

import pytest

from corpus.instruct import pyfunc
from corpus.instruct.execution import ExecRequest, sandbox_executor  # noqa: I001


def test_analyze_typed_function_uses_hypothesis_strategies():
    code = "def clamp(x: int, lo: int = 0, hi: int = 10) -> int:\n    '''Clamp x.'''\n    return max(lo, min(hi, x))"
    info = pyfunc.analyze(code)
    assert info.name == "clamp" and info.strategies is not None and len(info.strategies) == 1
    calls = pyfunc.generated_calls(info, 5, seed=1)
    assert len(calls) == 5 and len(set(calls)) == 5
    assert calls == pyfunc.generated_calls(info, 5, seed=1)  # seeded: same inputs every run
    assert all(isinstance(ast.parse(c, mode="eval").body, ast.Call) for c in calls)


@pytest.mark.parametrize("ann, ok", [
    ("list[int]", True), ("dict[str, float]", True), ("tuple[int, str]", True), ("Optional[str]", True),
    ("int | None", True), ("Sequence[bytes]", True), ("tuple[int, ...]", True), ("set[int]", True),
    ("Callable[[int], int]", False), ("MyClass", False), ("'int'", True),
])
def test_strategy_for_type_hints(ann, ok):
    s = pyfunc.strategy_for(ast.parse(ann, mode="eval").body)
    assert (s is not None) == ok


def test_doctests_and_imports_and_constants():
    ctx = "import math\nfrom os import path as p\nLIMIT = 3\nfrom .rel import x"
    code = ("def f(n):\n    '''Scaled root.\n\n    >>> f(4)\n    2.0\n    >>> f(math.pi) > 0\n    True\n    '''\n"
            "    return math.sqrt(n) * LIMIT / 3")
    info = pyfunc.analyze(code, ctx)
    assert info.doctest_calls == ["f(4)", "f(math.pi) > 0"]
    assert info.imports == ["import math", "LIMIT = 3"]
    assert info.program.startswith("import math\nLIMIT = 3\n")


@pytest.mark.parametrize("code, reason", [
    ("def f(x):\n    return helper(x)", "needs_module_globals"),
    ("def f(x):\n    yield x", "generator_or_async"),
    ("async def f(x):\n    return x", "not_a_function"),
    ("@cache\ndef f(x):\n    return x", "decorated"),
    ("def f(self, x):\n    return x", "method"),
    ("def f(x):\n    global G\n    G = x", "global_state"),
    ("def f(a, b, c, d):\n    return a", "no_inputs"),
    ("def f(:", "syntax_error"),
    ("x = 1", "not_a_function"),
])
def test_unsupported_functions_have_reasons(code, reason):
    with pytest.raises(pyfunc.Unsupported, match=reason):
        pyfunc.analyze(code)


def test_third_party_imports_are_refused_before_running():
    code = 'def f(a: int) -> int:\n    """Use numpy."""\n    return int(numpy.sum([a]))'
    with pytest.raises(pyfunc.Unsupported, match="needs_third_party_module"):
        pyfunc.analyze(code, "import numpy")
    assert pyfunc.analyze(code.replace("numpy.sum", "math.fsum"), "import math").imports == ["import math"]


def test_harness_in_sandbox_makes_passing_tests_and_catches_wrong_code():
    code = ("def norm(s: str, upper: bool = False) -> str:\n    '''Strip and case-fold.'''\n"
            "    s = s.strip()\n    return s.upper() if upper else s.lower()")
    info = pyfunc.analyze(code)
    calls = pyfunc.generated_calls(info, 6, seed=3)
    run = sandbox_executor()
    (res,) = run([ExecRequest(pyfunc.harness(info, calls), "python")])
    assert res.status == "passed"
    cases = pyfunc.cases_from_output(res.stdout, calls)
    assert cases and all(c.expected.startswith("'") for c in cases)
    tests = pyfunc.render_tests(cases)
    assert run([ExecRequest(info.program, "python", tests)])[0].status == "passed"
    wrong = info.program.replace("s.lower()", "s")
    assert run([ExecRequest(wrong, "python", tests)])[0].status == "failed"


def test_cases_drop_nondeterministic_nonliteral_and_all_none():
    m = pyfunc.MARK
    out = "\n".join([
        "noise printed by the function",
        m + '{"i": 0, "ok": true, "repr": "3", "det": true}',
        m + '{"i": 1, "ok": true, "repr": "<object at 0x1>", "det": true}',
        m + '{"i": 2, "ok": true, "repr": "0.123", "det": false}',
        m + '{"i": 3, "ok": false, "exc": "ValueError"}',
        m + '{"i": 4, "ok": false, "exc": "MyCustomError"}',
        m + '{"i": 5, "ok": true, "repr": "\\"the object at \'0x7fa8338305f0\'\\"", "det": true}',
        m + "{not json",
    ])
    calls = ["f(0)", "f(1)", "f(2)", "f(3)", "f(4)", "f(5)"]
    cases = pyfunc.cases_from_output(out, calls)
    assert [(c.call, c.expected, c.exception) for c in cases] == [("f(0)", "3", None), ("f(3)", None, "ValueError")]
    only_none = m + '{"i": 0, "ok": true, "repr": "None", "det": true}'
    assert pyfunc.cases_from_output(only_none, calls) == []


def test_probe_groups_keep_one_argument_type():
    info = pyfunc.analyze("def f(a):\n    '''Double it.'''\n    return a * 2")
    assert info.probe and info.strategies is None
    groups = pyfunc.probe_groups(info)
    calls = list(groups)
    m = pyfunc.MARK
    lines = []
    for i, c in enumerate(calls):
        ok = groups[c] == "str"
        rec = {"i": i, "ok": ok, "repr": repr(c), "det": True} if ok else {"i": i, "ok": False, "exc": "TypeError"}
        lines.append(m + __import__("json").dumps(rec))
    cases = pyfunc.cases_from_output("\n".join(lines), calls, groups=groups)
    assert cases and all(groups[c.call] == "str" for c in cases)
    assert not any(c.exception == "TypeError" for c in cases)


def test_float_results_compare_with_tolerance():
    tests = pyfunc.render_tests([pyfunc.Case("f(1)", "0.1"), pyfunc.Case("g()", "True"), pyfunc.Case("h()", "[1]")])
    assert "abs(f(1) - 0.1)" in tests and "assert g() is True" in tests and "assert h() == [1]" in tests

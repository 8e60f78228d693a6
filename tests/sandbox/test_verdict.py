"""Host-side verdicts (sandbox/verdict.py, verdict_js.py): which tests qualify, and that judging
on the host gives the same statuses as the in-sandbox harness on real benchmark tests."""

from __future__ import annotations

import gzip
import json
import os

import pytest

import sandbox
from sandbox import verdict, verdict_js

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                    "corpus", "decontam", "data")


@pytest.mark.parametrize("tests", [
    "assert f(1) == 2\n",
    "import math\nassert 2 == f(1), 'msg'\nassert f(2) is None\nassert not f(3)\nassert f(4)\n",
    "assert abs(f(0.1) - 0.3) <= 1e-9 * max(1.0, abs(0.3))\n",
    "assert set(f([1])) == set((1, 2))\nassert f() == {'a': [1, (2, 3)], 'b': None}\n",
    "METADATA = {'author': 'x'}\n\ndef check(candidate):\n    assert candidate(1) == 2\n    assert True\n\ncheck(f)\n",
])
def test_python_literal_forms_are_planned(tests):
    lp = verdict.plan(tests.encode())
    assert lp is not None
    assert b"_cc_emit(" in lp.tests
    for literal in ("== 2", "== {", "set((1, 2))", "0.3"):  # expectations stay here
        assert literal.encode() not in lp.tests


@pytest.mark.parametrize("tests", [
    "x = f(1)\nassert x == 2\n",  # a non-literal assignment
    "assert f(1) == g(2)\n",  # expectation computed by code
    "for i in range(3):\n    assert f(i) == i\n",
    "import unittest\nclass T(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(f(1), 2)\n",
    "assert f(1) == 2 ** 100\n",  # arithmetic beyond + - * / on numbers
])
def test_other_python_tests_stay_in_the_sandbox(tests):
    assert verdict.plan(tests.encode()) is None


def test_js_forms():
    lp = verdict_js.plan(b"const assert = require('node:assert');\nassert.strictEqual(f(1), 2);\n"
                         b"assert.deepStrictEqual(g(), [1, {a: 'x'}]);\nconsole.assert(h() === true);\n")
    assert lp is not None and len(lp.checks) == 3 and b"'x'" not in lp.tests
    assert verdict_js.plan(b"assert.strictEqual(f(1), [1]);\n") is None  # identity of a fresh array
    assert verdict_js.plan(b"assert.equal(f(1), 2);\n") is None  # loose equality
    assert verdict_js.plan(b"let x = f(1);\nassert.strictEqual(x, 2);\n") is None
    assert verdict_js.js_equal([1.0, {"a": None}], [1.0, {"a": None}])
    assert not verdict_js.js_equal(0.0, -0.0) and verdict_js.js_equal(float("nan"), float("nan"))
    assert not verdict_js.js_equal(1.0, True) and not verdict_js.js_equal(None, verdict_js.UNDEFINED)


def _humaneval(ids):
    with gzip.open(os.path.join(DATA, "humaneval.jsonl.gz"), "rt") as f:
        rows = [json.loads(line) for line in f]
    return [(r["task_id"], r["prompt"] + r["canonical_solution"], r["test"] + f"\ncheck({r['entry_point']})\n")
            for r in rows if r["task_id"] in ids]


def _mbpp(ids):
    with open(os.path.join(DATA, "mbpp_sanitized_test.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    return [(r["task_id"], r["code"], "\n".join(r.get("test_imports") or []) + "\n" + "\n".join(r["test_list"]) + "\n")
            for r in rows if r["task_id"] in ids]


def test_host_verdicts_match_the_sandbox_harness(bwrap_backend, monkeypatch):
    """Canonical solutions (HumanEval, MBPP: Counter and re.Match results, isclose, floats)
    pass with host-side judging exactly as with the in-sandbox asserts; a wrong one fails in both."""
    cases = _humaneval({"HumanEval/0", "HumanEval/2", "HumanEval/32", "HumanEval/53", "HumanEval/160"})
    cases += _mbpp({2, 3, 88, 737, 794, 17, 59})
    assert len(cases) >= 10
    assert sum(verdict.plan(t.encode()) is not None for _, _, t in cases) >= 9
    entry = {i: t.rsplit("check(", 1)[1].split(")")[0] for i, _, t in cases[:3]}
    wrong = [(f"{i} (wrong)", c + f"\n\ndef {entry[i]}(*args):\n    return None\n", t) for i, c, t in cases[:3]]
    reqs = [sandbox.Request(code=c, language="python", tests=t, timeout_s=20) for _, c, t in cases + wrong]
    host = sandbox.execute_many(reqs, workers=2, backend=bwrap_backend)
    monkeypatch.setattr(verdict, "plan", lambda tests: None)  # the classic in-sandbox harness
    classic = sandbox.execute_many(reqs, workers=2, backend=bwrap_backend)
    got = {i: (h.status, c.status) for (i, _, _), h, c in zip(cases + wrong, host, classic, strict=True)}
    assert all(h == c for h, c in got.values()), got
    assert all(h == "passed" for i, (h, _) in got.items() if "wrong" not in str(i)), got
    assert all(h == "failed" for i, (h, _) in got.items() if "wrong" in str(i)), got

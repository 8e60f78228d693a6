"""Host-side verdicts for JavaScript tests of the literal-expectation form (see verdict.py).

Supported statements (every top-level statement must be one, else the classic harness runs):
``require``/``import`` declarations and ``assert.strictEqual(E, L)``, ``assert.deepStrictEqual(E, L)``
(also ``assert.strict.*``), ``assert(E === L)``, ``assert.ok(E === L)``, ``console.assert(E === L)``,
with ``L`` a JSON-like literal (numbers, strings, booleans, null, undefined, arrays, plain
objects). The sandbox gets ``__cc_emit(i, E)`` lines; a prelude defined before the program's
code serializes the value (primitives, arrays and plain objects only; functions it captured
before the program ran) and this module compares with ``Object.is``/``deepStrictEqual``
semantics. The loose ``assert.equal``/``deepEqual`` stay in the classic harness.
"""

from __future__ import annotations

import ast
import json
import math
import re
import secrets
from dataclasses import dataclass

from sandbox.static import parse
from sandbox.verdict import MAX_VALUE_NODES


class Undefined:
    """JavaScript's ``undefined`` on the host."""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = Undefined()


class _NotHost(Exception):
    pass


_STRICT = {"strictEqual", "deepStrictEqual"}


def _text(src: bytes, node) -> str:
    return src[node.start_byte:node.end_byte].decode("utf-8")


def _number(text: str) -> float:
    t = text.replace("_", "")
    if t.endswith("n"):
        raise _NotHost("BigInt")
    low = t.lower()
    try:
        if low.startswith(("0x", "0o", "0b")):
            return float(int(low, 0))
        if re.fullmatch(r"0\d+", t):
            raise _NotHost("legacy octal")
        return float(t)
    except ValueError:
        raise _NotHost(text) from None


def _literal(src: bytes, node):
    """Host value of a JSON-like JS literal (numbers as float, objects as dict)."""
    t = node.type
    if t == "number":
        return _number(_text(src, node))
    if t == "unary_expression" and node.child_count == 2 and _text(src, node.children[0]) in ("-", "+"):
        v = _literal(src, node.children[1])
        if type(v) is not float:
            raise _NotHost("sign of a non-number")
        return -v if _text(src, node.children[0]) == "-" else v
    if t == "string":
        raw = _text(src, node)
        if "\\u{" in raw or "\n" in raw:
            raise _NotHost("escape")
        try:
            v = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            raise _NotHost(raw) from None
        if not isinstance(v, str):
            raise _NotHost(raw)
        return v
    if t in ("true", "false"):
        return t == "true"
    if t == "null":
        return None
    if t == "undefined" or (t == "identifier" and _text(src, node) == "undefined"):
        return UNDEFINED
    if t == "identifier" and _text(src, node) in ("NaN", "Infinity"):
        return math.nan if _text(src, node) == "NaN" else math.inf
    if t == "array":
        return [_literal(src, c) for c in node.named_children if c.type != "comment"]
    if t == "object":
        out = {}
        for pair in node.named_children:
            if pair.type == "comment":
                continue
            if pair.type != "pair":
                raise _NotHost(pair.type)
            key = pair.child_by_field_name("key")
            value = pair.child_by_field_name("value")
            if key.type == "property_identifier":
                k = _text(src, key)
            elif key.type == "string":
                k = _literal(src, key)
            elif key.type == "number":
                k = _js_number_key(_number(_text(src, key)))
            else:
                raise _NotHost(key.type)
            out[k] = _literal(src, value)
        return out
    if t == "parenthesized_expression" and node.named_child_count == 1:
        return _literal(src, node.named_children[0])
    raise _NotHost(t)


def _js_number_key(v: float) -> str:
    return str(int(v)) if v.is_integer() and abs(v) < 1e21 else repr(v)


@dataclass(frozen=True)
class Check:
    line: int
    expected: object


@dataclass(frozen=True)
class LiteralPlan:
    tests: bytes
    prelude: bytes  # one line, placed before the program's code
    checks: tuple[Check, ...]
    marker: str


def _assert_call(src: bytes, call) -> tuple[object, object, str] | None:
    """(E node, L node, kind) for a supported assertion call, else None."""
    fn = call.child_by_field_name("function")
    args = call.child_by_field_name("arguments")
    if fn is None or args is None:
        return None
    argv = [a for a in args.named_children if a.type != "comment"]
    name = _text(src, fn).replace(" ", "")
    if name in ("assert", "assert.ok", "console.assert", "assert.strict", "assert.strict.ok"):
        if not argv or argv[0].type != "binary_expression":
            return None
        op = argv[0].child_by_field_name("operator")
        if op is None or _text(src, op) != "===":
            return None
        return argv[0].child_by_field_name("left"), argv[0].child_by_field_name("right"), "==="
    method = name.rsplit(".", 1)[-1]
    if name in (f"assert.{method}", f"assert.strict.{method}") and method in _STRICT and len(argv) in (2, 3):
        return argv[0], argv[1], method
    return None


def plan(tests: bytes) -> LiteralPlan | None:
    """The literal plan for JavaScript ``tests``, or None when a statement is outside the forms."""
    root = parse(tests, "javascript").root_node
    if root.has_error:
        return None
    lines = tests.split(b"\n")
    out: dict[int, bytes] = {}
    checks: list[Check] = []
    for stmt in root.named_children:
        row = stmt.start_point[0]
        if stmt.type == "comment":
            continue
        if stmt.type in ("import_statement", "lexical_declaration", "variable_declaration"):
            text = _text(tests, stmt)
            if stmt.type != "import_statement" and "require(" not in text:
                return None  # only `const assert = require(...)`-style declarations
            out[row] = tests[stmt.start_byte:stmt.end_byte].replace(b"\n", b" ")
            continue
        if stmt.type != "expression_statement" or stmt.named_child_count != 1:
            return None
        call = stmt.named_children[0]
        if call.type != "call_expression":
            return None
        found = _assert_call(tests, call)
        if found is None or found[0] is None or found[1] is None:
            return None
        expr, lit, kind = found
        try:
            expected = _literal(tests, lit)
        except _NotHost:
            try:  # `assert.strictEqual(5, f(x))`
                expected, expr = _literal(tests, expr), lit
            except _NotHost:
                return None
        if kind != "deepStrictEqual" and type(expected) in (list, dict):
            return None  # `===`/strictEqual with an array or object literal is identity: keep JS's verdict
        e_src = tests[expr.start_byte:expr.end_byte].replace(b"\n", b" ")
        out[row] = b"__cc_emit(" + str(len(checks)).encode() + b", (" + e_src + b"));"
        checks.append(Check(row + 1, expected))
    if not checks:
        return None
    marker = f"__cc_value_{secrets.token_hex(8)}"
    body = b"\n".join(out.get(i, b"") for i in range(len(lines)))
    return LiteralPlan(body, _PRELUDE.replace("MARKER", marker).replace("MAX_NODES", str(MAX_VALUE_NODES)).encode(),
                       tuple(checks), marker)


# One line, defined before the program's code: every global it uses is captured here, and a
# `const` cannot be redeclared by the program (that is a SyntaxError, so the run fails).
_PRELUDE = (
    "const __cc_emit = ((isArray, getProto, keys, AP, OP, S, str, write, isNaN) => { "
    "const enc = (x, d, b) => { if (--b.n < 0 || d > 200) return ['o', 'value too deep or too large']; "
    "const t = typeof x; "
    "if (t === 'number') return ['n', isNaN(x) ? 'NaN' : (x === 0 && 1 / x < 0) ? '-0' : str(x)]; "
    "if (t === 'string') return ['s', x]; if (t === 'boolean') return ['b', x ? '1' : '0']; "
    "if (t === 'undefined') return ['u']; if (x === null) return ['z']; "
    "if (t !== 'object') return ['o', t]; const p = getProto(x); "
    "if (isArray(x) && p === AP) { const out = []; for (let i = 0; i < x.length; i++) { if (b.n < 0) return ['o', 'value too large']; out.push(enc(x[i], d + 1, b)); } "
    "return ['a', out]; } "
    "if (p === OP || p === null) { const out = []; for (const k of keys(x)) { if (b.n < 0) return ['o', 'value too large']; out.push([k, enc(x[k], d + 1, b)]); } "
    "return ['d', out]; } return ['o', 'object that is not a plain array or object']; }; "
    "const dump = (v) => typeof v === 'string' ? S(v) : '[' + v.map(dump).join(',') + ']'; "
    "return (i, v) => { let data; try { data = dump(enc(v, 0, {n: MAX_NODES})); } "
    "catch (e) { data = dump(['o', 'value that cannot be serialized']); } "
    "write('\\nMARKER:' + str(i) + ':' + data + '\\n'); }; "
    "})(Array.isArray, Object.getPrototypeOf, Object.keys, Array.prototype, Object.prototype, JSON.stringify, String, "
    "process.stdout.write.bind(process.stdout), Number.isNaN);\n"
)


class _Opaque(Exception):
    pass


def _decode(x, budget: list[int]):
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError("value too large")
    tag = x[0]
    if tag == "n":
        return {"NaN": math.nan, "-0": -0.0}.get(x[1]) if x[1] in ("NaN", "-0") else float(x[1])
    if tag == "s":
        return str(x[1])
    if tag == "b":
        return x[1] == "1"
    if tag == "u":
        return UNDEFINED
    if tag == "z":
        return None
    if tag == "a":
        return [_decode(v, budget) for v in x[1]]
    if tag == "d":
        return {str(k): _decode(v, budget) for k, v in x[1]}
    if tag == "o":
        raise _Opaque(str(x[1]))
    raise ValueError(f"unknown tag {tag!r}")


def js_equal(a, b) -> bool:
    """``assert.deepStrictEqual`` on host values (``Object.is`` at the leaves)."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if type(a) is list:
        return len(a) == len(b) and all(js_equal(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return a.keys() == b.keys() and all(js_equal(a[k], b[k]) for k in a)
    return a == b if a is not UNDEFINED else b is UNDEFINED


def js_repr(v) -> str:
    """A host value written as JavaScript (for messages)."""
    if type(v) is float:
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return str(int(v)) if v.is_integer() and abs(v) < 1e21 and not (v == 0 and math.copysign(1, v) < 0) else repr(v)
    if v is None:
        return "null"
    if type(v) is bool:
        return "true" if v else "false"
    if type(v) is str:
        return json.dumps(v)
    if type(v) is list:
        return "[" + ", ".join(js_repr(x) for x in v) + "]"
    if type(v) is dict:
        return "{" + ", ".join(f"{json.dumps(k)}: {js_repr(x)}" for k, x in v.items()) + "}"
    return repr(v)


def judge(stdout: str, lp: LiteralPlan) -> tuple[str, str | None]:
    """(stdout without the value records, None when every check holds else why not)."""
    values: dict[int, str] = {}
    dup: list[str] = []

    def take(m: re.Match) -> str:
        idx = int(m.group(1))
        if idx in values:
            dup.append(f"assert #{idx} reported twice (records forged by the program?)")
        values[idx] = m.group(2)
        return ""

    out = re.sub("\n" + re.escape(lp.marker) + r":(\d{1,9}):([^\n]*)\n", take, stdout)
    if dup:
        return out, dup[0]
    for i, check in enumerate(lp.checks):
        if i not in values:
            return out, f"tests line {check.line}: no value reported (the program stopped the tests)"
        try:
            value = _decode(json.loads(values[i]), [MAX_VALUE_NODES])
        except _Opaque as e:
            return out, (f"tests line {check.line}: the value is {e}, which cannot be compared outside the "
                         "program (literal-expectation asserts need plain values)")
        except (ValueError, TypeError, KeyError, IndexError, RecursionError):
            return out, f"tests line {check.line}: malformed value record"
        if not js_equal(value, check.expected):
            r = js_repr(value)
            return out, f"tests line {check.line}: assertion failed (got {r if len(r) <= 200 else r[:200] + '...'})"
    extra = set(values) - set(range(len(lp.checks)))
    if extra:
        return out, f"value records for asserts that do not exist: {sorted(extra)[:5]}"
    return out, None

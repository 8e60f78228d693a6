"""Host-side verdicts for Python tests of the literal-expectation form.

Why: a program shares its process with the tests it is judged by, so it can patch anything the
tests use (``__eq__`` that is always true, builtins, the sentinel read from /src). For the
common form ``assert f(args) == <literal>`` (MBPP, HumanEval-style generators, the offline
instruction generator) the expectations never enter the sandbox: the sandbox only evaluates
the left-hand expressions and prints their values in a tagged serialization of plain builtin
types; this process rebuilds them and compares. A program can then only "pass" by reporting
the right values, and objects that claim equality with everything cannot be serialized.

Supported statements (every top-level statement must be one of them, else the classic
in-sandbox harness runs): ``import``/``from`` imports, docstrings, literal assignments
(``METADATA = {...}``), calls ``f(name, ...)``, functions whose body is only such statements
(HumanEval's ``def check(candidate)``), and ``assert`` of
``E == L``/``L == E``, ``E is None|True|False``, ``E`` and ``not E`` (truthiness of the
value), ``abs(E - L) <|<= H``/``abs(L - E) ...``, where ``L``/``H`` are literals, optionally
through ``set/frozenset/tuple/list/sorted/dict/abs/max/min/float/int`` and number arithmetic.
"""

from __future__ import annotations

import ast
import dataclasses
import operator
import re
import secrets
from dataclasses import dataclass

MAX_VALUE_NODES = 1_000_000  # values are rebuilt on the host: bound their size
_CTORS = {"set": set, "frozenset": frozenset, "tuple": tuple, "list": list, "sorted": sorted, "dict": dict,
          "abs": abs, "max": max, "min": min, "float": float, "int": int}
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


class _NotHost(Exception):
    """An expression that cannot be evaluated on the host without running the program's code."""


def _host_value(node: ast.AST):
    """Value of a literal-only expression, computed here (no names but the safe constructors)."""
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CTORS \
            and not node.keywords and len(node.args) <= 3:
        args = [_host_value(a) for a in node.args]
        try:
            return _CTORS[node.func.id](*args)
        except (TypeError, ValueError, OverflowError) as e:
            raise _NotHost(str(e)) from None
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        a, b = _host_value(node.left), _host_value(node.right)
        if not all(type(x) in (int, float) for x in (a, b)) or any(abs(x) > 1e300 for x in (a, b)):
            raise _NotHost("arithmetic only on numbers")
        try:
            return _BINOPS[type(node.op)](a, b)
        except (ZeroDivisionError, OverflowError) as e:
            raise _NotHost(str(e)) from None
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [_host_value(e) for e in node.elts]
        return {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)](items)
    raise _NotHost(ast.dump(node)[:80])


@dataclass(frozen=True)
class Check:
    line: int
    kind: str  # eq | is | truthy | falsy | close
    expected: object = None
    op: str = ""  # close: "<" or "<="
    tol: float = 0.0
    where: str = ""  # enclosing test function, for messages

    @property
    def at(self) -> str:
        return f"tests line {self.line}" + (f" (in {self.where})" if self.where else "")


@dataclass(frozen=True)
class LiteralPlan:
    tests: bytes  # what the sandbox runs instead of the tests: imports + _cc_emit(i, E) lines
    checks: tuple[Check, ...]
    marker: str  # per-run record prefix (not a secret: records carry values, not a verdict)


def _abs_diff(node: ast.AST) -> tuple[ast.AST, object] | None:
    """(E, L) for ``abs(E - L)`` or ``abs(L - E)``."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "abs"
            and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], ast.BinOp)
            and isinstance(node.args[0].op, ast.Sub)):
        left, right = node.args[0].left, node.args[0].right
        for expr, lit in ((left, right), (right, left)):
            try:
                value = _host_value(lit)
            except _NotHost:
                continue
            if type(value) in (int, float):
                return expr, value
    return None


def _check_of(test: ast.expr, line: int) -> tuple[ast.expr, Check] | None:
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return test.operand, Check(line, "falsy")
    if not isinstance(test, ast.Compare) or len(test.ops) != 1:
        return test, Check(line, "truthy")
    op, left, right = test.ops[0], test.left, test.comparators[0]
    if isinstance(op, ast.Eq):
        for expr, lit in ((left, right), (right, left)):
            try:
                return expr, Check(line, "eq", _host_value(lit))
            except _NotHost:
                continue
        return None
    if isinstance(op, ast.Is) and isinstance(right, ast.Constant) and right.value in (None, True, False):
        return left, Check(line, "is", right.value)
    if isinstance(op, (ast.Lt, ast.LtE)):
        diff = _abs_diff(left)
        try:
            tol = _host_value(right)
        except _NotHost:
            return None
        if diff is not None and type(tol) in (int, float):
            return diff[0], Check(line, "close", diff[1], "<" if isinstance(op, ast.Lt) else "<=", float(tol))
    return None


def plan(tests: bytes) -> LiteralPlan | None:
    """The literal plan for ``tests``, or None when any statement is outside the supported forms."""
    try:
        text = tests.decode("utf-8")
        tree = ast.parse(text)
    except (UnicodeDecodeError, SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    lines = text.split("\n")
    out: dict[int, str] = {}
    checks: list[Check] = []

    def simple(stmt: ast.stmt, indent: str, where: str = "") -> bool:
        """Emit an import, docstring or supported assert at its line; False for anything else."""
        seg = ast.get_source_segment(text, stmt)
        if seg is None:
            return False
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            out[stmt.lineno] = indent + seg.replace("\n", " ")
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            out[stmt.lineno] = indent + "pass"
        elif isinstance(stmt, ast.Assert):
            found = _check_of(stmt.test, stmt.lineno)
            src = None if found is None else ast.get_source_segment(text, found[0])
            if src is None:
                return False
            out[stmt.lineno] = indent + f"_cc_emit({len(checks)}, ({' '.join(src.splitlines())}))"
            checks.append(dataclasses.replace(found[1], where=where))
        else:
            return False
        return True

    for stmt in tree.body:
        seg = ast.get_source_segment(text, stmt) or ""
        if simple(stmt, ""):
            continue
        if isinstance(stmt, ast.FunctionDef) and not stmt.decorator_list and stmt.body:
            # HumanEval's `def check(candidate): assert candidate(...) == ...`: same emits inside
            first = stmt.body[0].lineno
            if "\n" in seg.split(":", 1)[0] or first == stmt.lineno:
                return None  # one-line signature and body on lines of their own only
            out[stmt.lineno] = lines[stmt.lineno - 1]
            if not all(simple(b, " " * b.col_offset, stmt.name) for b in stmt.body):
                return None
        elif (isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets)
              and '"""' not in seg and "'''" not in seg):
            try:
                ast.literal_eval(stmt.value)  # METADATA = {...}: a literal, nothing of the program
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                return None
            out[stmt.lineno] = seg.replace("\n", " ")
        elif (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Name)
              and not stmt.value.keywords and all(isinstance(a, ast.Name) for a in stmt.value.args)):
            out[stmt.lineno] = seg  # check(entry_point)
        else:
            return None
    if not checks:
        return None
    body = "\n".join(out.get(i + 1, "") for i in range(len(lines)))
    return LiteralPlan(body.encode(), tuple(checks), f"__cc_value_{secrets.token_hex(8)}")


# Runs inside the sandbox, defined before the program's code: serializes exact builtin types
# only (subclasses and other objects become an opaque record the host fails).
EMIT_SOURCE = r'''
def _cc_make_emit(marker, _write=__import__("os").write, _sys=__import__("sys"), _srepr=str.__repr__,
                  _join=str.join, _type=type, _hex=hex, _fhex=float.hex, _bhex=bytes.hex, _items=dict.items, _exc=Exception,
                  _N=type(None), _b=bool, _i=int, _f=float, _c=complex, _s=str, _y=bytes, _l=list, _t=tuple,
                  _S=set, _F=frozenset, _d=dict, _sub=type.__subclasscheck__):
    # Every name used below is bound here, before the program's code runs: patching builtins or
    # modules afterwards cannot change how values are serialized. Output: nested lists of str
    # literals (the host reads them with ast.literal_eval).
    tags = {_l: "l", _t: "t", _S: "S", _F: "F"}

    def dumps(node):
        if _type(node) is _s:
            return _srepr(node)
        return "[" + _join(",", [dumps(c) for c in node]) + "]"

    def enc(x, depth, budget):
        budget[0] -= 1
        if depth > 200 or budget[0] < 0:
            return ["o", "value too deep or too large"]
        t = _type(x)
        if t is _N:
            return ["N"]
        if t is _b:
            return ["b", "1" if x is True else "0"]
        if t is _i:
            return ["i", _hex(x)]
        if t is _f:
            return ["f", _fhex(x)]
        if t is _c:
            return ["c", _fhex(_c.real.__get__(x)), _fhex(_c.imag.__get__(x))]
        if t is _s:
            return ["s", x]
        if t is _y:
            return ["y", _bhex(x)]
        if t in tags:
            return [tags[t], [enc(v, depth + 1, budget) for v in x]]
        if t is _d:
            return ["d", [[enc(k, depth + 1, budget), enc(v, depth + 1, budget)] for k, v in _items(x)]]
        # Subclasses (Counter, namedtuple, IntEnum...) as their builtin base, read through the
        # base type's own slots: an overridden __eq__/__iter__/__str__ is never called.
        try:
            if _sub(_i, t):
                return ["i", _hex(_i.__int__(x))]
            if _sub(_f, t):
                return ["f", _fhex(_f.__float__(x))]
            if _sub(_s, t):
                return ["s", _s.__str__(x)]
            if _sub(_y, t):
                return ["y", _bhex(x)]
            for base in (_l, _t, _S, _F):
                if _sub(base, t):
                    return [tags[base], [enc(v, depth + 1, budget) for v in base.__iter__(x)]]
            if _sub(_d, t):
                return ["d", [[enc(k, depth + 1, budget), enc(v, depth + 1, budget)] for k, v in _items(x)]]
        except _exc:
            pass
        try:  # for `assert E` / `assert not E` only: the object's own truthiness
            truth = "1" if x else "0"
        except _exc:
            truth = "?"
        return ["o", "object of type " + _srepr(_type.__getattribute__(t, "__qualname__")), truth]

    def emit(index, value):
        try:
            data = dumps(enc(value, 0, [MAX_NODES]))
        except _exc:
            data = dumps(["o", "value that cannot be serialized"])
        try:
            _sys.stdout.flush()
        except _exc:
            pass
        buf = ("\n%s:%d:%s\n" % (marker, index, data)).encode()
        while buf:
            buf = buf[_write(1, buf):]

    return emit
'''.replace("MAX_NODES", str(MAX_VALUE_NODES))


def _decode(x, budget: list[int]):
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError("value too large")
    tag = x[0]
    if tag == "N":
        return None
    if tag == "b":
        return x[1] == "1"
    if tag == "i":
        return int(x[1], 16)
    if tag == "f":
        return float.fromhex(x[1])
    if tag == "c":
        return complex(float.fromhex(x[1]), float.fromhex(x[2]))
    if tag == "s":
        if not isinstance(x[1], str):
            raise ValueError("bad str")
        return x[1]
    if tag == "y":
        return bytes.fromhex(x[1])
    if tag in ("l", "t", "S", "F"):
        items = [_decode(v, budget) for v in x[1]]
        return {"l": list, "t": tuple, "S": set, "F": frozenset}[tag](items)
    if tag == "d":
        return {_decode(k, budget): _decode(v, budget) for k, v in x[1]}
    if tag == "o":
        raise _Opaque(str(x[1]), x[2] if len(x) > 2 else "?")
    raise ValueError(f"unknown tag {tag!r}")


class _Opaque(Exception):
    pass


def _holds(check: Check, value) -> bool:
    if check.kind == "eq":
        return value == check.expected
    if check.kind == "is":
        return value is check.expected if check.expected is None else type(value) is bool and value == check.expected
    if check.kind == "truthy":
        return bool(value)
    if check.kind == "falsy":
        return not value
    if type(value) not in (int, float, bool):
        return False
    diff = abs(value - check.expected)
    return diff < check.tol if check.op == "<" else diff <= check.tol


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
            return out, f"{check.at}: no value reported (the program stopped the tests)"
        try:
            value = _decode(ast.literal_eval(values[i]), [MAX_VALUE_NODES])
        except _Opaque as e:
            if check.kind in ("truthy", "falsy") and e.args[1] in ("0", "1"):
                if (e.args[1] == "1") == (check.kind == "truthy"):
                    continue  # `assert E` on an object: its own truthiness, as in Python (nothing hidden)
                return out, f"{check.at}: assertion failed (got an {e.args[0]})"
            return out, (f"{check.at}: the value is an {e.args[0]}, which cannot be compared outside "
                         "the program (literal-expectation asserts need plain builtin values)")
        except (ValueError, TypeError, KeyError, IndexError, SyntaxError, MemoryError, RecursionError):
            return out, f"{check.at}: malformed value record"
        if not _holds(check, value):
            return out, f"{check.at}: assertion failed (got {_short(value)})"
    extra = set(values) - set(range(len(lp.checks)))
    if extra:
        return out, f"value records for asserts that do not exist: {sorted(extra)[:5]}"
    return out, None


def _short(value) -> str:
    r = repr(value)
    return r if len(r) <= 200 else r[:200] + "..."

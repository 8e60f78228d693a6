"""Program analysis of one Python function, for tests without a model.

Inputs come from two places: the docstring's own examples (doctests) and hypothesis
strategies derived from type hints (or from the type of a parameter's default value). The
reference implementation is then run *in the sandbox* on those inputs; every deterministic,
literal-valued result becomes an ``assert``. The tests therefore state what the code really
does, which is what makes the offline samples verified rather than guessed.
"""

from __future__ import annotations

import ast
import builtins
import doctest
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import hypothesis
import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

MARK = "@@CODECORPUS@@"
STDLIB_MODULES = frozenset(sys.stdlib_module_names)
BUILTIN_NAMES = frozenset(dir(builtins))
MAX_REPR = 300
PRINTABLE = st.characters(min_codepoint=32, max_codepoint=126)


@dataclass
class FuncInfo:
    name: str
    params: list[str]
    code: str  # the function, dedented
    imports: list[str]  # import lines, constants and same-file helpers the function uses
    doctest_calls: list[str] = field(default_factory=list)
    strategies: list[st.SearchStrategy] | None = None  # one per required positional param
    probe: bool = False  # no types: try a few small values of common types instead
    n_required: int = 0

    @property
    def program(self) -> str:
        """The self-contained answer: the imports it needs, then the function."""
        lines = "\n".join(x for x in self.imports if "\n" not in x and not x.startswith("def "))
        helpers = [x for x in self.imports if "\n" in x or x.startswith("def ")]
        return "\n\n\n".join([p for p in (lines, *helpers, self.code) if p]) + "\n"


class Unsupported(ValueError):
    """The function cannot get generated tests; ``str(exc)`` is a countable reason."""


def analyze(code: str, context: str = "") -> FuncInfo:
    """Parse a top-level function and work out how to call it; raises Unsupported(reason)."""
    try:
        mod = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise Unsupported("syntax_error") from exc
    funcs = [n for n in mod.body if isinstance(n, ast.FunctionDef)]
    if len(mod.body) != 1 or not funcs:
        raise Unsupported("not_a_function")
    fn = funcs[0]
    if fn.decorator_list:
        raise Unsupported("decorated")
    if any(isinstance(n, (ast.Yield, ast.YieldFrom, ast.Await)) for n in ast.walk(fn)):
        raise Unsupported("generator_or_async")
    if any(isinstance(n, (ast.Global, ast.Nonlocal)) for n in ast.walk(fn)):
        raise Unsupported("global_state")
    imports, imported = _imports(context)
    free = free_names(fn) - imported - BUILTIN_NAMES - {fn.name}
    if free:
        raise Unsupported("needs_module_globals")
    used_imports = _needed_context(fn, imports)
    if any(m not in STDLIB_MODULES for m in _imported_modules(used_imports)):
        raise Unsupported("needs_third_party_module")  # the sandbox has the standard library only
    args = fn.args
    if args.posonlyargs:
        params = [a.arg for a in args.posonlyargs + args.args]
    else:
        params = [a.arg for a in args.args]
    all_args = args.posonlyargs + args.args
    n_required = len(all_args) - len(args.defaults)
    required = all_args[:n_required]
    if any(a.arg in {"self", "cls"} for a in required):
        raise Unsupported("method")
    if any(d is None for d in args.kw_defaults):
        raise Unsupported("required_keyword_only")
    info = FuncInfo(name=fn.name, params=params, code=code.strip("\n"), imports=used_imports,
                    n_required=len(required))
    info.doctest_calls = _doctest_calls(ast.get_docstring(fn) or "", fn.name, imported)
    defaults = dict(zip([a.arg for a in all_args[n_required:]], args.defaults))
    strategies = []
    for a in required:
        s = strategy_for(a.annotation) if a.annotation is not None else None
        if s is None and a.arg in defaults:
            s = _strategy_from_value(defaults[a.arg])
        if s is None:
            strategies = None
            break
        strategies.append(s)
    info.strategies = strategies
    if info.strategies is None and len(required) <= 3:
        info.probe = True  # untyped: probe with small values of a few types, keep what runs
    elif not info.doctest_calls and info.strategies is None:
        raise Unsupported("no_inputs")  # no doctests and no type information for every parameter
    return info


# ----------------------------------------------------------------------------- names


def _imported_modules(lines: Sequence[str]) -> set[str]:
    """Top-level module names imported by ``lines`` (import statements among context entries)."""
    out: set[str] = set()
    for line in lines:
        if not line.startswith(("import ", "from ")):
            continue
        try:
            node = ast.parse(line).body[0]
        except (SyntaxError, IndexError):
            continue
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module.split(".")[0])
    return out


def _loaded_names(fn: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)} | {
        n.value.id for n in ast.walk(fn) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
    }


def free_names(fn: ast.FunctionDef) -> set[str]:
    """Names read but never bound inside the function (roughly: what it needs from its module)."""
    bound: set[str] = set()
    loaded: set[str] = set()
    for n in ast.walk(fn):
        if isinstance(n, ast.Name):
            (loaded if isinstance(n.ctx, ast.Load) else bound).add(n.id)
        elif isinstance(n, ast.arg):
            bound.add(n.arg)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(n.name)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in n.names)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            bound.add(n.name)
        elif isinstance(n, ast.MatchAs | ast.MatchStar) and n.name:
            bound.add(n.name)
    # annotations are not evaluated at call time only with `from __future__ import annotations`;
    # be conservative and require them to resolve too (they are in `loaded`).
    return loaded - bound


def _imports(context: str) -> tuple[list[tuple[str, set[str], ast.FunctionDef | None]], set[str]]:
    """Context entries (source, names they bind, helper node or None) and all bound names."""
    out: list[tuple[str, set[str], ast.FunctionDef | None]] = []
    try:
        mod = ast.parse(context)
    except (SyntaxError, ValueError):
        return [], set()
    for node in mod.body:
        if isinstance(node, ast.Import):
            names = {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != "__future__":
            if any(a.name == "*" for a in node.names):
                continue
            names = {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            names = {node.targets[0].id}  # a module constant the snippet miner kept as context
        elif isinstance(node, ast.FunctionDef):  # a same-file helper the function calls
            out.append((ast.get_source_segment(context, node) or ast.unparse(node), {node.name}, node))
            continue
        else:
            continue
        out.append((ast.unparse(node), names, None))
    return out, {n for _, names, _ in out for n in names}


def _needed_context(fn: ast.FunctionDef, entries: list) -> list[str]:
    """Context lines ``fn`` needs, following helpers' own needs (fixpoint), in context order."""
    needed = _loaded_names(fn)
    chosen: set[int] = set()
    changed = True
    while changed:
        changed = False
        for i, (_, names, node) in enumerate(entries):
            if i not in chosen and names & needed:
                chosen.add(i)
                changed = True
                if node is not None:
                    needed |= _loaded_names(node)
    return [entries[i][0] for i in sorted(chosen)]


def _doctest_calls(doc: str, name: str, imported: set[str]) -> list[str]:
    """Doctest expressions that call the function and need nothing else from the module."""
    try:
        examples = doctest.DocTestParser().get_examples(doc)
    except ValueError:
        return []
    calls = []
    for ex in examples:
        src = ex.source.strip()
        try:
            tree = ast.parse(src, mode="eval")
        except SyntaxError:
            continue
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        if name not in names or names - {name} - imported - BUILTIN_NAMES:
            continue
        calls.append(ast.unparse(tree))
    return list(dict.fromkeys(calls))


# ----------------------------------------------------------------------------- strategies

_SCALARS: dict[str, st.SearchStrategy] = {
    "int": st.integers(-1000, 1000),
    "float": st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    "str": st.text(PRINTABLE, max_size=12),
    "bool": st.booleans(),
    "bytes": st.binary(max_size=12),
}
_LISTS = {"list", "List", "Sequence", "Iterable", "Collection", "MutableSequence"}
_SETS = {"set", "Set", "frozenset", "FrozenSet", "AbstractSet"}
_DICTS = {"dict", "Dict", "Mapping", "MutableMapping"}


def strategy_for(ann: ast.expr) -> st.SearchStrategy | None:
    """A hypothesis strategy for a type-hint AST, or None if the type is not data we can make."""
    if isinstance(ann, ast.Constant) and isinstance(ann.value, str):  # "int" string annotations
        try:
            return strategy_for(ast.parse(ann.value, mode="eval").body)
        except SyntaxError:
            return None
    name = _dotted(ann)
    if name is not None:
        base = name.rsplit(".", 1)[-1]
        if base in _SCALARS:
            return _SCALARS[base]
        return st.lists(_SCALARS["int"], max_size=6) if base == "list" else None
    if isinstance(ann, ast.BinOp) and isinstance(ann.op, ast.BitOr):  # X | None
        parts = [p for p in (ann.left, ann.right) if not _is_none(p)]
        inner = [strategy_for(p) for p in parts]
        if any(s is None for s in inner):
            return None
        return st.one_of(*inner, st.none()) if len(parts) == 1 else st.one_of(*inner)
    if isinstance(ann, ast.Subscript):
        head = (_dotted(ann.value) or "").rsplit(".", 1)[-1]
        args = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
        if head == "Optional" and len(args) == 1:
            s = strategy_for(args[0])
            return None if s is None else st.one_of(st.none(), s)
        if head in _LISTS | _SETS and len(args) == 1:
            s = strategy_for(args[0])
            if s is None:
                return None
            return st.lists(s, max_size=6) if head in _LISTS else st.frozensets(s, max_size=6).map(set)
        if head in {"tuple", "Tuple"}:
            if len(args) == 2 and isinstance(args[1], ast.Constant) and args[1].value is Ellipsis:
                s = strategy_for(args[0])
                return None if s is None else st.lists(s, max_size=5).map(tuple)
            inner = [strategy_for(a) for a in args]
            return None if any(s is None for s in inner) else st.tuples(*inner)
        if head in _DICTS and len(args) == 2:
            k, v = strategy_for(args[0]), strategy_for(args[1])
            return None if k is None or v is None else st.dictionaries(k, v, max_size=4)
        if head == "Union":
            inner = [st.none() if _is_none(a) else strategy_for(a) for a in args]
            return None if any(s is None for s in inner) else st.one_of(*inner)
    return None


def _strategy_from_value(node: ast.expr) -> st.SearchStrategy | None:
    if isinstance(node, ast.Constant) and node.value is not None and not isinstance(node.value, complex):
        return _SCALARS.get(type(node.value).__name__)
    return None


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


PROBES: dict[str, tuple] = {
    "int": (0, 1, 7, -3, 12),
    "str": ("", "a", "hello world", "A-b_c 9", "x,y;z"),
    "list": ([], [3, 1, 2], [5, 5, -1, 0], [10]),
    "float": (0.5, -2.25, 10.0, 3.0),
}


def probe_calls(info: FuncInfo) -> list[str]:
    """Calls with all required arguments of one common type (ints, strs, lists or floats)."""
    return list(probe_groups(info))


def probe_groups(info: FuncInfo) -> dict[str, str]:
    """call -> probe type, so test cases can stick to the one type the function accepts."""
    out: dict[str, str] = {}
    for kind, values in PROBES.items():
        for i, _ in enumerate(values):
            args = [values[(i + k) % len(values)] for k in range(info.n_required)]
            out.setdefault(f"{info.name}({', '.join(repr(a) for a in args)})", kind)
    return out


def generated_calls(info: FuncInfo, n: int, seed: int) -> list[str]:
    """Up to ``n`` distinct call expressions from the hypothesis strategies (seeded, deterministic)."""
    if info.strategies is None:
        return probe_calls(info) if info.probe else []
    if not info.strategies:
        return [f"{info.name}()"]
    drawn: list[tuple] = []

    @hypothesis.seed(seed)
    @settings(max_examples=max(n * 3, 10), database=None, deadline=None, derandomize=False,
              suppress_health_check=list(HealthCheck), phases=[hypothesis.Phase.generate])
    @given(st.tuples(*info.strategies))
    def collect(args: tuple) -> None:
        drawn.append(args)

    collect()
    calls = []
    for args in drawn:
        call = f"{info.name}({', '.join(repr(a) for a in args)})"
        if call not in calls:
            calls.append(call)
        if len(calls) >= n:
            break
    return calls


# ----------------------------------------------------------------------------- harness + tests


def harness(info: FuncInfo, calls: Sequence[str]) -> str:
    """A program that runs each call twice and prints one JSON line per call (run in the sandbox)."""
    return (
        info.program
        + "\n\nimport json as _cc_json\n"
        + f"_CC_CALLS = {list(calls)!r}\n"
        + "for _cc_i, _cc_src in enumerate(_CC_CALLS):\n"
        + "    try:\n"
        + "        _cc_a = repr(eval(_cc_src))\n"
        + "        _cc_b = repr(eval(_cc_src))\n"
        + f"        print({MARK!r} + _cc_json.dumps({{'i': _cc_i, 'ok': True, 'repr': _cc_a, 'det': _cc_a == _cc_b}}))\n"
        + "    except Exception as _cc_e:\n"
        + f"        print({MARK!r} + _cc_json.dumps({{'i': _cc_i, 'ok': False, 'exc': type(_cc_e).__name__}}))\n"
    )


@dataclass
class Case:
    call: str
    expected: str | None  # repr of a literal result, or None when an exception is expected
    exception: str | None = None


def cases_from_output(stdout: str, calls: Sequence[str], max_cases: int = 6,
                      groups: dict[str, str] | None = None) -> list[Case]:
    """Turn harness output into test cases: deterministic, literal, short results only.

    With probe ``groups`` (call -> argument type), only the type with the most successful
    calls is kept, and TypeErrors are not tests (they only say the probe had the wrong type).
    """
    values: list[Case] = []
    raises: list[Case] = []
    for line in stdout.splitlines():
        if not line.startswith(MARK):
            continue
        try:
            rec = json.loads(line[len(MARK):])
            call = calls[int(rec["i"])]
        except (ValueError, KeyError, IndexError, TypeError):
            continue
        if rec.get("ok"):
            r = rec.get("repr", "")
            if (not rec.get("det") or len(r) > MAX_REPR or not _literal_roundtrip(r)
                    or _ADDRESS.search(r)):
                continue
            values.append(Case(call, r))
        elif rec.get("exc") in BUILTIN_NAMES and rec["exc"].endswith("Error"):
            raises.append(Case(call, None, rec["exc"]))
    if groups:
        tally: dict[str, int] = {}
        for c in values:
            tally[groups.get(c.call, "")] = tally.get(groups.get(c.call, ""), 0) + 1
        best = max(tally, key=lambda k: (tally[k], -list(PROBES).index(k) if k in PROBES else 0)) if tally else ""
        values = [c for c in values if groups.get(c.call, "") in {best, ""}]
        raises = [c for c in raises if groups.get(c.call, "") in {best, ""} and c.exception != "TypeError"]
    if not values or all(c.expected == "None" for c in values):
        return []  # nothing observable (procedures, printers): no meaningful test
    values = _spread(values, max_cases)
    return values[: max_cases - min(1, len(raises))] + raises[:1]


def _spread(values: list[Case], k: int) -> list[Case]:
    """Prefer cases with distinct results (a test that only ever sees one output is weak)."""
    seen: set[str] = set()
    first, rest = [], []
    for c in values:
        (rest if c.expected in seen else first).append(c)
        seen.add(c.expected or "")
    return (first + rest)[:k]


# A memory address inside a result (``<object at 0x7f...>`` turned into a string) is the same
# for two calls in one process but differs between processes: not a reproducible expectation.
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{8,}")


def _literal_roundtrip(r: str) -> bool:
    try:
        v = ast.literal_eval(r)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    if isinstance(v, float) and not math.isfinite(v):
        return False
    return repr(v) == r


def render_tests(cases: Sequence[Case]) -> str:
    """Plain-assert unit tests (no framework needed inside the sandbox)."""
    lines = []
    for c in cases:
        if c.exception:
            lines += ["try:", f"    {c.call}", f"except {c.exception}:", "    pass", "else:",
                      f"    raise AssertionError({('expected ' + c.exception + ' from ' + c.call)!r})"]
        elif isinstance(ast.literal_eval(c.expected), float):
            lines.append(f"assert abs({c.call} - {c.expected}) <= 1e-9 * max(1.0, abs({c.expected})), {c.call!r}")
        elif c.expected in {"None", "True", "False"}:
            lines.append(f"assert {c.call} is {c.expected}, {c.call!r}")
        else:
            lines.append(f"assert {c.call} == {c.expected}, {c.call!r}")
    return "\n".join(lines) + "\n"

"""Offline tests for Java static methods with simple parameter types.

Same idea as ``pyfunc``: generate inputs from the declared parameter types (seeded), run the
reference in the sandbox, record each result as a Java literal, and turn the results into
assertions. Only ``static`` methods whose parameter and return types are primitives,
``String`` or arrays of those qualify; methods that need the rest of their class fail to
compile in the sandbox and are skipped with that status.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from corpus.instruct import treesit
from corpus.instruct.pyfunc import MARK, Unsupported

SCALARS = {"int", "long", "short", "byte", "double", "float", "boolean", "char", "String"}
CLASS_NAME = "Solution"
_INTS = [0, 1, -1, 2, 3, 7, 10, 42, -13, 100, 255, 1000, -1024, 65535]
_STRS = ["", "a", "abc", "Hello", "hello world", "A1_b2", "x,y;z", "  pad  "]


@dataclass
class JavaMethod:
    name: str
    params: list[tuple[str, str]]  # (type, name)
    returns: str
    code: str  # the method, as written
    imports: list[str]

    @property
    def program(self) -> str:
        """The answer: imports plus the method inside ``public class Solution``."""
        body = "\n".join("    " + ln if ln.strip() else "" for ln in self.code.splitlines())
        head = "\n".join(self.imports)
        return (head + "\n\n" if head else "") + f"public class {CLASS_NAME} {{\n{body}\n}}\n"


def _supported(t: str) -> bool:
    t = t.strip()
    return t in SCALARS or (t.endswith("[]") and t[:-2].strip() in SCALARS - {"boolean"})


def analyze(code: str, context: str = "") -> JavaMethod:
    wrapped = f"class __W {{\n{code}\n}}"
    src = wrapped.encode("utf-8", "surrogatepass")
    root = treesit.parse(src, "java").root_node
    if root.has_error:
        raise Unsupported("syntax_error")
    methods = [n for n in treesit.walk(root) if n.type == "method_declaration"]
    if len(methods) != 1:
        raise Unsupported("not_a_method")
    m = methods[0]
    mods = next((c for c in m.children if c.type == "modifiers"), None)
    mod_text = treesit.text(mods, src) if mods is not None else ""
    if "static" not in mod_text.split():
        raise Unsupported("not_static")
    if "native" in mod_text.split() or "abstract" in mod_text.split() or m.child_by_field_name("body") is None:
        raise Unsupported("no_body")
    if m.child_by_field_name("type_parameters") is not None:
        raise Unsupported("generic")
    ret = treesit.text(m.child_by_field_name("type"), src)
    if not _supported(ret):
        raise Unsupported("unsupported_return_type")
    params = []
    for p in m.child_by_field_name("parameters").named_children:
        if p.type != "formal_parameter":
            raise Unsupported("varargs_or_receiver")
        ptype = treesit.text(p.child_by_field_name("type"), src)
        pname = treesit.text(p.child_by_field_name("name"), src)
        if not _supported(ptype):
            raise Unsupported("unsupported_parameter_type")
        params.append((re.sub(r"\s+", "", ptype), pname))
    if not params:
        raise Unsupported("no_parameters")
    _check_self_contained(m, src, {n for _, n in params})
    idents = set(re.findall(r"[A-Za-z_]\w*", code))
    imports = [ln.strip() for ln in context.splitlines()
               if ln.strip().startswith("import java.util") and " static " not in ln
               and ln.strip().rstrip(";").rsplit(".", 1)[-1] in idents]
    code_clean = re.sub(r"^\s*@\w+(\([^)]*\))?\s*$", "", code, flags=re.M).strip("\n")  # drop annotations
    return JavaMethod(treesit.text(m.child_by_field_name("name"), src), params, re.sub(r"\s+", "", ret),
                      code_clean, imports)


def _check_self_contained(m, src: bytes, params: set[str]) -> None:  # noqa: ANN001
    """Refuse methods that call sibling methods or read class constants (they cannot compile alone).

    A static check is far cheaper than a failed javac run (about a second each)."""
    name = treesit.text(m.child_by_field_name("name"), src)
    local: set[str] = set(params)
    for n in treesit.walk(m):
        if n.type in {"variable_declarator", "catch_formal_parameter", "enhanced_for_statement", "formal_parameter"}:
            ident = n.child_by_field_name("name")
            if ident is not None:
                local.add(treesit.text(ident, src))
        elif n.type == "lambda_expression":
            for c in treesit.walk(n.child_by_field_name("parameters") or n):
                if c.type == "identifier":
                    local.add(treesit.text(c, src))
    for n in treesit.walk(m):
        if n.type == "method_invocation" and n.child_by_field_name("object") is None:
            if treesit.text(n.child_by_field_name("name"), src) != name:
                raise Unsupported("needs_class_members")
        elif n.type == "identifier" and n.parent is not None and n.parent.type not in {
            "method_invocation", "field_access", "method_declaration", "formal_parameter", "variable_declarator",
            "catch_formal_parameter", "enhanced_for_statement", "labeled_statement", "break_statement",
            "continue_statement", "scoped_identifier", "lambda_expression", "inferred_parameters",
        }:
            word = treesit.text(n, src)
            if word not in local and not word[:1].isupper():
                raise Unsupported("needs_class_members")
            if word.isupper() and len(word) > 1 and word not in local:
                raise Unsupported("needs_class_members")  # a class constant such as MIN_RADIX
        elif n.type == "field_access":
            obj = n.child_by_field_name("object")
            if obj is not None and obj.type == "this":
                raise Unsupported("needs_class_members")


def literal(value: object, jtype: str) -> str:
    if jtype.endswith("[]"):
        inner = jtype[:-2]
        return f"new {jtype}{{{', '.join(literal(v, inner) for v in value)}}}"  # type: ignore[union-attr]
    if jtype == "String":
        return _jstr(str(value))
    if jtype == "char":
        return "'" + _jchar(str(value)) + "'"
    if jtype == "boolean":
        return "true" if value else "false"
    if jtype == "long":
        return f"{value}L"
    if jtype in {"double", "float"}:
        return f"{float(value)!r}" + ("f" if jtype == "float" else "")
    if jtype in {"short", "byte"}:
        return f"({jtype}) {value}"
    return str(value)


def _jchar(c: str) -> str:
    return {"'": "\\'", "\\": "\\\\", "\n": "\\n", "\t": "\\t", '"': '"'}.get(c, c)


def _jstr(s: str) -> str:
    return '"' + "".join({'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t"}.get(c, c) for c in s) + '"'


def _value(rng: random.Random, jtype: str) -> object:
    if jtype.endswith("[]"):
        return [_value(rng, jtype[:-2]) for _ in range(rng.randrange(0, 5))]
    if jtype in {"int", "long"}:
        return rng.choice(_INTS)
    if jtype in {"short", "byte"}:
        return rng.choice([v for v in _INTS if -128 <= v <= 127])
    if jtype in {"double", "float"}:
        return rng.choice([0.0, 1.0, -2.5, 3.25, 100.0, 0.125])
    if jtype == "boolean":
        return rng.random() < 0.5
    if jtype == "char":
        return rng.choice("aZ0 _-x9")
    return rng.choice(_STRS)


def generated_calls(m: JavaMethod, n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    calls: list[str] = []
    for _ in range(n * 4):
        args = ", ".join(literal(_value(rng, t), t) for t, _ in m.params)
        call = f"{CLASS_NAME}.{m.name}({args})"
        if call not in calls:
            calls.append(call)
        if len(calls) >= n:
            break
    return calls


_REPR = """
    static String s(String v) {
        if (v == null) return "null";
        StringBuilder b = new StringBuilder("\\"");
        for (char c : v.toCharArray()) {
            if (c == '"' || c == '\\\\') b.append('\\\\').append(c);
            else if (c == '\\n') b.append("\\\\n");
            else if (c == '\\t') b.append("\\\\t");
            else if (c < 32 || c > 126) b.append(String.format("\\\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }
    static String r(int v) { return Integer.toString(v); }
    static String r(long v) { return v + "L"; }
    static String r(short v) { return "(short) " + v; }
    static String r(byte v) { return "(byte) " + v; }
    static String r(double v) { return Double.isFinite(v) ? Double.toString(v) : "!nonfinite"; }
    static String r(float v) { return Float.isFinite(v) ? Float.toString(v) + "f" : "!nonfinite"; }
    static String r(boolean v) { return Boolean.toString(v); }
    static String r(char v) { return (v < 32 || v > 126 || v == '\\'' || v == '\\\\') ? "!char" : "'" + v + "'"; }
    static String r(String v) { return v == null ? "null" : s(v); }
    static String r(int[] v) { StringBuilder b = new StringBuilder("new int[]{"); for (int i = 0; i < v.length; i++) b.append(i > 0 ? ", " : "").append(v[i]); return b.append("}").toString(); }
    static String r(long[] v) { StringBuilder b = new StringBuilder("new long[]{"); for (int i = 0; i < v.length; i++) b.append(i > 0 ? ", " : "").append(v[i]).append("L"); return b.append("}").toString(); }
    static String r(String[] v) { StringBuilder b = new StringBuilder("new String[]{"); for (int i = 0; i < v.length; i++) b.append(i > 0 ? ", " : "").append(r(v[i])); return b.append("}").toString(); }
    static String r(char[] v) { return "!chararray"; }
    static String r(double[] v) { return "!doublearray"; }
    static String r(short[] v) { return "!shortarray"; }
    static String r(byte[] v) { return "!bytearray"; }
    static String r(float[] v) { return "!floatarray"; }
"""


def harness_tests(calls: Sequence[str]) -> str:
    """A test class that prints ``MARK i<TAB>literal`` for each call, twice-evaluated for determinism."""
    lines = []
    for i, c in enumerate(calls):
        lines.append(
            f"        try {{ String a = r({c}); String b = r({c}); "
            f'System.out.println("{MARK}{i}\\t" + (a.equals(b) ? a : "!nondeterministic")); }} '
            f'catch (Throwable t) {{ System.out.println("{MARK}{i}\\t!" + t.getClass().getSimpleName()); }}'
        )
    return "public class CcHarness {\n" + _REPR + "    public static void main(String[] args) {\n" + "\n".join(
        lines) + "\n    }\n}\n"


@dataclass
class JavaCase:
    call: str
    expected: str


def cases_from_output(stdout: str, calls: Sequence[str], max_cases: int = 6) -> list[JavaCase]:
    out: list[JavaCase] = []
    seen: set[str] = set()
    for line in stdout.splitlines():
        if not line.startswith(MARK) or "\t" not in line:
            continue
        idx, _, val = line[len(MARK):].partition("\t")
        try:
            call = calls[int(idx)]
        except (ValueError, IndexError):
            continue
        if val.startswith("!") or len(val) > 300:
            continue
        out.append(JavaCase(call, val))
        seen.add(val)
    distinct = [c for i, c in enumerate(out) if c.expected not in {x.expected for x in out[:i]}]
    rest = [c for c in out if c not in distinct]
    return (distinct + rest)[:max_cases] if len(out) >= 2 else []


def render_tests(m: JavaMethod, cases: Sequence[JavaCase]) -> str:
    """Statements the sandbox wraps into a test class's main: throw AssertionError on mismatch."""
    lines = []
    for c in cases:
        msg = _jstr(c.call)
        if m.returns.endswith("[]"):
            cond = f"!java.util.Arrays.equals({c.call}, {c.expected})"
        elif m.returns == "String":
            cond = f"!java.util.Objects.equals({c.call}, {c.expected})"
        elif m.returns in {"double", "float"}:
            cond = f"Math.abs({c.call} - {c.expected}) > 1e-9 * Math.max(1.0, Math.abs({c.expected}))"
        else:
            cond = f"{c.call} != {c.expected}"
        lines.append(f"if ({cond}) throw new AssertionError({msg});")
    return "\n".join(lines) + "\n"

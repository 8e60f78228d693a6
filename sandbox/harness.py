"""Turn (code, tests) into the source files of one run, with a per-run pass sentinel.

Why a sentinel: a program that exits 0 before its asserts ran (``os._exit(0)``,
``System.exit(0)``, ``process.exit(0)``) must not count as passed. Each harness prints a
random token only after every test ran; ``passed`` needs exit 0 *and* that token. Test
``main`` functions are renamed (via the tree-sitter tree, not regexes) and called from a
generated ``main`` that prints the token when they return normally.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from sandbox import verdict, verdict_js
from sandbox.static import parse


@dataclass
class Sources:
    files: dict[str, bytes]  # relative path under /src -> content
    entry: str  # main file (interpreted) or main class (Java)
    sentinel: bytes | None  # printed as b"\n" + sentinel + b"\n" when every test passed
    compile_files: list[str] = field(default_factory=list)
    go_test: bool = False  # Go: build with `go test -c` (tests are `func TestX(t *testing.T)`)
    literal: verdict.LiteralPlan | verdict_js.LiteralPlan | None = None  # expectations judged on the host


def new_sentinel() -> bytes:
    return f"__codecorpus_pass_{secrets.token_hex(16)}__".encode()


def _walk(node):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def _splice(src: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    for start, end, text in sorted(edits, reverse=True):
        src = src[:start] + text + src[end:]
    return src


def _c_main(src: bytes, grammar: str):
    """(name node, body node, n_params) of the top-level ``main`` definition, or None."""
    root = parse(src, grammar).root_node
    for node in root.children:
        if node.type != "function_definition":
            continue
        decl = node.child_by_field_name("declarator")
        while decl is not None and decl.type not in ("function_declarator",):
            decl = decl.child_by_field_name("declarator")
        if decl is None:
            continue
        name = decl.child_by_field_name("declarator")
        if name is None or src[name.start_byte : name.end_byte] != b"main":
            continue
        params = decl.child_by_field_name("parameters")
        n = 0
        if params is not None:
            n = sum(
                1
                for p in params.named_children
                if p.type in ("parameter_declaration", "variadic_parameter")
                and src[p.start_byte : p.end_byte].strip() != b"void"
            )
        return name, node.child_by_field_name("body"), n
    return None


def _rename_c_main(src: bytes, grammar: str, new_name: bytes, add_return: bool) -> tuple[bytes, int] | None:
    found = _c_main(src, grammar)
    if found is None:
        return None
    name, body, n = found
    edits = [(name.start_byte, name.end_byte, new_name)]
    if add_return and body is not None:
        # main may fall off its end (implicitly 0); a renamed function may not.
        edits.append((body.end_byte - 1, body.end_byte - 1, b"\nreturn 0;\n"))
    return _splice(src, edits), n


def c_family(code: bytes, tests: bytes | None, grammar: str, filename: str) -> Sources:
    if tests is None:
        return Sources({filename: code}, filename, None, [filename])
    sentinel = new_sentinel()
    tag = secrets.token_hex(6).encode()
    user_main = b"cc_user_main_" + tag
    renamed = _rename_c_main(tests, grammar, user_main, add_return=True)
    if renamed is None:
        # Bare statements: preprocessor lines stay at file scope, the rest becomes the body.
        lines = tests.split(b"\n")
        pre = b"\n".join(ln for ln in lines if ln.lstrip().startswith(b"#"))
        body = b"\n".join(ln for ln in lines if not ln.lstrip().startswith(b"#"))
        tests_part, n_params = pre + b"\nint " + user_main + b"(void) {\n" + body + b"\nreturn 0;\n}\n", 0
    else:
        tests_part, n_params = renamed
    if _c_main(code, grammar) is not None:
        code = _rename_c_main(code, grammar, b"cc_program_main_" + tag, add_return=True)[0]
    call = user_main + (b"(argc, argv)" if n_params >= 2 else b"()")
    header = b"#include <cstdio>\n" if grammar == "cpp" else b"#include <stdio.h>\n"
    tail = (
        b"\n" + header + b"int main(int argc, char **argv) {\n  (void)argc; (void)argv;\n"
        b"  int cc_rc = " + call + b";\n"
        b"  if (cc_rc == 0) { fflush(stdout); fputs(\"\\n" + sentinel + b"\\n\", stdout); fflush(stdout); }\n"
        b"  return cc_rc;\n}\n"
    )
    # The code precedes the tests in one translation unit: whatever it did to assert (NDEBUG,
    # its own assert or __assert_fail macros) is undone, and assert.h re-read, before the tests.
    reset = (b"\n#undef NDEBUG\n#undef assert\n#undef __assert_fail\n#undef __assert_perror_fail\n"
             b"#undef __assert\n#include <assert.h>\n")
    src = code + reset + b"#line 1 \"tests\"\n" + tests_part + tail
    return Sources({filename: src}, filename, sentinel, [filename])


_PY_RUNNER = """\
import sys as _sys
import types as _types
import builtins as _bi
%(emit_def)s
# What the program could patch before the tests run (builtins such as exec/compile/open/
# AssertionError, the unittest machinery) is snapshotted here and put back before the tests.
_exec, _compile, _open, _setattr, _delattr = exec, compile, open, setattr, delattr
_bi_dict = _bi.__dict__
_bi_saved = dict(_bi_dict)
_classes_saved = []
%(unittest_snapshot)s

def _cc_restore():
    _bi_dict.clear()
    _bi_dict.update(_bi_saved)
    _mod.__dict__["__builtins__"] = _bi_dict
    for _cls, _saved in _classes_saved:
        for _k in set(_cls.__dict__) - set(_saved):
            _delattr(_cls, _k)
        for _k, _v in _saved.items():
            if _cls.__dict__.get(_k, _cc_restore) is not _v:
                _setattr(_cls, _k, _v)
    if _classes_saved:
        _sys.modules["unittest"] = _ut


_mod = _types.ModuleType("solution")
_mod.__file__ = "/src/solution.py"
_sys.modules["solution"] = _mod
# Like the HumanEval/MBPP harnesses: the program is not __main__, so its demo/I-O block under
# `if __name__ == "__main__":` does not run; the tests share its namespace.
for _path in ("/src/solution.py", "/src/tests.py"):
    if _path == "/src/tests.py":
        _cc_restore()
        if _cc_emit is not None:
            _mod.__dict__["_cc_emit"] = _cc_emit  # literal mode: tests are _cc_emit(i, expr) lines
    with _open(_path, "rb") as _f:
        _exec(_compile(_f.read(), _path, "exec"), _mod.__dict__)
_cc_restore()
for _name, _obj in list(_mod.__dict__.items()):
    _code = getattr(_obj, "__code__", None)
    if (_name.startswith("test") and _code is not None and _code.co_argcount == 0
            and getattr(_obj, "__module__", None) == "solution"):
        _obj()
_cases = [o for o in _mod.__dict__.values() if isinstance(o, type) and o.__name__.startswith("Test")
          and any(b.__name__ == "TestCase" for b in o.__mro__)]
if _cases:
    _cc_restore()
    import unittest as _ut

    _suite = _ut.TestSuite(_ut.defaultTestLoader.loadTestsFromTestCase(c) for c in _cases)
    if not _ut.TextTestRunner(stream=_sys.stderr, verbosity=0).run(_suite).wasSuccessful():
        raise SystemExit(1)
_sys.stdout.flush()
_sys.stdout.write("\\n%(sentinel)s\\n")
_sys.stdout.flush()
"""


def python(code: bytes, tests: bytes | None) -> Sources:
    """Literal-expectation tests (``sandbox.verdict``) keep their expectations on the host;
    any other tests run in the program's namespace behind the sentinel."""
    if tests is None:
        return Sources({"main.py": code}, "main.py", None)
    sentinel = new_sentinel()
    lp = verdict.plan(tests)
    emit_def = "_cc_emit = None\n"
    if lp is not None:
        tests = lp.tests
        emit_def = verdict.EMIT_SOURCE + f"_cc_emit = _cc_make_emit({lp.marker!r})\ndel _cc_make_emit\n"
    snapshot = ""
    if b"unittest" in tests:  # only then: importing unittest costs ~15 ms
        snapshot = ("import unittest as _ut\n"
                    "for _cls in (_ut.TestCase, _ut.TestResult, _ut.TextTestResult, _ut.TextTestRunner, "
                    "_ut.TestSuite, _ut.TestLoader):\n"
                    "    _classes_saved.append((_cls, dict(_cls.__dict__)))\n")
    runner = _PY_RUNNER % {"sentinel": sentinel.decode(), "emit_def": emit_def, "unittest_snapshot": snapshot}
    files = {"solution.py": code, "tests.py": tests, "main.py": runner.encode()}
    return Sources(files, "main.py", sentinel, literal=lp)


def _is_module(code: bytes, grammar: str) -> bool:
    root = parse(code, grammar).root_node
    return any(n.type in ("import_statement", "export_statement") for n in root.children)


def javascript(code: bytes, tests: bytes | None, grammar: str = "javascript") -> Sources:
    module = _is_module(code, grammar) or (tests is not None and _is_module(tests, grammar))
    ext = {"javascript": ".mjs" if module else ".js", "typescript": ".mts" if module else ".ts"}[grammar]
    name = "main" + ext
    if tests is None:
        return Sources({name: code}, name, None, [name])
    sentinel = new_sentinel()
    lp = verdict_js.plan(tests) if grammar == "javascript" else None
    if lp is not None:  # literal expectations stay on the host (verdict_js.py)
        code, tests = lp.prelude + code, lp.tests
    # node:assert is taken (and frozen) before the code runs, and the tests' require() of it
    # is replaced by that copy: the code can neither patch it nor hook require to swap it.
    if module:
        guard = b"import __cc_assert from 'node:assert'; Object.freeze(__cc_assert); Object.freeze(__cc_assert.strict);\n"
    else:
        guard = (b"const __cc_assert = require('node:assert'); Object.freeze(__cc_assert); "
                 b"Object.freeze(__cc_assert.strict);\n")
        tests = _js_assert_requires(tests, grammar)
    code = guard + code
    # 'beforeExit' fires only when the event loop drains on its own: not on process.exit(),
    # not after an uncaught exception or unhandled rejection.
    tail = (
        b"\n;process.once('beforeExit', () => { process.stdout.write('\\n" + sentinel + b"\\n'); });\n"
    )
    # console.assert only logs; in tests (HumanEval-X's JS form) a false one must fail the run.
    prelude = (b"console.assert = function (cond, ...msg) { if (!cond) { throw new Error("
               b"'console.assert failed' + (msg.length ? ': ' + msg.join(' ') : '')); } };\n")
    return Sources({name: code + b"\n;\n" + prelude + tests + tail}, name, sentinel, [name], literal=lp)


_JS_ASSERT_MODULES = {"assert": b"__cc_assert", "node:assert": b"__cc_assert",
                      "assert/strict": b"__cc_assert.strict", "node:assert/strict": b"__cc_assert.strict"}


def _js_assert_requires(tests: bytes, grammar: str) -> bytes:
    """``require('node:assert')`` (and ``assert``, ``assert/strict``) in the tests -> the
    harness's frozen copy taken before the code ran."""
    edits = []
    for n in _walk(parse(tests, grammar).root_node):
        if n.type != "call_expression":
            continue
        fn, args = n.child_by_field_name("function"), n.child_by_field_name("arguments")
        if fn is None or args is None or tests[fn.start_byte:fn.end_byte] != b"require":
            continue
        strings = [a for a in args.named_children if a.type == "string"]
        if len(args.named_children) == 1 and strings:
            name = tests[strings[0].start_byte + 1:strings[0].end_byte - 1].decode("utf-8", "replace")
            if name in _JS_ASSERT_MODULES:
                edits.append((n.start_byte, n.end_byte, _JS_ASSERT_MODULES[name]))
    return _splice(tests, edits)


def bash(code: bytes, tests: bytes | None) -> Sources:
    if tests is None:
        return Sources({"main.sh": code}, "main.sh", None)
    sentinel = new_sentinel()
    return Sources({"main.sh": code + b"\n" + tests + b"\nprintf '\\n%s\\n' '" + sentinel + b"'\n"},
                   "main.sh", sentinel)


# --- Java ---------------------------------------------------------------------------------

def _java_classes(src: bytes) -> tuple[bytes | None, list[tuple[bytes, bool, bool]]]:
    """(package, [(class name, is_public, has static main)]) of top-level classes."""
    root = parse(src, "java").root_node
    package = None
    out = []
    for node in root.children:
        if node.type == "package_declaration":
            ident = [c for c in node.named_children if c.type in ("scoped_identifier", "identifier")]
            if ident:
                package = src[ident[0].start_byte : ident[0].end_byte]
        if node.type not in ("class_declaration", "enum_declaration", "record_declaration",
                             "interface_declaration"):
            continue
        name = node.child_by_field_name("name")
        mods = [c for c in node.children if c.type == "modifiers"]
        public = bool(mods) and b"public" in src[mods[0].start_byte : mods[0].end_byte].split()
        has_main = False
        body = node.child_by_field_name("body")
        for m in body.named_children if body is not None else []:
            if m.type == "method_declaration":
                mname = m.child_by_field_name("name")
                mm = [c for c in m.children if c.type == "modifiers"]
                if (mname is not None and src[mname.start_byte : mname.end_byte] == b"main" and mm
                        and b"static" in src[mm[0].start_byte : mm[0].end_byte].split()):
                    has_main = True
        out.append((src[name.start_byte : name.end_byte], public, has_main))
    return package, out


def _java_file(src: bytes, default: str) -> tuple[str, str | None, list[tuple[bytes, bool, bool]]]:
    """(path, package, classes): a public class names its file; otherwise the first class does
    (javac accepts any name then), so HumanEval-X's ``class Solution`` + ``public class Main``
    land in Solution.java and Main.java."""
    package, classes = _java_classes(src)
    public = [c[0] for c in classes if c[1]]
    base = (public[0].decode() if public else classes[0][0].decode() if classes else default) + ".java"
    pkg = package.decode() if package else None
    path = (pkg.replace(".", "/") + "/" + base) if pkg else base
    return path, pkg, classes


def _fqn(pkg: str | None, name: bytes) -> str:
    return (pkg + "." if pkg else "") + name.decode()


_JAVA_IMPORTS = b"import java.util.*;\nimport java.util.function.*;\nimport java.util.stream.*;\n"


def _java_code_imports(code: bytes, tests: bytes) -> bytes:
    """Tests without a package see the code's imports, as in the one-file layout that
    HumanEval-X assumes (its ``Main`` uses ``Arrays`` imported above ``Solution``); repeating an
    import is legal Java."""
    troot = parse(tests, "java").root_node
    if any(n.type == "package_declaration" for n in troot.children):
        return tests
    imports = [code[n.start_byte:n.end_byte] for n in parse(code, "java").root_node.children
               if n.type == "import_declaration"]
    return b"\n".join(imports) + b"\n" + tests if imports else tests


def _java_shadowing(code_classes: list[tuple[bytes, bool, bool]], tests: bytes) -> None:
    """ValueError when a class of the code hides a JDK class the tests use by simple name
    through an on-demand import (``java.lang`` or ``import java.util.*``): see jdk_names.py."""
    from sandbox import jdk_names

    root = parse(tests, "java").root_node
    packages, single = {"java.lang"}, set()
    for node in root.children:
        if node.type == "import_declaration":
            text = tests[node.start_byte:node.end_byte].decode("utf-8", "replace")
            name = text.removeprefix("import").strip().rstrip(";").strip()
            if name.startswith("static "):
                continue
            if name.endswith(".*"):
                packages.add(name[:-2].replace(" ", ""))
            else:
                single.add(name.rsplit(".", 1)[-1])
    declared = {c[0].decode() for c in code_classes} - single
    if not declared:
        return
    used = {tests[n.start_byte:n.end_byte].decode("utf-8", "replace") for n in _walk(root)
            if n.type in ("identifier", "type_identifier")}
    jdk = jdk_names.type_names()
    for name in sorted(declared & used):
        hidden = [f"{p}.{name}" for p in sorted(packages) if f"{p}.{name}" in jdk]
        if hidden:
            raise ValueError(f"the code declares class {name}, which hides {hidden[0]} that the tests use "
                             "(imported on demand); rename the class")


def java(code: bytes, tests: bytes | None) -> Sources:
    tag = secrets.token_hex(6)
    code_path, code_pkg, code_classes = _java_file(code, "Main")
    files = {code_path: code}
    if tests is None:
        mains = [c for c in code_classes if c[2]]
        entry = _fqn(code_pkg, (mains or code_classes or [(b"Main", True, True)])[0][0])
        return Sources(files, entry, None, list(files))
    sentinel = new_sentinel()
    _, tclasses = _java_classes(tests)
    if not tclasses:
        tname = f"CcTests_{tag}"
        tests = (_JAVA_IMPORTS + f"public class {tname} {{\n  public static void main(String[] args) throws Throwable {{\n".encode()
                 + tests + b"\n  }\n}\n")
    else:
        tests = _java_code_imports(code, tests)
    _java_shadowing(code_classes, tests)
    test_path, test_pkg, tclasses = _java_file(tests, f"CcTests_{tag}")
    if test_path in files:
        if any(c[1] for c in code_classes):
            raise ValueError(f"tests and code both define the public class of {test_path}; rename one")
        # The code's classes are package-private: any other file name is valid for them.
        files = {test_path.replace(".java", f"_code_{tag}.java"): files.pop(code_path)}
    files[test_path] = tests
    mains = [c for c in tclasses if c[2]]
    if not mains:
        raise ValueError("Java tests define classes but none has a static main(String[]) to run")
    target = _fqn(test_pkg, mains[0][0])
    harness = f"CcHarness_{tag}"
    files[harness + ".java"] = (
        f"public final class {harness} {{\n  public static void main(String[] args) throws Throwable {{\n"
        f"    {target}.main(args);\n    System.out.flush();\n"
        f"    System.out.print(\"\\n{sentinel.decode()}\\n\");\n    System.out.flush();\n  }}\n}}\n"
    ).encode()
    return Sources(files, harness, sentinel, list(files))


# --- Rust and Go --------------------------------------------------------------------------

def _rust_main(src: bytes):
    root = parse(src, "rust").root_node
    for node in root.children:
        if node.type == "function_item":
            name = node.child_by_field_name("name")
            if name is not None and src[name.start_byte : name.end_byte] == b"main":
                return name, node.child_by_field_name("return_type") is not None
    return None


def _rust_test_fns(src: bytes) -> tuple[bytes, list[tuple[bytes, bool, bool]]]:
    """Rewrite ``#[test]`` functions (also inside ``mod tests``) into plain ``pub(crate)`` ones.

    Why: rustc strips ``#[test]`` items outside ``--test`` builds, and libtest's own ``main``
    would exit 0 when the code calls ``process::exit(0)`` mid-test; calling the functions from
    the harness ``main`` keeps the pass sentinel. Returns (source, [(path, returns, should_panic)]).
    """
    root = parse(src, "rust").root_node
    edits: list[tuple[int, int, bytes]] = []
    found: list[tuple[bytes, bool, bool]] = []

    def visit(container, path: bytes) -> None:
        attrs: list = []
        for node in container.named_children:
            if node.type == "attribute_item":
                attrs.append(node)
                continue
            names = [src[a.start_byte:a.end_byte].replace(b" ", b"") for a in attrs]
            if node.type == "function_item" and b"#[test]" in names:
                for a, text in zip(attrs, names, strict=True):
                    if text in (b"#[test]", b"#[should_panic]") or text.startswith(b"#[should_panic("):
                        edits.append((a.start_byte, a.end_byte, b""))
                if not any(c.type == "visibility_modifier" for c in node.children):
                    edits.append((node.start_byte, node.start_byte, b"pub(crate) "))
                name = node.child_by_field_name("name")
                if b"#[ignore]" not in names and name is not None:
                    found.append((path + src[name.start_byte:name.end_byte],
                                  node.child_by_field_name("return_type") is not None,
                                  any(t.startswith(b"#[should_panic") for t in names)))
            elif node.type == "mod_item":
                body = node.child_by_field_name("body")
                name = node.child_by_field_name("name")
                if body is not None and name is not None:
                    if not any(c.type == "visibility_modifier" for c in node.children):
                        edits.append((node.start_byte, node.start_byte, b"pub(crate) "))
                    visit(body, path + src[name.start_byte:name.end_byte] + b"::")
            attrs = []

    visit(root, b"")
    return _splice(src, edits), found


def rust(code: bytes, tests: bytes | None) -> Sources:
    if tests is None:
        return Sources({"main.rs": code}, "main.rs", None, ["main.rs"])
    sentinel = new_sentinel()
    tag = secrets.token_hex(6).encode()
    user = b"cc_user_main_" + tag
    found = _rust_main(tests)
    test_fns: list[tuple[bytes, bool, bool]] = []
    if found is None:
        tests, test_fns = _rust_test_fns(tests)
    if found is None and test_fns:
        calls = []
        for path, returns, should_panic in test_fns:
            call = b"crate::" + path + b"()"
            if returns:
                call = b"if let Err(e) = " + call + b" { panic!(\"{:?}\", e); }"
            if should_panic:
                call = (b"if std::panic::catch_unwind(|| { " + call + b"; }).is_ok() { "
                        b"eprintln!(\"test " + path + b" did not panic\"); std::process::exit(1); }")
            calls.append(b"    " + call + b";\n")
        tests, returns = tests + b"\nfn " + user + b"() {\n" + b"".join(calls) + b"}\n", False
    elif found is None:
        tests, returns = b"fn " + user + b"() {\n" + tests + b"\n}\n", False
    else:
        name, returns = found
        tests = _splice(tests, [(name.start_byte, name.end_byte, user)])
    cm = _rust_main(code)
    if cm is not None:
        code = _splice(code, [(cm[0].start_byte, cm[0].end_byte, b"cc_program_main_" + tag)])
    call = (b"if let Err(e) = " + user + b"() { eprintln!(\"Error: {:?}\", e); std::process::exit(1); }"
            if returns else user + b"();")
    tail = (b"\n#[allow(dead_code)]\nfn main() {\n    " + call + b"\n    use std::io::Write;\n"
            b"    let mut o = std::io::stdout();\n    let _ = o.write_all(b\"\\n" + sentinel + b"\\n\");\n"
            b"    let _ = o.flush();\n}\n")
    return Sources({"main.rs": b"#![allow(dead_code, unused)]\n" + code + b"\n" + tests + tail},
                   "main.rs", sentinel, ["main.rs"])


def go(code: bytes, tests: bytes | None) -> Sources:
    if tests is None:
        return Sources({"main.go": code}, "main.go", None, ["main.go"])
    sentinel = new_sentinel()
    tag = secrets.token_hex(6).encode()
    user = b"ccUserMain" + tag
    root = parse(tests, "go").root_node
    edits = []
    for node in root.children:
        if node.type == "function_declaration":
            name = node.child_by_field_name("name")
            if name is not None and tests[name.start_byte : name.end_byte] == b"main":
                edits.append((name.start_byte, name.end_byte, user))
    if not edits:
        return _go_testing(code, tests, root, sentinel, tag)
    tests = _splice(tests, edits)
    croot = parse(code, "go").root_node
    code = _splice(code, [
        (n.child_by_field_name("name").start_byte, n.child_by_field_name("name").end_byte, b"ccProgramMain" + tag)
        for n in croot.children
        if n.type == "function_declaration" and n.child_by_field_name("name") is not None
        and code[n.child_by_field_name("name").start_byte : n.child_by_field_name("name").end_byte] == b"main"
    ])
    harness = (b"package main\n\nimport \"os\"\n\nfunc main() {\n\t" + user + b"()\n"
               b"\tos.Stdout.WriteString(\"\\n" + sentinel + b"\\n\")\n}\n")
    files = {"main.go": code, "cc_tests.go": tests, "cc_harness.go": harness}
    return Sources(files, "main.go", sentinel, list(files))


def _go_testing(code: bytes, tests: bytes, root, sentinel: bytes, tag: bytes) -> Sources:
    """Tests as a ``_test.go`` file of ``func TestX(t *testing.T)`` (HumanEval-X's form): built
    with ``go test -c``; a generated ``TestMain`` prints the sentinel only when ``m.Run()`` is 0."""
    names = [tests[n.child_by_field_name("name").start_byte:n.child_by_field_name("name").end_byte]
             for n in root.children if n.type == "function_declaration" and n.child_by_field_name("name")]
    if not any(n.startswith(b"Test") for n in names):
        raise ValueError("Go tests must be a file of package main with a func main() or func TestX(t *testing.T)")
    if b"TestMain" in names:
        raise ValueError("Go tests define TestMain; the harness needs its own (remove it)")
    harness = (b"package main\n\nimport (\n\t\"os\"\n\t\"testing\"\n)\n\nfunc TestMain(m *testing.M) {\n"
               b"\tcode := m.Run()\n\tif code == 0 {\n\t\tos.Stdout.WriteString(\"\\n" + sentinel + b"\\n\")\n\t}\n"
               b"\tos.Exit(code)\n}\n")
    files = {"main.go": code, f"cc_tests_{tag.decode()}_test.go": tests,
             f"cc_harness_{tag.decode()}_test.go": harness}
    return Sources(files, "main.go", sentinel, list(files), go_test=True)

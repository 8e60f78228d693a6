"""Snippet mining across languages, on real files plus small hand-made edge cases."""

from __future__ import annotations

from instruct_fixtures import java_rows, js_rows, python_rows

from corpus.instruct.snippets import MiningConfig, mine_file


def mine(code, lang, **kw):
    skips: dict[str, int] = {}
    return list(mine_file(code, lang, source_id="src", skips=skips, **kw)), skips


def test_python_stdlib_functions_classes_methods():
    r = python_rows(["textwrap.py"])[0]
    snips, skips = mine(r["content"], "python")
    kinds = {s.kind for s in snips}
    assert {"function", "method"} <= kinds
    assert skips["too_long"] >= 1  # the TextWrapper class itself is over max_lines
    box = 'class Box:\n    """Holds one value for later."""\n    def get(self):\n        """Return the value."""\n'
    (cls, meth), _ = mine(box + "        return self.v\n", "python")
    assert (cls.kind, cls.name, meth.kind, meth.parent) == ("class", "Box", "method", "Box")
    dedent = next(s for s in snips if s.name == "dedent")
    assert dedent.docstring.startswith("Remove any common leading whitespace")
    assert dedent.code.startswith("def dedent(text):") and dedent.signature == "def dedent(text)"
    assert "import re" in dedent.context
    wrap_method = next(s for s in snips if s.kind == "method" and s.parent == "TextWrapper")
    assert not wrap_method.code.startswith(" ")  # methods are dedented so they parse on their own
    assert skips.get("no_docstring", 0) > 0
    assert len({s.id for s in snips}) == len(snips)


def test_java_javadoc_methods():
    snips = [s for r in java_rows() for s in mine(r["content"], "java")[0]]
    bitcount = [s for s in snips if s.name == "bitCount" and s.parent == "Integer"]
    assert bitcount and "one-bits" in bitcount[0].docstring
    assert bitcount[0].code.lstrip().startswith(("@", "public"))
    assert not any(ln.strip().startswith("*") for ln in bitcount[0].docstring.splitlines())


def test_js_cpp_go_rust_doc_comments():
    snips = [s for r in js_rows() for s in mine(r["content"], "javascript")[0]]
    assert snips and all(s.language == "javascript" for s in snips)
    cpp = "// Adds two numbers and returns the sum.\nint add(int a, int b) {\n    int s = a + b;\n    return s;\n}\n"
    (s,), _ = mine(cpp, "cpp")
    assert s.name == "add" and s.docstring == "Adds two numbers and returns the sum."
    go = "package m\n\n// Max returns the larger of a and b.\nfunc Max(a, b int) int {\n\tif a > b {\n\t\treturn a\n\t}\n\treturn b\n}\n"
    (g,), _ = mine(go, "go")
    assert g.name == "Max" and g.context == "package m"
    rs = "/// Doubles the value given to it.\nfn double(x: i32) -> i32 {\n    let y = x * 2;\n    y\n}\n"
    (r,), _ = mine(rs, "rust")
    assert r.name == "double" and r.docstring == "Doubles the value given to it."


def test_edge_cases_are_skipped_with_reasons():
    code = (
        '"""Module."""\n'
        "def outer(x):\n    '''Outer function with a nested helper.'''\n"
        "    def inner(y):\n        '''Nested helper function here.'''\n        return y\n    return inner(x)\n\n"
        "def nodoc(a):\n    return a\n    pass\n\n"
        "def short(a):\n    '''Too short.'''\n\n"
        "def licensed(a):\n    '''Copyright 2020 ACME, all rights reserved.'''\n    return a\n    pass\n"
    )
    snips, skips = mine(code, "python")
    assert [s.name for s in snips] == ["outer"]
    assert skips["nested_function"] == 1 and skips["no_docstring"] >= 1
    assert skips["boilerplate_doc"] == 1
    huge, skips = mine("x = 1\n" * 10, "python", cfg=MiningConfig(max_file_bytes=10))
    assert huge == [] and skips == {"file_too_large": 1}


def test_broken_file_still_yields_clean_definitions():
    code = "def good(a, b):\n    '''Add two numbers together.'''\n    return a + b\n\n\ndef bad(:\n    return\n"
    snips, skips = mine(code, "python")
    assert [s.name for s in snips] == ["good"]
    assert skips["file_has_parse_errors"] == 1


def test_unknown_language_counted():
    snips, skips = mine("whatever", "cobol")
    assert snips == [] and skips == {"no_miner:cobol": 1}

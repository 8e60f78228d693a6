"""Snippet mining: functions, classes and methods that carry documentation.

A documented definition is the raw material of instruction synthesis: its docstring (or
doc comment) says what the code does. tree-sitter finds definitions in many languages with
one walk; the language table below is the only per-language knowledge. Nested functions are
skipped (they depend on their enclosing scope); so are definitions without a real doc.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import re
import textwrap
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import pyarrow as pa

from corpus.instruct import treesit

# definition node type -> kind, per language
DEFINITIONS: dict[str, dict[str, str]] = {
    "python": {"function_definition": "function", "class_definition": "class"},
    "java": {"method_declaration": "function", "constructor_declaration": "function",
             "class_declaration": "class", "interface_declaration": "class", "enum_declaration": "class"},
    "javascript": {"function_declaration": "function", "generator_function_declaration": "function",
                   "method_definition": "function", "class_declaration": "class"},
    "typescript": {"function_declaration": "function", "method_definition": "function",
                   "class_declaration": "class", "interface_declaration": "class"},
    "c": {"function_definition": "function"},
    "cpp": {"function_definition": "function", "class_specifier": "class", "struct_specifier": "class"},
    "go": {"function_declaration": "function", "method_declaration": "function"},
    "rust": {"function_item": "function", "struct_item": "class", "trait_item": "class"},
}
CLASS_TYPES = {t for spec in DEFINITIONS.values() for t, k in spec.items() if k == "class"} | {"impl_item"}
FUNCTION_TYPES = {t for spec in DEFINITIONS.values() for t, k in spec.items() if k == "function"}
COMMENT_TYPES = {"comment", "line_comment", "block_comment"}
WRAPPERS = {"export_statement", "decorated_definition", "template_declaration"}
CONTEXT_TYPES = {
    "python": {"import_statement", "import_from_statement", "future_import_statement"},
    "java": {"import_declaration"},
    "c": {"preproc_include"},
    "cpp": {"preproc_include", "using_declaration"},
    "go": {"import_declaration"},
    "rust": {"use_declaration"},
    "javascript": {"import_statement"},
    "typescript": {"import_statement"},
}
BOILERPLATE_DOC = re.compile(r"copyright|licen[cs]e|all rights reserved|@generated|auto-?generated", re.I)

SNIPPET_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source_id", pa.string()),
        pa.field("repo", pa.string()),
        pa.field("path", pa.string()),
        pa.field("language", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("name", pa.string()),
        pa.field("signature", pa.string()),
        pa.field("docstring", pa.large_string()),
        pa.field("code", pa.large_string()),
        pa.field("context", pa.large_string()),
        pa.field("parent", pa.string()),
        pa.field("start_line", pa.int32()),
        pa.field("n_lines", pa.int32()),
    ]
)


@dataclass(frozen=True)
class MiningConfig:
    min_lines: int = 3
    max_lines: int = 120
    max_bytes: int = 6_000
    max_file_bytes: int = 1_000_000
    min_doc_words: int = 3


@dataclass
class Snippet:
    id: str
    source_id: str
    repo: str
    path: str
    language: str
    kind: str  # function | method | class
    name: str
    signature: str
    docstring: str
    code: str
    context: str
    parent: str
    start_line: int
    n_lines: int

    def row(self) -> dict:
        return asdict(self)


def snippet_id(source_id: str, start_byte: int, name: str) -> str:
    return hashlib.sha256(f"{source_id}\x00{start_byte}\x00{name}".encode()).hexdigest()[:32]


def mine_file(
    content: str, language: str, *, source_id: str, repo: str = "", path: str = "",
    cfg: MiningConfig = MiningConfig(), skips: dict[str, int] | None = None,
) -> Iterator[Snippet]:
    """Documented definitions of one file; skip reasons are added to ``skips``."""
    skips = skips if skips is not None else {}

    def skip(reason: str) -> None:
        skips[reason] = skips.get(reason, 0) + 1

    spec = DEFINITIONS.get(language)
    if spec is None:
        skip(f"no_miner:{language}")
        return
    src = content.encode("utf-8", "surrogatepass")
    if len(src) > cfg.max_file_bytes:
        skip("file_too_large")
        return
    tree = treesit.parse(src, language)
    root = tree.root_node
    if root.has_error:
        skip("file_has_parse_errors")  # still mine the definitions that parsed cleanly
    context = _context(root, src, language)
    helpers = _python_helpers(root, src) if language == "python" else {}
    for node in treesit.walk(root):
        kind = spec.get(node.type)
        if kind is None:
            continue
        if node.has_error:
            skip("definition_parse_error")
            continue
        parent_class, nested = _enclosing(node)
        if nested:
            skip("nested_function")
            continue
        if kind == "function" and parent_class is not None:
            kind = "method"
        anchor = node
        while anchor.parent is not None and anchor.parent.type in WRAPPERS:
            anchor = anchor.parent
        doc = _python_docstring(node, src) if language == "python" else _doc_comment(anchor, src)
        if not doc or len(doc.split()) < cfg.min_doc_words:
            skip("no_docstring")
            continue
        if BOILERPLATE_DOC.search(doc[:300]):
            skip("boilerplate_doc")
            continue
        code = _dedented(anchor, src)
        n_lines = code.count("\n") + 1
        if n_lines < cfg.min_lines:
            skip("too_short")
            continue
        if n_lines > cfg.max_lines or len(code.encode("utf-8", "surrogatepass")) > cfg.max_bytes:
            skip("too_long")
            continue
        name = _name(node, src)
        if not name:
            skip("anonymous")
            continue
        yield Snippet(
            id=snippet_id(source_id, node.start_byte, name),
            source_id=source_id,
            repo=repo,
            path=path,
            language=language,
            kind=kind,
            name=name,
            signature=_signature(node, src, language),
            docstring=doc,
            code=code,
            context=_with_helpers(context, code, name, helpers) if helpers and kind == "function" else context,
            parent=parent_class or "",
            start_line=anchor.start_point[0] + 1,
            n_lines=n_lines,
        )


def _enclosing(node) -> tuple[str | None, bool]:  # noqa: ANN001
    """(name of the enclosing class or None, whether the node is nested inside a function)."""
    p = node.parent
    while p is not None:
        if p.type in FUNCTION_TYPES:
            return None, True
        if p.type in CLASS_TYPES:
            n = p.child_by_field_name("name") or p.child_by_field_name("type")
            return (n.text.decode("utf-8", "replace") if n is not None else "?"), False
        p = p.parent
    return None, False


def _python_docstring(node, src: bytes) -> str:  # noqa: ANN001
    body = node.child_by_field_name("body")
    if body is None or not body.named_children:
        return ""
    first = body.named_children[0]
    if first.type == "expression_statement" and first.named_children:
        first = first.named_children[0]
    if first.type != "string":
        return ""
    raw = treesit.text(first, src)
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = raw.strip("\"'rRbBuUfF")
    return inspect.cleandoc(value) if isinstance(value, str) else ""


_COMMENT_PREFIX = re.compile(r"^\s*(/\*\*+|/\*!?|\*/|\*|///?!?|//!|#)\s?")


def _doc_comment(anchor, src: bytes) -> str:  # noqa: ANN001
    """The run of comments directly above the definition (at most one blank line between)."""
    parts = []
    cur = anchor
    prev = anchor.prev_sibling
    while prev is not None and prev.type in COMMENT_TYPES and cur.start_point[0] - prev.end_point[0] <= 1:
        parts.append(treesit.text(prev, src))
        cur, prev = prev, prev.prev_sibling
    if not parts:
        return ""
    lines = []
    for block in reversed(parts):
        for line in block.splitlines():
            line = _COMMENT_PREFIX.sub("", line).rstrip()
            line = line[:-2].rstrip() if line.endswith("*/") else line
            lines.append(line)
    return "\n".join(lines).strip()


def _dedented(anchor, src: bytes) -> str:  # noqa: ANN001
    col = anchor.start_point[1]
    line_start = src.rfind(b"\n", 0, anchor.start_byte) + 1
    raw = src[line_start : anchor.end_byte].decode("utf-8", "replace")
    if col and raw[:col].strip() == "":
        return textwrap.dedent(raw).strip("\n")
    return src[anchor.start_byte : anchor.end_byte].decode("utf-8", "replace").strip("\n")


def _name(node, src: bytes) -> str:  # noqa: ANN001
    n = node.child_by_field_name("name")
    if n is not None:
        return treesit.text(n, src)
    decl = node.child_by_field_name("declarator")  # C/C++: int *name(args)
    while decl is not None:
        inner = decl.child_by_field_name("declarator")
        if inner is None:
            return treesit.text(decl, src) if decl.type in {"identifier", "field_identifier",
                                                           "qualified_identifier", "destructor_name",
                                                           "operator_name"} else ""
        decl = inner
    return ""


def _signature(node, src: bytes, language: str) -> str:  # noqa: ANN001
    body = node.child_by_field_name("body")
    end = body.start_byte if body is not None else node.end_byte
    sig = src[node.start_byte : end].decode("utf-8", "replace").strip()
    if language == "python":
        sig = sig.rstrip(":").rstrip()
    return re.sub(r"\s+", " ", sig)[:500]


def _context(root, src: bytes, language: str) -> str:  # noqa: ANN001
    """Top-level import/include lines: what a definition may need to run on its own."""
    kinds = CONTEXT_TYPES.get(language, set())
    lines = []
    for child in root.children:
        if child.type in kinds:
            t = treesit.text(child, src).strip()
            if language == "python" and t.startswith("from ."):
                continue  # relative imports cannot run outside their package
            lines.append(t)
        elif language == "python" and child.type in {"expression_statement", "assignment"} and _is_constant(child, src):
            lines.append(treesit.text(child, src).strip())
        elif language == "go" and child.type == "package_clause":
            lines.append(treesit.text(child, src).strip())
    return "\n".join(lines)


def _is_constant(stmt, src: bytes) -> bool:  # noqa: ANN001
    """``NAME = <expression>`` on one short line at module level (a constant, a compiled regex...):
    context for a function that reads it. It is only used when referenced, and only ever runs
    in the sandbox."""
    if stmt.type == "expression_statement" and (len(stmt.named_children) != 1
                                                 or stmt.named_children[0].type != "assignment"):
        return False
    t = treesit.text(stmt, src)
    if len(t) > 300 or "\n" in t.strip():
        return False
    try:
        node = ast.parse(t).body[0]
    except (SyntaxError, ValueError, IndexError):
        return False
    return isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_HELPERS, MAX_HELPER_LINES = 4, 120


def _python_helpers(root, src: bytes) -> dict[str, str]:  # noqa: ANN001
    """Small undecorated top-level functions of a Python file, by name (context for callers)."""
    out = {}
    for child in root.children:
        if child.type == "function_definition":
            n = child.child_by_field_name("name")
            code = treesit.text(child, src)
            if n is not None and code.count("\n") < 40:
                out[treesit.text(n, src)] = code
    return out


def _with_helpers(context: str, code: str, name: str, helpers: dict[str, str]) -> str:
    """``context`` plus the same-file helper functions ``code`` calls (transitively, bounded), so a
    function that delegates to a private helper can still run on its own."""
    wanted: list[str] = []
    frontier = [code]
    while frontier and len(wanted) < MAX_HELPERS:
        for ident in dict.fromkeys(_IDENT.findall(frontier.pop())):
            if ident in helpers and ident != name and ident not in wanted and len(wanted) < MAX_HELPERS:
                wanted.append(ident)
                frontier.append(helpers[ident])
    if not wanted or sum(helpers[w].count("\n") + 1 for w in wanted) > MAX_HELPER_LINES:
        return context
    return "\n\n".join([context] + [helpers[w] for w in wanted]) if context else "\n\n".join(helpers[w] for w in wanted)

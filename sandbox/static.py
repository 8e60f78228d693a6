"""Static check before anything runs: tree-sitter parse; an error node means ``syntax_error``.

Cheap (sub-millisecond for typical snippets) and catches truncated or malformed model output
without spending a sandbox run on it. Parsers are cached per thread (tree-sitter parsers are
not thread-safe).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

_local = threading.local()
_NUL = bytes(1)


@dataclass(frozen=True)
class ParseIssue:
    line: int  # 1-based
    column: int  # 1-based
    kind: str  # "error" or "missing"
    text: str

    def describe(self) -> str:
        what = f"missing {self.text!r}" if self.kind == "missing" else f"unexpected {self.text!r}"
        return f"line {self.line}, column {self.column}: {what}"


def parser_for(grammar: str):
    cache = getattr(_local, "parsers", None)
    if cache is None:
        cache = _local.parsers = {}
    p = cache.get(grammar)
    if p is None:
        from tree_sitter_language_pack import get_parser

        p = cache[grammar] = get_parser(grammar)
    return p


PARSE_TIMEOUT_S = 5.0  # per parse; with the API's source cap (1 MiB) a parse takes ~1 s, ~70 MB
_CHUNK = 1 << 16


class ParseLimit(Exception):
    """A parse ran past ``PARSE_TIMEOUT_S``: the source is too big or too pathological to check."""


def parse(source: bytes, grammar: str, timeout_s: float = PARSE_TIMEOUT_S):
    """The tree-sitter tree of ``source``; raises ParseLimit past ``timeout_s``.

    Why a deadline: sources come from models and crawls, and the parse runs in the host process.
    Small sources take the direct path (tree-sitter only honours cancellation when reading
    through a callback)."""
    p = parser_for(grammar)
    if len(source) <= _CHUNK:
        return p.parse(source)
    deadline = time.monotonic() + timeout_s
    try:
        return p.parse(lambda off, _point: source[off:off + _CHUNK],
                       progress_callback=lambda *_: time.monotonic() > deadline)
    except ValueError:  # tree-sitter: "Parsing failed" once the callback cancels it
        raise ParseLimit(f"tree-sitter gave up on {len(source)} bytes of {grammar} after {timeout_s:g} s "
                         "(sandbox.static.PARSE_TIMEOUT_S)") from None


def first_issue(source: bytes, grammar: str) -> ParseIssue | None:
    """The first ERROR or MISSING node in document order, or None when the parse is clean."""
    tree = parse(source, grammar)
    root = tree.root_node
    if not root.has_error:
        return None
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_missing or node.type == "ERROR":
            row, col = node.start_point
            kind = "missing" if node.is_missing else "error"
            text = node.type if node.is_missing else source[node.start_byte : node.end_byte][:40].decode(
                "utf-8", "replace"
            )
            return ParseIssue(row + 1, col + 1, kind, text)
        if node.has_error:
            stack.extend(reversed(node.children))
    return ParseIssue(1, 1, "error", "")


def check(source: str | bytes, grammar: str) -> str | None:
    """None when ``source`` parses cleanly, else a one-line reason (for Result.message)."""
    if isinstance(source, str):
        try:
            data = source.encode("utf-8")
        except UnicodeEncodeError as e:
            return f"source is not valid Unicode (unpaired surrogate at character {e.start})"
    else:
        data = source
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            return f"source is not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})"
    if _NUL in data:
        return f"source contains a NUL byte at offset {data.index(_NUL)}"
    issue = first_issue(data, grammar)
    return None if issue is None else f"{grammar} parse error at {issue.describe()}"

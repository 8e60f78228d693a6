"""Thin tree-sitter helpers shared by snippet mining, parse checks, mutation and FIM.

Parsers come from tree_sitter_language_pack and are cached per thread (a Parser is not
thread-safe). Project language names map to grammar names here, in one place.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from tree_sitter import Node, Tree
from tree_sitter_language_pack import get_parser

GRAMMAR = {
    "python": "python",
    "java": "java",
    "javascript": "javascript",
    "typescript": "typescript",
    "c": "c",
    "cpp": "cpp",
    "go": "go",
    "rust": "rust",
    "shell": "bash",
    "csharp": "csharp",
    "php": "php",
    "ruby": "ruby",
}

_local = threading.local()


def supported(language: str) -> bool:
    return language in GRAMMAR


def parse(code: str | bytes, language: str) -> Tree:
    cache = getattr(_local, "parsers", None)
    if cache is None:
        cache = _local.parsers = {}
    parser = cache.get(language)
    if parser is None:
        if language not in GRAMMAR:
            raise ValueError(f"no tree-sitter grammar configured for language {language!r}")
        parser = cache[language] = get_parser(GRAMMAR[language])
    data = code.encode("utf-8", "surrogatepass") if isinstance(code, str) else code
    return parser.parse(data)


def parses_cleanly(code: str, language: str) -> bool:
    """True if tree-sitter finds no ERROR / MISSING node (the cheap parse check)."""
    if not supported(language):
        return True
    if not parse(code, language).root_node.has_error:
        return True
    if language == "java":  # a member (constructor, method) parses inside a class body
        return not parse(f"class __W {{\n{code}\n}}", language).root_node.has_error
    return False


def walk(node: Node) -> Iterator[Node]:
    """Pre-order traversal without recursion (deep ASTs do not hit the recursion limit)."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def text(node: Node, src: bytes) -> str:
    return src[node.start_byte : node.end_byte].decode("utf-8", "replace")

"""Jupyter notebooks as source files: code cells joined in order, markdown cells as comments.

The notebook's language comes from its metadata (``language_info.name`` or
``kernelspec.language``); outputs are dropped, as in the Stack's notebook subset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# Line-comment prefix per language id (languages.yaml ids); unknown languages use "#".
COMMENT_PREFIX = {
    "python": "#", "r": "#", "julia": "#", "ruby": "#", "shell": "#", "perl": "#", "powershell": "#",
    "scala": "//", "java": "//", "kotlin": "//", "javascript": "//", "typescript": "//", "go": "//",
    "rust": "//", "c": "//", "cpp": "//", "csharp": "//", "fsharp": "//", "swift": "//", "dart": "//",
    "groovy": "//", "haskell": "--", "lua": "--", "sql": "--", "matlab": "%", "ocaml": "(*",
    "clojure": ";;", "common-lisp": ";;", "racket": ";;", "scheme": ";;", "elixir": "#", "erlang": "%",
    "mathematica": "(*", "sas": "*", "stata": "//", "prolog": "%",
}
_KERNEL_ALIASES = {
    "python3": "python", "python2": "python", "ipython": "python", "ir": "r", "bash": "shell", "sh": "shell",
    "c++": "cpp", "c++11": "cpp", "c++14": "cpp", "c++17": "cpp", "xcpp17": "cpp", "c#": "csharp",
    "f#": "fsharp", "javascript": "javascript", "node": "javascript", "typescript": "typescript",
    "wolfram language": "mathematica", "octave": "matlab", "powershell": "powershell",
}


class NotebookError(ValueError):
    """The file is not a readable nbformat-4 (or 3) notebook; message says why."""


@dataclass(frozen=True)
class Notebook:
    language: str
    source: str
    code_cells: int
    markdown_cells: int


def _cell_source(cell: dict) -> str:
    src = cell.get("source", cell.get("input", ""))
    if isinstance(src, list):
        return "".join(s for s in src if isinstance(s, str))
    if isinstance(src, str):
        return src
    raise NotebookError(f"cell source is {type(src).__name__}, expected str or list of str")


def _language(meta: dict) -> str:
    for raw in (
        (meta.get("language_info") or {}).get("name"),
        (meta.get("kernelspec") or {}).get("language"),
        (meta.get("kernelspec") or {}).get("name"),
    ):
        if isinstance(raw, str) and raw.strip():
            key = raw.strip().lower()
            return _KERNEL_ALIASES.get(key, key)
    return "python"  # nbformat's default kernel


def parse_notebook(text: str) -> Notebook:
    """Convert notebook JSON to one source file; raises NotebookError when malformed."""
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(f"not JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(nb, dict):
        raise NotebookError("top level is not a JSON object")
    cells = nb.get("cells")
    if cells is None and isinstance(nb.get("worksheets"), list):  # nbformat 3
        cells = [c for ws in nb["worksheets"] if isinstance(ws, dict) for c in ws.get("cells", [])]
    if not isinstance(cells, list):
        raise NotebookError("no 'cells' list")
    meta = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    lang = _language(meta)
    prefix = COMMENT_PREFIX.get(lang, "#")
    chunks: list[str] = []
    n_code = n_md = 0
    for cell in cells:
        if not isinstance(cell, dict):
            raise NotebookError("a cell is not a JSON object")
        kind = cell.get("cell_type")
        src = _cell_source(cell).rstrip()
        if not src:
            continue
        if kind == "code":
            n_code += 1
            chunks.append(src)
        elif kind in ("markdown", "raw", "heading"):
            n_md += 1
            chunks.append("\n".join(f"{prefix} {line}".rstrip() for line in src.splitlines()))
    if n_code == 0:
        raise NotebookError("no non-empty code cells")
    return Notebook(lang, "\n\n".join(chunks) + "\n", n_code, n_md)

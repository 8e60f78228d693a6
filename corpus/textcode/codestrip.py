"""Code removal for general text: code must enter the corpus only through the code path.

Each line is classified code-like or prose by cheap lexical evidence (REPL / shell
prompts, statement keywords at line start, statement terminators and braces, dense
operator punctuation, identifier-call patterns, fenced Markdown blocks). Code-like lines
and the blank lines inside code blocks are removed; if code was more than
``max_code_ratio`` of the characters, the whole document is dropped instead (what is
left of a mostly-code page is not coherent prose).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PROMPT = re.compile(r"^\s*(>>>|\.\.\.\s|\$ |# \w+ |C:\\>|PS> |In \[\d+\]:|Out\[\d+\]:)")
_KEYWORD = re.compile(
    r"^\s*(def |class \w+[:(]|import \w|from [\w.]+ import |return\b|elif\b|else:|try:|except\b|finally:|"
    r"with .+:$|for .+ in .+:$|while .+:$|if .+:$|lambda\b|async def |await |raise \w|assert |yield\b|"
    r"#include|#define|#if|#endif|public |private |protected |static |void |int |char |const |let |var |"
    r"function\b|fn |func |package \w|using |namespace |template<|struct \w|enum \w|impl\b|"
    r"SELECT |INSERT |UPDATE |CREATE TABLE|echo |export \w+=|sudo |apt(-get)? |pip install|npm |cd /)"
)
_TERMINATOR = re.compile(r"(;|\{|\}|\)\s*\{|=>|->\s*\w+:?|\):)\s*$")
_CALL = re.compile(r"\b[A-Za-z_][\w.]*\([^()]*\)")
_ASSIGN = re.compile(r"^\s*[\w.\[\]'\"]+\s*(=|\+=|-=|:=|==)\s*\S")
_SYMBOLS = set("{}[]()<>=;:+-*/%&|^!~#$@\\\"'`")
_FENCE = re.compile(r"^\s*(```|~~~)")


def code_line(line: str) -> bool:
    """Is this line code rather than prose?"""
    s = line.strip()
    if not s:
        return False
    if _PROMPT.match(line) or _KEYWORD.match(line):
        return True
    words = s.split()
    sym = sum(1 for ch in s if ch in _SYMBOLS)
    if len(s) >= 3 and sym / len(s) > 0.25:
        return True
    if _TERMINATOR.search(s) and (sym >= 2 or len(words) <= 6):
        return True
    code_part = s.split(" #", 1)[0].split(" //", 1)[0]
    if _ASSIGN.match(line) and len(code_part.split()) <= 8:
        return True
    if line.startswith(("    ", "\t")) and s.startswith(("#", "//")):
        return True
    # An indented line with a call and few words: a statement inside a block.
    if line[:1] in (" ", "\t") and _CALL.search(s) and len(words) <= 6:
        return True
    return s.startswith(("}", "{", "</", "<?", "//", "/*", "*/")) or (s.endswith(":") and _CALL.search(s) is not None)


@dataclass(frozen=True)
class StripResult:
    text: str | None  # None: dropped (too much code)
    code_chars: int
    total_chars: int
    removed_lines: int

    @property
    def code_ratio(self) -> float:
        return self.code_chars / self.total_chars if self.total_chars else 0.0


def strip_code(text: str, max_code_ratio: float = 0.3) -> StripResult:
    """Remove code lines/blocks from ``text``; drop the document above ``max_code_ratio``."""
    lines = text.split("\n")
    flags = [False] * len(lines)
    in_fence = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            flags[i] = True
            in_fence = not in_fence
            continue
        flags[i] = in_fence or code_line(line)
    # Blank or short lines between code lines belong to the block; short non-sentence lines
    # right after code are its output (REPL results, printed values).
    for i in range(1, len(lines)):
        if flags[i] or not flags[i - 1]:
            continue
        s = lines[i].strip()
        between = i + 1 < len(lines) and flags[i + 1] and len(s) <= 3
        output = 0 < len(s) <= 40 and len(s.split()) <= 4 and not s.endswith((".", "?", "!"))
        if between or output:
            flags[i] = True
    total = sum(len(x) for x in lines)
    code = sum(len(x) for x, f in zip(lines, flags) if f)
    removed = sum(1 for f in flags if f)
    if total and code / total > max_code_ratio:
        return StripResult(None, code, total, removed)
    kept = "\n".join(x for x, f in zip(lines, flags) if not f)
    kept = re.sub(r"\n{3,}", "\n\n", kept).strip()
    return StripResult(kept, code, total, removed)

"""FIM-format instruction samples: tree-sitter masks one code block of a verified answer.

The masked span is a whole statement (or block) inside the answer's body, chosen with a
seeded RNG, so the model learns to fill structured holes rather than random character spans.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from corpus.instruct import treesit

FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE = "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"
BLOCKISH_SUFFIXES = ("_statement", "_declaration", "_clause")
SKIP = {"expression_statement_docstring", "import_statement", "import_from_statement", "package_declaration",
        "import_declaration", "local_variable_declaration_", "comment"}


@dataclass(frozen=True)
class FimSplit:
    prefix: str
    middle: str
    suffix: str


def choose_span(code: str, language: str, seed: str, min_chars: int = 8, max_frac: float = 0.6) -> FimSplit | None:
    """Mask one statement-level node inside a definition body; None if nothing suitable."""
    if not treesit.supported(language):
        return None
    src = code.encode("utf-8", "surrogatepass")
    root = treesit.parse(src, language).root_node
    if root.has_error:
        return None
    spans = []
    for n in treesit.walk(root):
        if not n.type.endswith(BLOCKISH_SUFFIXES) or n.type in SKIP or n.parent is None:
            continue
        if n.parent.type == root.type and n.parent == root:
            continue  # top-level statements are whole definitions or imports
        if _is_docstring(n):
            continue
        size = n.end_byte - n.start_byte
        if size < min_chars or size > max_frac * len(src):
            continue
        spans.append((n.start_byte, n.end_byte))
    if not spans:
        return None
    rng = random.Random(int(hashlib.sha256(seed.encode()).hexdigest()[:16], 16))
    start, end = spans[rng.randrange(len(spans))]
    return FimSplit(
        prefix=src[:start].decode("utf-8", "surrogatepass"),
        middle=src[start:end].decode("utf-8", "surrogatepass"),
        suffix=src[end:].decode("utf-8", "surrogatepass"),
    )


def _is_docstring(n) -> bool:  # noqa: ANN001
    return n.type == "expression_statement" and n.named_child_count == 1 and n.named_children[0].type == "string"


def fim_prompt(instruction: str, split: FimSplit) -> str:
    """The user turn: the task plus the answer with its hole, in Qwen's FIM token format."""
    return (
        f"{instruction}\n\nComplete the missing part of this solution.\n"
        f"{FIM_PREFIX}{split.prefix}{FIM_SUFFIX}{split.suffix}{FIM_MIDDLE}"
    )

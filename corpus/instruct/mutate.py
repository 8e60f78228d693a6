"""Mutants of an answer for DPO "rejected" samples: small, plausible bugs.

tree-sitter finds operator and integer-literal tokens in any supported language; a mutant
flips one comparison, swaps +/-, swaps and/or, or moves an integer by one (off-by-one).
Whether a mutant is really wrong is decided by running the tests in the sandbox, never here.
"""

from __future__ import annotations

import hashlib
import random

from corpus.instruct import treesit

SWAPS = {
    "<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "==",
    "+": "-", "-": "+", "and": "or", "or": "and", "&&": "||", "||": "&&",
}
INT_LITERALS = {"integer", "decimal_integer_literal", "number_literal", "integer_literal", "int_literal", "number"}


def mutation_sites(code: str, language: str) -> list[tuple[int, int, str, str]]:
    """(start_byte, end_byte, old, new) for every single-token mutation of ``code``."""
    if not treesit.supported(language):
        return []
    src = code.encode("utf-8", "surrogatepass")
    root = treesit.parse(src, language).root_node
    sites = []
    for n in treesit.walk(root):
        if n.type in COMMENTISH:
            continue
        if not n.is_named and n.type in SWAPS and n.parent is not None and "unary" not in n.parent.type:
            sites.append((n.start_byte, n.end_byte, n.type, SWAPS[n.type]))
        elif n.type in INT_LITERALS and n.child_count == 0:
            tok = src[n.start_byte:n.end_byte].decode()
            if tok.isdigit() and len(tok) < 10:
                sites.append((n.start_byte, n.end_byte, tok, str(int(tok) + 1)))
    return sites


COMMENTISH = {"comment", "line_comment", "block_comment", "string", "string_literal"}


def mutants(code: str, language: str, k: int, seed: str) -> list[tuple[str, str]]:
    """Up to ``k`` distinct mutants as (mutated code, description), in a seeded order."""
    sites = mutation_sites(code, language)
    rng = random.Random(int(hashlib.sha256(seed.encode()).hexdigest()[:16], 16))
    rng.shuffle(sites)
    src = code.encode("utf-8", "surrogatepass")
    out = []
    for start, end, old, new in sites[:k]:
        mutated = (src[:start] + new.encode() + src[end:]).decode("utf-8", "surrogatepass")
        line = src[:start].count(b"\n") + 1
        out.append((mutated, f"line {line}: {old} -> {new}"))
    return out

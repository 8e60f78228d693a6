"""A cheap lexical math signal for the math-text source filter.

Counts evidence that a document is mathematical: LaTeX commands and math delimiters,
equations (``x = ...`` with operators), and mathematical vocabulary. The score is
evidence per 100 words, capped at 1; it is a filter for configured sources that are
already math-oriented (it is not a math classifier for raw web pages).
"""

from __future__ import annotations

import re

_LATEX = re.compile(r"\\(frac|sum|int|prod|sqrt|alpha|beta|gamma|delta|pi|theta|lambda|sigma|infty|partial|"
                    r"cdot|leq|geq|neq|binom|log|exp|sin|cos|mathbb|mathrm|left|right|begin)\b|\$[^$\n]{1,200}\$")
_EQUATION = re.compile(r"\b\w+\s*(=|<=|>=|<|>)\s*[\w(][\w\s+\-*/^().]*[+\-*/^]")
_VOCAB = frozenset(
    """theorem lemma proof corollary equation integral derivative polynomial matrix matrices vector
    eigenvalue eigenvalues function functions prime integer integers rational real complex series
    convergence converges limit sum product root roots factor factorization coefficient coefficients
    modulo modular probability distribution variance expectation gamma zeta bessel hypergeometric
    logarithm exponential trigonometric sine cosine tangent algebra algebraic geometric geometry
    topology group ring field fields manifold differential solve solution solutions inequality
    determinant inverse orthogonal symmetric numerator denominator fraction asymptotic""".split()
)
_WORD = re.compile(r"[A-Za-z]+")


def math_score(text: str) -> float:
    words = _WORD.findall(text[:20_000].lower())
    if not words:
        return 0.0
    sample = text[:20_000]
    evidence = len(_LATEX.findall(sample)) + len(_EQUATION.findall(sample)) + sum(1 for w in words if w in _VOCAB)
    return min(1.0, evidence / len(words) * 100 / 10)

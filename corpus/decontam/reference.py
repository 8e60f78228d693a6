"""A plain-Python n-gram set decontaminator: the benchmark baseline and an independent re-check.

It shares only the token *definition* (``ngrams.TOKEN_RE``) with the vectorized one, not its
code path, so the blocking asset check can re-verify kept rows with it.
"""

from __future__ import annotations

from collections.abc import Sequence

from corpus.decontam import ngrams
from corpus.decontam.benchmarks import BenchItem


class SetDecontaminator:
    """``set`` of n-gram tuples per benchmark; ``find`` slides a window over a text's tokens."""

    def __init__(self, items: Sequence[BenchItem], ngram: int = 10, min_informative: int = 1) -> None:
        self.n = ngram
        self.index: dict[tuple[bytes, ...], tuple[str, str]] = {}
        for it in items:
            toks = ngrams.tokenize(it.text.encode("utf-8", "surrogatepass"))
            for i in range(len(toks) - ngram + 1):
                gram = tuple(toks[i : i + ngram])
                if sum(map(ngrams.is_informative, gram)) >= min_informative:
                    self.index.setdefault(gram, (it.benchmark, it.task_id))

    def find(self, text: str | bytes | None) -> list[tuple[str, str, str]]:
        """(benchmark, task_id, ngram) of the first benchmark item per matching n-gram."""
        if not text:
            return []
        data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
        toks = ngrams.tokenize(data)
        out = []
        index, n = self.index, self.n
        for i in range(len(toks) - n + 1):
            hit = index.get(tuple(toks[i : i + n]))
            if hit is not None:
                out.append((hit[0], hit[1], b" ".join(toks[i : i + n]).decode("utf-8", "replace")))
        return out

    def is_clean(self, text: str | bytes | None) -> bool:
        if not text:
            return True
        data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
        toks = ngrams.tokenize(data)
        index, n = self.index, self.n
        return not any(tuple(toks[i : i + n]) in index for i in range(len(toks) - n + 1))

"""Counted skip reasons: bad input is dropped with a reason, never silently."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping


class SkipCounter:
    """Counts why documents or files were skipped and keeps a few examples per reason.

    The counts go into asset metadata ("skip reasons" table); the examples name the input
    (file, record, row) so a user can find the bad data.
    """

    def __init__(self, max_examples: int = 3) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}
        self.max_examples = max_examples

    def add(self, reason: str, where: str = "", n: int = 1) -> None:
        self.counts[reason] += n
        if where:
            ex = self.examples.setdefault(reason, [])
            if len(ex) < self.max_examples:
                ex.append(where)

    def merge(self, other: SkipCounter) -> None:
        self.counts.update(other.counts)
        for reason, ex in other.examples.items():
            mine = self.examples.setdefault(reason, [])
            mine.extend(ex[: max(0, self.max_examples - len(mine))])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))

    def __getitem__(self, reason: str) -> int:
        return self.counts[reason]

    def __repr__(self) -> str:
        return f"SkipCounter({self.as_dict()})"


def merge_counts(*counts: Mapping[str, int]) -> dict[str, int]:
    out: Counter[str] = Counter()
    for c in counts:
        out.update(c)
    return dict(sorted(out.items()))

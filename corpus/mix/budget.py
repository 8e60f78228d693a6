"""Token budgeting for the mixture: the proxy token count and the per-source targets.

Token counting before a tokenizer exists: ``proxy_tokens = ceil(utf8_bytes / 4)`` per document
(minimum 1). Byte-level BPE vocabularies of 32k-150k entries average 3.5-4.5 bytes per token
on code and English, so the proxy is within ~20% of the true count, costs one vectorised
Arrow kernel per batch, and is *exact bookkeeping*: the mixture's shares are computed on this
one consistent measure. The exact counts under the trained tokenizer are reported by
``tokens_stage1`` (manifest ``tokens_per_source``).

Target shares follow Qwen2.5-Coder: code : text : math = 70 : 20 : 10, where "text" is the
code-grounded web text plus a configurable share of general text, and synthetic code is a
configurable share of code. A source with no data gives its share to its siblings in the same
category, or, if the whole category is empty, to the other categories proportionally.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

BYTES_PER_TOKEN = 4

#: mixture source name -> (category, upstream asset)
SOURCES: dict[str, tuple[str, str]] = {
    "code": ("code", "code_clean"),
    "synthetic": ("code", "synthetic_code"),
    "text_code": ("text", "text_code_clean"),
    "general": ("text", "general_clean"),
    "math": ("math", "math_clean"),
}


def proxy_tokens(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Per-document proxy token counts (int64, >= 1; null text counts as 1)."""
    nbytes = pc.binary_length(pc.cast(texts, pa.large_binary()))
    nbytes = pc.fill_null(nbytes, 0)
    tokens = pc.divide(pc.add(nbytes, BYTES_PER_TOKEN - 1), BYTES_PER_TOKEN)
    return pc.max_element_wise(pc.cast(tokens, pa.int64()), 1)


def proxy_tokens_str(text: str) -> int:
    return max(1, math.ceil(len(text.encode("utf-8", "surrogatepass")) / BYTES_PER_TOKEN))


@dataclass(frozen=True)
class Shares:
    """Target ratios; ``general_of_text`` and ``synthetic_of_code`` split their category."""

    code: float = 0.7
    text: float = 0.2
    math: float = 0.1
    general_of_text: float = 0.25
    synthetic_of_code: float = 0.05

    def validate(self) -> None:
        for name in ("code", "text", "math"):
            if getattr(self, name) < 0:
                raise ValueError(f"share {name}={getattr(self, name)} must be >= 0")
        for name in ("general_of_text", "synthetic_of_code"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}={getattr(self, name)} must be in [0, 1] (a split within its category)")
        if self.code + self.text + self.math <= 0:
            raise ValueError("code + text + math shares must be positive")

    def per_source(self) -> dict[str, float]:
        self.validate()
        tot = self.code + self.text + self.math
        return {
            "code": self.code / tot * (1 - self.synthetic_of_code),
            "synthetic": self.code / tot * self.synthetic_of_code,
            "text_code": self.text / tot * (1 - self.general_of_text),
            "general": self.text / tot * self.general_of_text,
            "math": self.math / tot,
        }


def effective_shares(target: Mapping[str, float], available: Mapping[str, int]) -> tuple[dict[str, float], list[str]]:
    """Shares after moving the share of empty sources to siblings (then to other categories).

    Returns the normalised shares of the sources that have data and notes on what moved.
    """
    notes: list[str] = []
    shares = {s: float(target.get(s, 0.0)) for s in SOURCES}
    have = {s for s in SOURCES if available.get(s, 0) > 0}
    if not have:
        raise ValueError("no source has any data")
    cats: dict[str, list[str]] = {}
    for s, (cat, _) in SOURCES.items():
        cats.setdefault(cat, []).append(s)
    for members in cats.values():
        alive = [s for s in members if s in have]
        dead = [s for s in members if s not in have and shares[s] > 0]
        if alive and dead:
            moved = sum(shares[s] for s in dead)
            base = sum(shares[s] for s in alive)
            for s in alive:
                shares[s] += moved * (shares[s] / base if base > 0 else 1 / len(alive))
            notes.append(f"{', '.join(dead)} empty: share {moved:.3f} moved to {', '.join(alive)}")
            for s in dead:
                shares[s] = 0.0
    dead = [s for s in SOURCES if s not in have and shares[s] > 0]
    if dead:
        moved = sum(shares[s] for s in dead)
        notes.append(f"category of {', '.join(dead)} empty: share {moved:.3f} spread over the other categories")
        for s in dead:
            shares[s] = 0.0
    total = sum(shares.values())
    if total <= 0:
        raise ValueError("every source with data has a target share of 0; nothing to mix")
    return {s: v / total for s, v in shares.items() if s in have and v > 0}, notes


def plan_budget(
    shares: Mapping[str, float], available: Mapping[str, int], total_tokens: int, max_epochs: float
) -> tuple[int, dict[str, int], list[str]]:
    """Total budget and per-source token targets.

    ``total_tokens=0`` means "as many tokens as the corpus holds"; either way the budget is
    lowered if a source would have to be repeated more than ``max_epochs`` times to fill its
    share (a note says so), so ratios always hold.
    """
    notes = []
    want = total_tokens if total_tokens > 0 else sum(available.get(s, 0) for s in shares)
    cap = min(available[s] * max_epochs / sh for s, sh in shares.items())
    if want > cap:
        limiting = min(shares, key=lambda s: available[s] * max_epochs / shares[s])
        notes.append(
            f"budget lowered from {want:,} to {int(cap):,} tokens: source {limiting!r} has only "
            f"{available[limiting]:,} tokens and max_epochs={max_epochs}"
        )
        want = int(cap)
    targets = {s: int(round(want * sh)) for s, sh in shares.items()}
    return want, targets, notes

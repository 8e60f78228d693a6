"""Fill-in-the-middle (FIM) transforms, applied per document before packing.

With probability ``fim_rate`` a document is cut at two uniformly random character positions
into prefix / middle / suffix and emitted as

- PSM: ``<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>{middle}``
- SPM (with probability ``spm_rate`` among FIM documents, StarCoder's variant):
  ``<|fim_prefix|><|fim_suffix|>{suffix}<|fim_middle|>{prefix}{middle}``

The decision and the cut points come from an RNG seeded by ``(seed, document id)``, so a
document gets the same transform whatever shard or worker processes it. Splitting happens on
characters (never inside a UTF-8 sequence); the pieces are encoded separately and joined with
special-token ids, so a FIM marker can never be forged by document text.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import xxhash

from corpus.tokenize.tokenizer import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX


def doc_rng(seed: int, doc_id: str, salt: str = "") -> random.Random:
    """An RNG that depends only on the seed, the document id and a purpose salt."""
    return random.Random(xxhash.xxh64_intdigest(f"{seed}\x00{salt}\x00{doc_id}"))


@dataclass(frozen=True)
class FimSplit:
    prefix: str
    middle: str
    suffix: str
    mode: str  # "psm" | "spm"

    @property
    def original(self) -> str:
        return self.prefix + self.middle + self.suffix


def split_fim(text: str, rng: random.Random, fim_rate: float, spm_rate: float) -> FimSplit | None:
    """Decide whether ``text`` gets FIM and where to cut it; None = keep as a plain document."""
    if not text or rng.random() >= fim_rate:
        return None
    a, b = sorted((rng.randint(0, len(text)), rng.randint(0, len(text))))
    mode = "spm" if rng.random() < spm_rate else "psm"
    return FimSplit(text[:a], text[a:b], text[b:], mode)


def fim_ids(split: FimSplit, encode: Callable[[str], list[int]], special: dict[str, int]) -> list[int]:
    """Token ids of a FIM sample in its mode's layout."""
    return fim_layout(split.mode, encode(split.prefix), encode(split.middle), encode(split.suffix), special)


def fim_layout(mode: str, pre: list[int], mid: list[int], suf: list[int], special: dict[str, int]) -> list[int]:
    """Join already-encoded pieces with the FIM special-token ids (PSM or SPM)."""
    p, m, s = special[FIM_PREFIX], special[FIM_MIDDLE], special[FIM_SUFFIX]
    if mode == "psm":
        return [p, *pre, s, *suf, m, *mid]
    if mode == "spm":
        return [p, s, *suf, m, *pre, *mid]
    raise ValueError(f"unknown FIM mode {mode!r} (psm | spm)")


def parse_fim_ids(ids: Sequence[int], special: dict[str, int]) -> tuple[str, list[int], list[int], list[int]]:
    """Inverse of :func:`fim_ids`: ``(mode, prefix_ids, middle_ids, suffix_ids)`` (for checks/eval)."""
    p, m, s = special[FIM_PREFIX], special[FIM_MIDDLE], special[FIM_SUFFIX]
    ids = list(ids)
    if len(ids) < 3 or ids[0] != p:
        raise ValueError("not a FIM sample: it must start with <|fim_prefix|>")
    if ids[1] == s:  # SPM: prefix and middle are contiguous; the caller knows the cut from the text
        mi = ids.index(m)
        return "spm", [], ids[mi + 1 :], ids[2:mi]
    si, mi = ids.index(s), ids.index(m)
    return "psm", ids[1:si], ids[mi + 1 :], ids[si + 1 : mi]

"""Held-out evaluation on token shards: loss / perplexity per source, FIM exact match.

Loss is reported per data source (``source:<name>``, from the per-token source arrays the
tokenize stage writes: code, text_code, math, ...) and per document kind, read from the
special tokens in the packed rows: ``fim`` (a fill-in-the-middle sample), ``repo`` (starts
with ``<|repo_name|>``) or ``file`` (plain file-level text); evaluation over several token
sets (stage 1, stage 2) reports each set separately as well.
FIM exact match greedily decodes the middle of held-out PSM samples
(``<|fim_prefix|>P<|fim_suffix|>S<|fim_middle|>M<|endoftext|>``) and compares with ``M``; SPM
samples (``<|fim_prefix|><|fim_suffix|>S<|fim_middle|>PM``) do not mark where P ends, so they
are counted as skipped.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from training.data import TokenShardDataset
from training.model import Qwen2ForCausalLM

FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX = "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"
STOP_TOKENS = ("<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|im_end|>", "<|repo_name|>")


def _doc_kinds(tokens: np.ndarray, docs: np.ndarray, special: dict[str, int]) -> np.ndarray:
    """Per-position kind code for one row: 0 file, 1 fim, 2 repo."""
    kinds = np.zeros(tokens.shape, dtype=np.int8)
    fim, repo = special.get(FIM_PREFIX, -1), special.get("<|repo_name|>", -1)
    for d in np.unique(docs):
        sel = docs == d
        t = tokens[sel]
        kinds[sel] = 1 if (t == fim).any() else 2 if (t == repo).any() else 0
    return kinds


KIND_NAMES = ("file", "fim", "repo")


@torch.no_grad()
def heldout_by_source(model: Qwen2ForCausalLM, ds: TokenShardDataset, rows: np.ndarray, batch_size: int = 8,
                      doc_mask: bool = True) -> dict[str, dict[str, float]]:
    """{source: {loss, perplexity, tokens}} over the target tokens of ``rows`` (plus ``all``)."""
    model.eval()
    device = model.lm_head.weight.device
    sums = np.zeros(len(KIND_NAMES))
    counts = np.zeros(len(KIND_NAMES), dtype=np.int64)
    n_src = len(ds.sources) if ds.has_sources else 0
    src_sums, src_counts = np.zeros(n_src), np.zeros(n_src, dtype=np.int64)
    for s in range(0, len(rows), batch_size):
        idx = rows[s:s + batch_size]
        tok, _, docs = ds.rows(idx)
        src = ds.sources_of(idx)
        b = ds.batch(idx).to(device)
        logits = model(b.input_ids, doc_ids=b.doc_ids if doc_mask else None)
        ce = F.cross_entropy(logits.float().transpose(1, 2), b.targets, reduction="none").cpu().numpy()
        mask = b.loss_mask.cpu().numpy()
        for j in range(len(idx)):
            kinds = _doc_kinds(tok[j], docs[j], ds.special_tokens)[1:]
            for k in range(len(KIND_NAMES)):
                sel = mask[j] & (kinds == k)
                sums[k] += ce[j][sel].sum()
                counts[k] += int(sel.sum())
            if src is not None:
                tgt_src = src[j][1:]
                for k in range(n_src):
                    sel = mask[j] & (tgt_src == k)
                    src_sums[k] += ce[j][sel].sum()
                    src_counts[k] += int(sel.sum())
    out: dict[str, dict[str, float]] = {}

    def entry(total: float, n: int) -> dict[str, float]:
        loss = total / n
        return {"loss": float(loss), "perplexity": float(math.exp(min(loss, 50))), "tokens": int(n)}

    for k, name in enumerate(KIND_NAMES):
        if counts[k]:
            out[name] = entry(sums[k], counts[k])
    for k in range(n_src):
        if src_counts[k]:
            out[f"source:{ds.sources[k]}"] = entry(src_sums[k], src_counts[k])
    if counts.sum():
        out["all"] = entry(sums.sum(), counts.sum())
    return out


@dataclass
class FimSample:
    row: int
    prompt: list[int]  # up to and including <|fim_middle|>
    middle: list[int]  # the reference middle (without the closing <|endoftext|>)


@dataclass
class FimStats:
    samples: int = 0
    exact: int = 0
    mode: str = "native"
    skipped: Counter = field(default_factory=Counter)
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exact_match(self) -> float:
        return self.exact / self.samples if self.samples else float("nan")


def fim_samples(ds: TokenShardDataset, rows: np.ndarray, max_middle: int = 64,
                skipped: Counter | None = None) -> Iterator[FimSample]:
    """PSM FIM documents found in ``rows`` that are complete (not cut by packing)."""
    sp = ds.special_tokens
    if not all(k in sp for k in (FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX)):
        return
    pre, mid, suf = sp[FIM_PREFIX], sp[FIM_MIDDLE], sp[FIM_SUFFIX]
    ends = {sp[k] for k in STOP_TOKENS if k in sp} | ({ds.eos_id} if ds.eos_id is not None else set())
    skipped = skipped if skipped is not None else Counter()
    for r in rows:
        tok, mask, docs = ds.rows([int(r)])
        tok, docs = tok[0].astype(np.int64), docs[0]
        for d in np.unique(docs):
            t = tok[docs == d].tolist()
            if pre not in t:
                continue
            if t[0] != pre:
                skipped["fim marker not at document start (cut by packing or repo-level)"] += 1
                continue
            if len(t) > 1 and t[1] == suf:
                skipped["SPM order (prefix/middle boundary not marked)"] += 1
                continue
            try:
                k = t.index(mid, t.index(suf))
            except ValueError:
                skipped["fim sample cut by packing"] += 1
                continue
            tail = t[k + 1:]
            end = next((n for n, x in enumerate(tail) if x in ends), None)
            if end is None:
                if d == docs[-1]:  # the last document of the row may continue in the next row
                    skipped["fim sample cut by packing"] += 1
                    continue
                end = len(tail)  # a later document follows in this row: this one is complete
            if end > max_middle:
                skipped[f"middle longer than {max_middle} tokens"] += 1
                continue
            yield FimSample(int(r), t[:k + 1], tail[:end])


def span_fim_samples(ds: TokenShardDataset, rows: np.ndarray, max_middle: int = 16, context: int = 128,
                     seed: int = 0, skipped: Counter | None = None) -> Iterator[FimSample]:
    """PSM samples cut from held-out plain documents: a seeded span of 1..``max_middle`` tokens
    from the middle third of each document becomes the middle, up to ``context`` tokens on each
    side the prefix / suffix. Used when the data's own FIM samples are unusable (whole-file FIM
    documents are usually split by packing and their middles are long)."""
    sp = ds.special_tokens
    if not all(k in sp for k in (FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX)):
        return
    pre, mid, suf = sp[FIM_PREFIX], sp[FIM_MIDDLE], sp[FIM_SUFFIX]
    specials = set(sp.values()) | ({ds.eos_id} if ds.eos_id is not None else set())
    skipped = skipped if skipped is not None else Counter()
    for r in rows:
        tok, mask, docs = ds.rows([int(r)])
        tok, mask, docs = tok[0].astype(np.int64), mask[0].astype(bool), docs[0]
        rng = np.random.default_rng([seed, int(r)])
        for d in np.unique(docs):
            seg = tok[(docs == d) & mask]
            if (seg == pre).any():
                continue  # already a FIM document
            t = [x for x in seg.tolist() if x not in specials]
            if len(t) < 3 * max_middle:
                skipped["document too short for a span sample"] += 1
                continue
            m = int(rng.integers(1, max_middle + 1))
            a = int(rng.integers(len(t) // 3, max(len(t) // 3 + 1, 2 * len(t) // 3 - m)))
            prompt = [pre] + t[max(0, a - context):a] + [suf] + t[a + m:a + m + context] + [mid]
            yield FimSample(int(r), prompt, t[a:a + m])


@torch.no_grad()
def fim_exact_match(model: Qwen2ForCausalLM, ds: TokenShardDataset, rows: np.ndarray, max_samples: int = 50,
                    max_middle: int = 64, mode: str = "auto") -> FimStats:
    """Greedy-decode the middle of up to ``max_samples`` held-out FIM samples; exact token match.

    ``mode``: ``native`` (the data's own PSM samples), ``span`` (spans cut from held-out
    documents, see span_fim_samples) or ``auto`` (native when at least min(10, max_samples)
    are usable, else span)."""
    stats = FimStats()
    stops = {ds.special_tokens[k] for k in STOP_TOKENS if k in ds.special_tokens}
    if ds.eos_id is not None:
        stops.add(int(ds.eos_id))
    if mode not in ("auto", "native", "span"):
        raise ValueError(f"FIM mode must be auto, native or span, not {mode!r}")
    if mode == "auto":  # native only when enough of the data's own samples survive packing
        need = min(10, max_samples)
        native = sum(1 for _, _ in zip(range(need), fim_samples(ds, rows, max_middle=max_middle)))
        mode = "native" if native >= need else "span"
    stats.mode = mode
    samples = (fim_samples(ds, rows, max_middle=max_middle, skipped=stats.skipped) if mode == "native"
               else span_fim_samples(ds, rows, max_middle=min(max_middle, 16), skipped=stats.skipped))
    for s in samples:
        if stats.samples >= max_samples:
            stats.skipped["over max_samples"] += 1
            continue
        got = model.generate(s.prompt, max_new_tokens=len(s.middle) + 1, stop_ids=stops)
        stats.samples += 1
        hit = got == s.middle
        stats.exact += int(hit)
        if len(stats.examples) < 5:
            stats.examples.append({"row": s.row, "middle_tokens": len(s.middle), "exact": hit})
    return stats

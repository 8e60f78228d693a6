"""Hierarchical (staged) text-code filtering and recall-driven classifier retraining.

Stage 1 scores every ingested page with the seed classifier and keeps those at or above
its threshold; stage k (k > 1) scores only what stage k-1 kept, with a classifier
retrained on stage k-1's recall, and a stricter threshold. So the kept set shrinks
monotonically, and each stage's score is a column of the output (``stage_k_score``).

Retraining follows the iterative recall of DeepSeekMath / OpenCoder: pages the previous
stage recalled are positives; pages of *site sections* (host + first path segment) where
at least ``domain_min_recall`` of the pages were recalled are added as positives too
(documentation sites are code-related as a whole, even where one page looks like prose);
pages that were not recalled, from other sections, are negatives. The seed training
examples are always included, and every model is evaluated on the seed held-out split,
so the stages' precision / recall / F1 are comparable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import xxhash

from corpus import shards
from corpus.schemas import extend_schema
from corpus.textcode.classifier import TextCodeClassifier, histogram
from corpus.textcode.dedup import url_group

SCORE_BATCH_ROWS = 512
SEED_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("text", pa.large_string()),
        pa.field("source", pa.string()),
        pa.field("label", pa.int8()),
        pa.field("split", pa.string()),
        pa.field("score", pa.float32()),
    ]
)


def score_column(stage: int) -> str:
    return f"stage_{stage}_score"


@dataclass
class StageStats:
    stage: int
    threshold: float
    docs_in: int = 0
    kept: int = 0
    hist_all: list[int] = field(default_factory=lambda: [0] * 10)
    hist_kept: list[int] = field(default_factory=lambda: [0] * 10)
    score_sum: float = 0.0

    @property
    def retention(self) -> float:
        return self.kept / self.docs_in if self.docs_in else 0.0

    @property
    def mean_score(self) -> float:
        return self.score_sum / self.docs_in if self.docs_in else 0.0


def stage_schema(input_schema: pa.Schema, stage: int) -> pa.Schema:
    return extend_schema(input_schema, pa.field(score_column(stage), pa.float32()))


def filter_stage(
    in_path: str,
    writer: shards.ShardSetWriter,
    clf: TextCodeClassifier,
    stage: int,
    threshold: float,
    batch_rows: int = SCORE_BATCH_ROWS,
) -> StageStats:
    """Score every row of the shard set at ``in_path`` and write those >= ``threshold``
    (all columns plus ``stage_<k>_score``) to ``writer``; streams batch by batch."""
    stats = StageStats(stage=stage, threshold=threshold)
    col = score_column(stage)
    for batch in shards.iter_batches(in_path, batch_size=batch_rows):
        if batch.num_rows == 0:
            continue
        texts = batch.column("text").to_pylist()
        scores = clf.scores([t or "" for t in texts])
        keep = scores >= threshold
        stats.docs_in += batch.num_rows
        stats.kept += int(keep.sum())
        stats.score_sum += float(scores.sum())
        _add(stats.hist_all, histogram(scores))
        _add(stats.hist_kept, histogram(scores[keep]))
        if keep.any():
            table = pa.Table.from_batches([batch]).append_column(col, pa.array(scores, type=pa.float32()))
            writer.write_batch(table.filter(pa.array(keep)))
    return stats


def _add(acc: list[int], counts: list[int]) -> None:
    for i, c in enumerate(counts):
        acc[i] += c


# --------------------------------------------------------------------------- retraining


@dataclass(frozen=True)
class RecallConfig:
    domain_min_recall: float = 0.5
    domain_min_docs: int = 3
    max_recalled: int = 20_000
    max_negatives: int = 20_000
    seed: int = 0


@dataclass
class RecallStats:
    batches: int = 0
    web_docs: int = 0
    recalled: int = 0
    code_groups: int = 0
    groups: int = 0
    positives_recalled: int = 0
    positives_domain: int = 0
    negatives: int = 0
    top_groups: list[tuple[str, int, int]] = field(default_factory=list)


def _keep(key: str, rate: float, seed: int) -> bool:
    """Deterministic Bernoulli(rate) by hash, so sampling is the same on every run."""
    if rate >= 1.0:
        return True
    return xxhash.xxh64_intdigest(key.encode(), seed=seed) / 2**64 < rate


def recall_examples(
    pairs: Sequence[tuple[str, str]],
    cfg: RecallConfig,
    stats: RecallStats,
    depth: int = 1,
) -> Iterator[tuple[str, int]]:
    """(text, label) training examples from the previous stage's recall.

    ``pairs``: for each batch, (web_text set path, previous-stage set path). Two streaming
    passes: (1) per-section totals and recalled counts (ids only), (2) examples, sampled
    by hash down to the caps.
    """
    group_tot: dict[str, int] = defaultdict(int)
    group_rec: dict[str, int] = defaultdict(int)
    recalled_ids: list[set[str]] = []
    for web_path, prev_path in pairs:
        ids: set[str] = set()
        for b in shards.iter_batches(prev_path, columns=["id"]):
            ids.update(b.column("id").to_pylist())
        recalled_ids.append(ids)
        for b in shards.iter_batches(web_path, columns=["id", "url"]):
            for rid, url in zip(b.column("id").to_pylist(), b.column("url").to_pylist()):
                g = url_group(url or "", depth)
                group_tot[g] += 1
                if rid in ids:
                    group_rec[g] += 1
        stats.batches += 1
    stats.web_docs = sum(group_tot.values())
    stats.recalled = sum(len(s) for s in recalled_ids)
    code_groups = {
        g for g, tot in group_tot.items()
        if tot >= cfg.domain_min_docs and group_rec[g] / tot >= cfg.domain_min_recall
    }
    stats.groups = len(group_tot)
    stats.code_groups = len(code_groups)
    stats.top_groups = sorted(((g, group_tot[g], group_rec[g]) for g in group_tot), key=lambda x: (-x[2], x[0]))[:15]
    n_domain = sum(group_tot[g] - group_rec[g] for g in code_groups)
    n_neg = stats.web_docs - stats.recalled - n_domain
    pos_rate = cfg.max_recalled / max(1, stats.recalled + n_domain)
    neg_rate = cfg.max_negatives / max(1, n_neg)
    for (web_path, _prev), ids in zip(pairs, recalled_ids):
        for b in shards.iter_batches(web_path, columns=["id", "url", "text"]):
            for rid, url, text in zip(*(b.column(c).to_pylist() for c in ("id", "url", "text"))):
                if not text:
                    continue
                in_code_group = url_group(url or "", depth) in code_groups
                if rid in ids or in_code_group:
                    if _keep(rid, pos_rate, cfg.seed):
                        if rid in ids:
                            stats.positives_recalled += 1
                        else:
                            stats.positives_domain += 1
                        yield text, 1
                elif _keep(rid, neg_rate, cfg.seed + 1):
                    stats.negatives += 1
                    yield text, 0


def seed_examples(seed_path: str, split: str = "train") -> Iterator[tuple[str, int]]:
    """(text, label) rows of one split of the seed classifier's labelled table."""
    for b in shards.iter_batches(seed_path, columns=["text", "label", "split"]):
        for text, label, sp in zip(*(b.column(c).to_pylist() for c in ("text", "label", "split"))):
            if sp == split and text:
                yield text, int(label)


def score_split(seed_path: str, clf: TextCodeClassifier, split: str = "holdout") -> tuple[np.ndarray, np.ndarray]:
    """Scores and labels of one split of the seed table (for evaluation)."""
    scores: list[np.ndarray] = []
    labels: list[int] = []
    buf: list[str] = []
    for text, label in seed_examples(seed_path, split):
        buf.append(text)
        labels.append(label)
        if len(buf) >= SCORE_BATCH_ROWS:
            scores.append(clf.scores(buf))
            buf = []
    if buf:
        scores.append(clf.scores(buf))
    s = np.concatenate(scores) if scores else np.zeros(0, dtype=np.float32)
    return s, np.asarray(labels, dtype=np.int64)

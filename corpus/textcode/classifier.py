"""fastText code-relatedness classifiers: text normalization, training, scoring, evaluation.

The report's text-code grounding data comes from "small fastText classifiers" applied to
web pages in stages. A model here is a binary fastText supervised model with labels
``__label__code`` / ``__label__other``; a document's score is P(code).

Determinism: training uses one thread and a fixed seed (fastText is only reproducible
single-threaded), and the training file is shuffled with a seeded permutation, so the
same examples and parameters give the same model bytes.
"""

from __future__ import annotations

import os
import random
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

POS_LABEL = "__label__code"
NEG_LABEL = "__label__other"
_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


@dataclass(frozen=True)
class TrainParams:
    """fastText supervised hyper-parameters (small model: a few MB, ~100k docs/s/core)."""

    dim: int = 32
    epoch: int = 10
    lr: float = 0.5
    word_ngrams: int = 2
    min_count: int = 2
    bucket: int = 200_000
    max_tokens: int = 1024
    seed: int = 0

    def fasttext_kwargs(self) -> dict:
        return {
            "dim": self.dim,
            "epoch": self.epoch,
            "lr": self.lr,
            "wordNgrams": self.word_ngrams,
            "minCount": self.min_count,
            "bucket": self.bucket,
            "seed": self.seed,
            "thread": 1,
            "loss": "softmax",
            "verbose": 0,
        }

    def as_dict(self) -> dict:
        return asdict(self)


def normalize(text: str, max_tokens: int = 1024) -> str:
    """One line of lowercase tokens, punctuation split off (``foo()`` -> ``foo ( )``), so
    symbols that mark code are features; capped at ``max_tokens`` tokens. Only the first
    ``6 * max_tokens`` characters are tokenized (tokens average under 6 characters with
    punctuation split off), which bounds the cost of huge pages."""
    return " ".join(_TOKEN.findall(text[: max_tokens * 6].lower())[:max_tokens])


# --------------------------------------------------------------------------- model


def load_fasttext(path: str):
    """``fasttext.load_model`` without its stderr notice; ValueError names an unreadable file."""
    import fasttext
    import fasttext.FastText as ft_impl

    ft_impl.eprint = lambda *a, **k: None  # the "load_model does not return WordVectorModel" notice
    try:
        return fasttext.load_model(path)
    except ValueError as exc:
        raise ValueError(f"{path}: not a readable fastText model ({exc})") from exc


class TextCodeClassifier:
    """A loaded fastText model that scores documents with P(code)."""

    def __init__(self, model, max_tokens: int = 1024, path: str | None = None) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.path = path
        labels = set(model.get_labels())
        if labels != {POS_LABEL, NEG_LABEL}:
            raise ValueError(
                f"{path or 'model'}: expected labels {POS_LABEL}/{NEG_LABEL}, got {sorted(labels)}; "
                "is this a text-code classifier?"
            )

    @classmethod
    def load(cls, path: str, max_tokens: int = 1024) -> TextCodeClassifier:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"fastText model {path!r} does not exist")
        return cls(load_fasttext(path), max_tokens=max_tokens, path=path)

    def scores(self, texts: Sequence[str], normalized: bool = False) -> np.ndarray:
        """P(code) for each text (float32 array)."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        predict = self.model.f.predict
        out = np.empty(len(texts), dtype=np.float32)
        for i, t in enumerate(texts):
            line = (t if normalized else normalize(t, self.max_tokens)) + "\n"
            # The binding's per-line predict is exact; multilinePredict's probability arrays are
            # corrupted under NumPy 2 and the high-level predict() crashes there, so neither is used.
            out[i] = next((p for p, lab in predict(line, 2, 0.0, "replace") if lab == POS_LABEL), 0.0)
        return np.clip(out, 0.0, 1.0)


def train(examples: Iterable[tuple[str, int]], params: TrainParams, workdir: str | None = None) -> TextCodeClassifier:
    """Train on (text, label) pairs (1 = code-related). Examples stream to a file on disk
    (bounded memory), which is then shuffled by a seeded permutation of line offsets."""
    import fasttext

    with tempfile.TemporaryDirectory(dir=workdir, prefix="ft-train-") as tmp:
        raw = os.path.join(tmp, "raw.txt")
        offsets: list[int] = []
        counts = [0, 0]
        with open(raw, "wb") as fh:
            for text, label in examples:
                line = normalize(text, params.max_tokens)
                if not line:
                    continue
                offsets.append(fh.tell())
                fh.write(f"{POS_LABEL if label else NEG_LABEL} {line}\n".encode())
                counts[1 if label else 0] += 1
        if min(counts) == 0:
            raise ValueError(
                f"cannot train a classifier: {counts[1]} positive and {counts[0]} negative examples; "
                "both seed sources must yield documents"
            )
        order = list(range(len(offsets)))
        random.Random(params.seed).shuffle(order)
        shuffled = os.path.join(tmp, "train.txt")
        with open(raw, "rb") as src, open(shuffled, "wb") as dst:
            for i in order:
                src.seek(offsets[i])
                dst.write(src.readline())
        model = fasttext.train_supervised(input=shuffled, **params.fasttext_kwargs())
    return TextCodeClassifier(model, max_tokens=params.max_tokens)


def save(clf: TextCodeClassifier, path: str) -> None:
    clf.model.save_model(path)


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class EvalReport:
    n: int
    positives: int
    threshold: float
    precision: float
    recall: float
    f1: float
    accuracy: float
    auc: float

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate(scores: Sequence[float] | np.ndarray, labels: Sequence[int], threshold: float = 0.5) -> EvalReport:
    """Precision / recall / F1 / accuracy at ``threshold`` and ROC AUC (rank statistic)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if len(s) != len(y):
        raise ValueError("scores and labels differ in length")
    pred = s >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return EvalReport(
        n=len(y),
        positives=int(np.sum(y == 1)),
        threshold=threshold,
        precision=round(precision, 4),
        recall=round(recall, 4),
        f1=round(f1, 4),
        accuracy=round((tp + tn) / len(y), 4) if len(y) else 0.0,
        auc=round(roc_auc(s, y), 4),
    )


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney AUC with tie correction; 0.5 if one class is absent."""
    pos = int(np.sum(labels == 1))
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return 0.5
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[labels == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def histogram(scores: np.ndarray | Sequence[float], bins: int = 10) -> list[int]:
    """Counts of scores in ``bins`` equal bins over [0, 1]."""
    s = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    counts, _ = np.histogram(s, bins=bins, range=(0.0, 1.0))
    return [int(c) for c in counts]

"""fastText glue that works on this stack.

The `fasttext` 0.9.3 source build trains to NaN on some CPUs, so the project depends on the
`fasttext-wheel` 0.9.2 build; its high-level ``predict`` breaks under NumPy 2
(``np.array(copy=False)``). These helpers call the C++ binding directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import fasttext
import numpy as np


def load(path: str) -> fasttext.FastText._FastText:
    fasttext.FastText.eprint = lambda *a, **k: None  # silence the deprecation banner
    return fasttext.load_model(path)


def _clean(text: str) -> str:
    # fastText reads one line per example and fails on embedded newlines.
    return " ".join(text.split()) + "\n"


def predict(model, texts: Sequence[str], k: int = 1, threshold: float = 0.0) -> tuple[list[list[str]], np.ndarray]:
    """Top-``k`` labels and probabilities for each text: (labels per text, probs [n, k])."""
    labels: list[list[str]] = []
    probs = np.zeros((len(texts), k), dtype=np.float32)
    # multilinePredict of this build returns corrupted probability arrays; predict is exact.
    for i, text in enumerate(texts):
        pairs = model.f.predict(_clean(text), k, threshold, "strict")
        labels.append([lab for _, lab in pairs])
        probs[i, : len(pairs)] = [p for p, _ in pairs]
    return labels, probs


def prob_of(model, texts: Sequence[str], label: str) -> np.ndarray:
    """Probability of ``label`` (e.g. ``__label__code``) for each text, in [0, 1]."""
    n_labels = len(model.get_labels())
    labels, probs = predict(model, texts, k=n_labels)
    out = np.zeros(len(texts), dtype=np.float32)
    for i, labs in enumerate(labels):
        for j, lab in enumerate(labs):
            if lab == label:
                out[i] = probs[i, j]
                break
    return out

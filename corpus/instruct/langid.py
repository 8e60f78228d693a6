"""Programming-language identification for snippets, trained on the corpus' own labels.

Every code_clean file carries the language its crawler assigned (from its extension); the
classifier learns from chunks of those files plus a ``text`` class made of the snippets' own
docstrings (natural language that lives in code files). At filter time a snippet is kept
only if the model calls it a mainstream language (and, by default, the language it was
mined as); snippets that look like prose, config or data are dropped as "no real code".
Accuracy on a held-out split is reported, per class.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import random
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from corpus import ftmodel

TEXT_LABEL = "text"
MAINSTREAM = ("python", "java", "javascript", "typescript", "c", "cpp", "go", "rust", "shell", "csharp", "php",
              "ruby", "kotlin", "swift", "scala")
_TOKEN = re.compile(r"[A-Za-z_]+|\d+|[^\sA-Za-z_\d]")


def tokens(text: str, max_tokens: int = 400) -> str:
    """Code-aware tokens (identifiers, numbers, single punctuation) joined by spaces."""
    return " ".join(_TOKEN.findall(text)[:max_tokens])


@dataclass(frozen=True)
class LangIdParams:
    files_per_language: int = 300
    chunks_per_file: int = 12
    chunk_lines: int = 20
    holdout: float = 0.1
    epoch: int = 25
    lr: float = 0.5
    dim: int = 32
    word_ngrams: int = 2
    minn: int = 0  # code tokens, not sub-words: char n-grams hurt held-out accuracy here
    maxn: int = 0
    bucket: int = 100_000  # hashed n-gram rows: fastText's 2M default makes a 256 MB model
    seed: int = 0


@dataclass
class LangIdReport:
    n_train: int
    n_test: int
    accuracy: float
    per_label: dict[str, tuple[int, float]] = field(default_factory=dict)  # label -> (n_test, accuracy)


def _h(s: str) -> int:
    return int(hashlib.sha256(s.encode("utf-8", "surrogatepass")).hexdigest()[:12], 16)


def sample_files(files: Iterable[tuple[str, str, str]], per_language: int) -> dict[str, list[tuple[str, str]]]:
    """Seeded bounded sample: the ``per_language`` files with the smallest id hash per language.

    ``files`` yields (id, language, content); memory stays O(languages x per_language).
    """
    heaps: dict[str, list[tuple[int, str, str]]] = {}
    for fid, lang, content in files:
        heap = heaps.setdefault(lang, [])
        item = (-_h(fid), fid, content)
        if len(heap) < per_language:
            heapq.heappush(heap, item)
        elif item > heap[0]:
            heapq.heapreplace(heap, item)
    return {lang: sorted((fid, c) for _, fid, c in heap) for lang, heap in heaps.items()}


def chunks(content: str, n_lines: int, k: int, seed: str) -> Iterator[str]:
    """Up to ``k`` seeded chunks of ``n_lines`` non-blank lines (short chunks of code files are
    often comments or docstrings, which would teach the model that prose is code)."""
    lines = [ln for ln in content.splitlines() if ln.strip()]
    if not lines:
        return
    starts = list(range(0, max(1, len(lines) - n_lines + 1), max(1, n_lines // 2)))
    random.Random(_h(seed)).shuffle(starts)
    for s in starts[:k]:
        yield "\n".join(lines[s : s + n_lines])


class LanguageIdentifier:
    """A trained fastText language model plus its held-out report."""

    def __init__(self, model, report: LangIdReport | None = None) -> None:  # noqa: ANN001
        self.model = model
        self.report = report

    @classmethod
    def load(cls, path: str) -> LanguageIdentifier:
        return cls(ftmodel.load(path))

    def save(self, path: str) -> None:
        self.model.save_model(path)

    def predict(self, texts: list[str]) -> tuple[list[str], np.ndarray]:
        labels, probs = ftmodel.predict(self.model, [tokens(t) for t in texts], k=1)
        return [lab[0].removeprefix("__label__") if lab else TEXT_LABEL for lab in labels], probs[:, 0]


def train(
    code_files: Iterable[tuple[str, str, str]], prose: Iterable[str], params: LangIdParams = LangIdParams(),
    workdir: str | None = None,
) -> LanguageIdentifier:
    """Train on chunks of labelled files plus prose (label ``text``); evaluate on a held-out split."""
    import fasttext

    sample = sample_files(code_files, params.files_per_language)
    examples: list[tuple[str, str, str]] = []  # (key, label, text)
    for lang, files in sample.items():
        for fid, content in files:
            for i, ch in enumerate(chunks(content, params.chunk_lines, params.chunks_per_file, fid)):
                examples.append((f"{fid}:{i}", lang, ch))
    # the prose class gets as many examples as the largest code class (balanced classes)
    per_label: dict[str, int] = {}
    for _, lab, _ in examples:
        per_label[lab] = per_label.get(lab, 0) + 1
    budget = max(per_label.values(), default=0)
    n_prose = 0
    seen: set[int] = set()
    for text in prose:
        if n_prose >= budget:
            break
        if len(text.split()) >= 3 and _h(text) not in seen:
            seen.add(_h(text))
            examples.append((f"text-{_h(text)}:0", TEXT_LABEL, text))
            n_prose += 1
    labels = {lab for _, lab, _ in examples}
    if len(labels) < 2:
        raise ValueError(f"language id needs at least two labels to learn from; found {sorted(labels)}")
    train_ex, test_ex = holdout_split(examples, params.holdout)
    random.Random(params.seed).shuffle(train_ex)
    with tempfile.TemporaryDirectory(dir=workdir, prefix="langid-") as tmp:
        path = os.path.join(tmp, "train.txt")
        with open(path, "w", encoding="utf-8") as fh:
            for _, lab, text in train_ex:
                line = tokens(text)
                if line:
                    fh.write(f"__label__{lab} {line}\n")
        model = fasttext.train_supervised(
            input=path, epoch=params.epoch, lr=params.lr, dim=params.dim, wordNgrams=params.word_ngrams,
            minn=params.minn, maxn=params.maxn, bucket=params.bucket, thread=1, seed=params.seed, verbose=0,
        )
    clf = LanguageIdentifier(model)
    clf.report = evaluate(clf, [(lab, text) for _, lab, text in test_ex], n_train=len(train_ex))
    return clf


def holdout_split(examples: list[tuple[str, str, str]], frac: float) -> tuple[list, list]:
    """Per label, the files (or prose items) with the smallest hashes go to the test split, at
    least one when the label has two or more; chunks of one file never straddle the split."""
    groups: dict[str, set[str]] = {}
    for key, lab, _ in examples:
        groups.setdefault(lab, set()).add(key.rsplit(":", 1)[0])
    test_groups: set[str] = set()
    for keys in groups.values():
        ordered = sorted(keys, key=_h)
        n = max(1, round(frac * len(ordered))) if len(ordered) >= 2 else 0
        test_groups.update(ordered[:n])
    train = [e for e in examples if e[0].rsplit(":", 1)[0] not in test_groups]
    test = [e for e in examples if e[0].rsplit(":", 1)[0] in test_groups]
    return train, test


def evaluate(clf: LanguageIdentifier, labelled: list[tuple[str, str]], n_train: int = 0) -> LangIdReport:
    if not labelled:
        return LangIdReport(n_train, 0, float("nan"))
    pred, _ = clf.predict([t for _, t in labelled])
    per: dict[str, list[int]] = {}
    for (lab, _), p in zip(labelled, pred):
        per.setdefault(lab, [0, 0])
        per[lab][0] += 1
        per[lab][1] += int(p == lab)
    correct = sum(v[1] for v in per.values())
    return LangIdReport(n_train, len(labelled), round(correct / len(labelled), 4),
                        {k: (v[0], round(v[1] / v[0], 4)) for k, v in sorted(per.items())})

"""fastText classifier training on a small real corpus, evaluation maths, determinism."""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pytest

from corpus.textcode import classifier as C
from corpus.textcode.ingest import iter_spec
from corpus.textcode.seeds import python_doc_root
from corpus.textcode.skips import SkipCounter

needs_docs = pytest.mark.skipif(python_doc_root() is None, reason="python3-doc HTML not installed")
PARAMS = C.TrainParams(epoch=10, bucket=20_000, dim=16)


def _docs(spec: str, n: int) -> list[str]:
    return [d.text for d in itertools.islice(iter_spec(spec, SkipCounter()), n) if len(d.text) >= 200]


@pytest.fixture(scope="module")
def corpus_split():
    """Real text: CPython docs (code-related) vs Debian changelogs + copyright files (prose);
    shard 0 trains, shard 1 (other files) is held out."""
    train = [(t, 1) for t in _docs("local:python-docs@0/2", 50)] + \
        [(t, 0) for t in _docs("local:debian-changelogs@0/2", 25) + _docs("local:debian-copyright@0/2", 25)]
    held = [(t, 1) for t in _docs("local:python-docs@1/2", 30)] + \
        [(t, 0) for t in _docs("local:debian-changelogs@1/2", 15) + _docs("local:debian-copyright@1/2", 15)]
    return train, held


@needs_docs
def test_classifier_f1_well_above_chance_on_held_out_real_text(corpus_split, tmp_path):
    train, held = corpus_split
    model = C.train(train, PARAMS, workdir=str(tmp_path))
    scores = model.scores([t for t, _ in held])
    report = C.evaluate(scores, [y for _, y in held])
    # Chance F1 for a balanced set is ~0.5; require a real classifier.
    assert report.f1 >= 0.85, report
    assert report.auc >= 0.9, report
    assert report.n == len(held)


@needs_docs
def test_training_is_deterministic(corpus_split, tmp_path):
    train, _ = corpus_split
    digests = []
    for i in range(2):
        model = C.train(train[:40] + train[-40:], PARAMS, workdir=str(tmp_path))
        out = tmp_path / f"m{i}.bin"
        C.save(model, str(out))
        digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    loaded = C.TextCodeClassifier.load(str(tmp_path / "m0.bin"))
    np.testing.assert_allclose(loaded.scores(["def f(x): return x"]), model.scores(["def f(x): return x"]))


def test_training_needs_both_classes(tmp_path):
    with pytest.raises(ValueError, match="0 negative"):
        C.train([("some code text here", 1)] * 5, PARAMS, workdir=str(tmp_path))


def test_load_rejects_missing_and_non_model_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        C.TextCodeClassifier.load(str(tmp_path / "nope.bin"))
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a model" * 10)
    with pytest.raises(ValueError, match="not a readable fastText model"):
        C.TextCodeClassifier.load(str(junk))


def test_evaluate_counts_and_auc():
    scores = [0.9, 0.8, 0.7, 0.3, 0.2, 0.6]
    labels = [1, 1, 0, 1, 0, 0]
    r = C.evaluate(scores, labels, threshold=0.5)
    # predicted positive: 0.9 (tp), 0.8 (tp), 0.7 (fp), 0.6 (fp); 0.3 is a fn
    assert (r.precision, r.recall) == (0.5, round(2 / 3, 4))
    assert r.f1 == round(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3), 4)
    assert r.accuracy == 0.5
    # AUC by brute force over all positive/negative pairs
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    brute = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
    assert r.auc == pytest.approx(brute, abs=1e-4)
    assert C.roc_auc(np.array([0.5, 0.5]), np.array([1, 0])) == 0.5


def test_histogram_and_normalize():
    assert C.histogram([0.0, 0.05, 0.5, 0.99, 1.0]) == [2, 0, 0, 0, 0, 1, 0, 0, 0, 2]
    assert C.normalize("def foo(x):\n    return x+1") == "def foo ( x ) : return x + 1"
    assert len(C.normalize("word " * 5000, max_tokens=100).split()) == 100


@needs_docs
def test_scores_match_the_exact_per_label_probabilities(corpus_split, tmp_path):
    """Guards against the fastText binding's corrupted batch probabilities (NumPy 2)."""
    from corpus import ftmodel

    train, held = corpus_split
    model = C.train(train[:30] + train[-30:], PARAMS, workdir=str(tmp_path))
    texts = [t for t, _ in held[:10] + held[-10:]]
    ours = model.scores(texts)
    exact = ftmodel.prob_of(model.model, [C.normalize(t) for t in texts], C.POS_LABEL)
    np.testing.assert_allclose(ours, exact, atol=1e-6)
    assert ours.min() < 0.5 < ours.max()

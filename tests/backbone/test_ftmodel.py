"""fastText glue: training converges on this machine and predictions are proper probabilities."""

import random

import fasttext
import numpy as np

from corpus import ftmodel


def test_train_and_predict(tmp_path):
    rng = random.Random(0)
    code = "def class import return self lambda yield async await".split()
    prose = "river garden music morning window letter quiet summer".split()
    lines = [f"__label__code {' '.join(rng.choices(code, k=8))}" for _ in range(300)]
    lines += [f"__label__prose {' '.join(rng.choices(prose, k=8))}" for _ in range(300)]
    rng.shuffle(lines)
    path = tmp_path / "train.txt"
    path.write_text("\n".join(lines) + "\n")
    model = fasttext.train_supervised(str(path), verbose=0, thread=1, seed=1, epoch=5)
    model.save_model(str(tmp_path / "m.bin"))
    model = ftmodel.load(str(tmp_path / "m.bin"))
    labels, probs = ftmodel.predict(model, ["def return\nlambda", "quiet summer river"], k=2)
    assert labels[0][0] == "__label__code" and labels[1][0] == "__label__prose"
    assert np.allclose(probs.sum(axis=1), 1.0, atol=0.02)
    p = ftmodel.prob_of(model, ["yield async self", "letter window"], "__label__code")
    assert p[0] > 0.9 and p[1] < 0.1

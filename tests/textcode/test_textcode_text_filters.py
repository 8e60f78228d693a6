"""Language id fallback, URL normalization / exact dedup, code stripping, math score."""

from __future__ import annotations

import itertools

import pytest

from corpus.textcode.codestrip import code_line, strip_code
from corpus.textcode.dedup import ExactDedup, normalize_url, text_fingerprint, url_group
from corpus.textcode.ingest import Doc, iter_spec
from corpus.textcode.langid import ScriptStopwordLid, make_language_identifier
from corpus.textcode.mathtext import math_score
from corpus.textcode.skips import SkipCounter
from corpus.textcode.webtext import IngestConfig, IngestStats, filter_docs

EN = ("The committee met on Tuesday to discuss the budget for the coming year. Most members agreed that "
      "the library should be open longer in the evenings, and that it was time to repair the roof.")
DE = ("Der Ausschuss traf sich am Dienstag, um den Haushalt für das kommende Jahr zu besprechen. Die meisten "
      "Mitglieder waren sich einig, dass die Bibliothek abends länger geöffnet sein sollte und dass es an der "
      "Zeit ist, das Dach zu reparieren.")
FR = ("Le comité s'est réuni mardi pour discuter du budget de l'année prochaine. La plupart des membres "
      "étaient d'accord pour que la bibliothèque soit ouverte plus tard le soir et qu'il est temps de réparer le toit.")
ES = ("El comité se reunió el martes para discutir el presupuesto del próximo año. La mayoría de los miembros "
      "estuvo de acuerdo en que la biblioteca debe abrir más tarde por la noche y que es hora de reparar el techo.")
RU = "Комитет собрался во вторник, чтобы обсудить бюджет на следующий год и ремонт крыши библиотеки."
JA = "委員会は火曜日に集まり、来年の予算について話し合いました。図書館の屋根を修理する時期です。"


@pytest.mark.parametrize("text,lang", [(EN, "en"), (DE, "de"), (FR, "fr"), (ES, "es"), (RU, "ru"), (JA, "ja")])
def test_fallback_language_id(text, lang):
    got, score = ScriptStopwordLid().predict(text)
    assert got == lang
    assert score > 0.3


def test_fallback_language_id_undecided_cases():
    lid = ScriptStopwordLid()
    assert lid.predict("x = 1; y = 2;") == ("und", 0.0)
    assert lid.predict("1234 5678 %%% ### !!!" * 10) == ("und", 0.0)


def test_lid_model_path_must_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="lid.176.bin"):
        make_language_identifier(str(tmp_path / "lid.176.bin"))
    assert make_language_identifier(None).name == "script+stopwords"


def test_url_normalization_and_groups():
    assert normalize_url("HTTPS://WWW.Example.org:443/a/b/?utm_source=x&b=2&a=1#frag") == "http://example.org/a/b?a=1&b=2"
    assert normalize_url("http://example.org/") == normalize_url("https://example.org")
    assert normalize_url("http://example.org:8080/x") == "http://example.org:8080/x"
    assert normalize_url("file:///data/x.jsonl#L3") != normalize_url("file:///data/x.jsonl#L4")
    assert url_group("https://docs.python.org/3/library/os.html") == "docs.python.org/3"
    assert url_group("file:///usr/share/doc/bash/copyright") == "file:///usr/share/doc/bash"


def test_exact_dedup_by_url_and_text():
    d = ExactDedup()
    a = text_fingerprint("Hello   World\n")
    assert d.check("https://x.org/1", a) is None
    assert d.check("http://www.x.org/1?utm_medium=mail", text_fingerprint("other")) == "duplicate_url"
    assert d.check("https://y.org/2", text_fingerprint("hello world")) == "duplicate_text"
    d2 = ExactDedup()
    d2.seed(["https://x.org/1"], [a])
    assert d2.check("https://x.org/1", text_fingerprint("new")) == "duplicate_url"


def test_filter_docs_counts_every_drop():
    docs = [Doc("https://a.org/1", EN * 2, "warc"), Doc("https://a.org/1", EN * 3, "warc"),
            Doc("https://b.org/1", EN * 2, "warc"), Doc("https://c.org/de", DE, "warc"),
            Doc("https://c.org/short", "too short", "warc")]
    skips, stats = SkipCounter(), IngestStats()
    rows = list(filter_docs(docs, IngestConfig(min_chars=100), skips, stats=stats))
    assert [r["url"] for r in rows] == ["https://a.org/1"]
    assert skips.as_dict() == {"duplicate_text": 1, "duplicate_url": 1, "language": 1, "too_short": 1}
    assert stats.docs_seen == 5 and stats.kept == 1 and stats.languages["de"] == 1
    assert rows[0]["lang"] == "en" and len(rows[0]["id"]) == 32


@pytest.mark.parametrize("line", [
    ">>> print('hello')", "def main(argv):", "    return x + 1", "for (int i = 0; i < n; i++) {", "}",
    "import numpy as np", "#include <stdio.h>", "x = compute(a, b)", "$ pip install codecorpus",
    "const total = items.reduce((a, b) => a + b, 0);", "SELECT name FROM users WHERE id = 3",
])
def test_code_lines_detected(line):
    assert code_line(line)


@pytest.mark.parametrize("line", [
    "The function returns a new list; the original is unchanged.",
    "In the afternoon the wind turned and clouds came in from the west.",
    "Copyright (c) 2010 The Example Project contributors.",
    "  * New upstream release (Closes: #123456).",
])
def test_prose_lines_kept(line):
    assert not code_line(line)


def test_strip_code_removes_blocks_and_drops_code_heavy_docs():
    text = (EN + "\n\nFor example:\n\n```python\nimport os\nprint(os.getcwd())\n```\n\n" + EN + "\n\n"
            ">>> 2 + 2\n4\n>>> len('abc')\n3\n\n" + EN)
    r = strip_code(text)
    assert r.text is not None
    assert "import os" not in r.text and ">>>" not in r.text and "\n4\n" not in r.text
    assert r.text.count("committee") == 3
    code_heavy = "\n".join(["def f(x):", "    y = x * 2", "    return y"] * 20) + "\n" + EN
    assert strip_code(code_heavy, max_code_ratio=0.3).text is None


def test_strip_code_on_real_python_docs_page():
    docs = list(itertools.islice(iter_spec("local:python-docs@0/2", SkipCounter()), 40))
    if not docs:
        pytest.skip("python3-doc HTML not installed")
    results = [strip_code(d.text, 1.0) for d in docs]
    assert any(r.code_ratio > 0.05 for r in results)
    leftover = sum(code_line(x) for r in results for x in (r.text or "").split("\n"))
    assert leftover == 0


def test_math_score_separates_math_from_prose():
    math = ("Let $f(x) = x^2 + 1$. The derivative is $2x$, and the integral of the polynomial over [0, 1] "
            "equals 4/3. By the theorem, every prime p > 2 is odd; the matrix determinant is zero.")
    assert math_score(math) > 0.5
    assert math_score(EN) < 0.1


def test_fasttext_lid_model_path_is_used(tmp_path):
    """A real fastText language-id model (trained here on a few lines, labelled like lid.176)."""
    import fasttext

    train = tmp_path / "lid.txt"
    lines = [f"__label__en {EN.lower()}", f"__label__de {DE.lower()}", f"__label__fr {FR.lower()}"] * 30
    train.write_text("\n".join(lines) + "\n")
    model = fasttext.train_supervised(str(train), epoch=20, dim=8, minCount=1, bucket=1000, thread=1, seed=1,
                                      verbose=0)
    path = str(tmp_path / "lid.bin")
    model.save_model(path)
    lid = make_language_identifier(path)
    assert lid.name == "fasttext"
    assert lid.predict(DE)[0] == "de" and lid.predict(EN)[0] == "en"
    assert lid.predict("") == ("und", 0.0)
    docs = [Doc("https://x.org/de", DE * 2, "warc"), Doc("https://x.org/en", EN * 2, "warc")]
    rows = list(filter_docs(docs, IngestConfig(min_chars=50, languages=("de",), lid_model_path=path), SkipCounter()))
    assert [r["url"] for r in rows] == ["https://x.org/de"]

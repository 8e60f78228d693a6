"""Staged filtering (monotone counts, score columns) and recall-driven retraining examples."""

from __future__ import annotations

import pyarrow as pa
import pytest
from textcode_helpers import CODE_PAGE, PROSE_PAGE, code_page, prose

from corpus import shards
from corpus.schemas import text_row_id
from corpus.textcode import classifier as C
from corpus.textcode import pipeline
from corpus.textcode.extract import html_to_text
from corpus.textcode.staged import RecallConfig, RecallStats, recall_examples, score_column
from corpus.textcode.webtext import WEB_TEXT_SCHEMA

PARAMS = C.TrainParams(epoch=15, bucket=20_000, dim=16, min_count=1)


def _row(url: str, text: str) -> dict:
    return {"id": text_row_id(url, text), "url": url, "text": text, "source": "warc", "lang": "en",
            "lang_score": 0.9, "text_hash": str(hash(text))}


def _web_set(path: str, rows: list[dict]) -> str:
    with shards.ShardSetWriter(path, WEB_TEXT_SCHEMA, config={"t": 1}) as w:
        w.write_rows(rows)
    return path


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    examples = [(html_to_text(code_page(i)), 1) for i in range(40)] + [(html_to_text(prose(i)), 0) for i in range(40)]
    model = C.train(examples, PARAMS, workdir=str(d))
    path = str(d / "model.bin")
    C.save(model, path)
    return path


@pytest.fixture()
def web(tmp_path):
    rows = [_row(f"https://docs.example.org/py/{i}", html_to_text(code_page(i))) for i in range(30)]
    rows += [_row(f"https://blog.example.org/walks/{i}", html_to_text(prose(i))) for i in range(30)]
    return _web_set(str(tmp_path / "web"), rows)


def test_stage_counts_are_monotone_non_increasing(web, model_file, tmp_path):
    current, counts = web, [shards.count_rows(web)]
    for stage, thr in enumerate([0.3, 0.5, 0.7, 0.9], 1):
        out = str(tmp_path / f"s{stage}")
        m, st = pipeline.run_stage(current, out, model_file, stage, thr, config={"thr": thr})
        assert st.docs_in == counts[-1] and m.rows == st.kept
        assert sum(st.hist_all) == st.docs_in and sum(st.hist_kept) == st.kept
        counts.append(m.rows)
        current = out
    assert all(b <= a for a, b in zip(counts, counts[1:])), counts
    assert 0 < counts[-1] < counts[0]
    table = pa.Table.from_batches(list(shards.iter_batches(current)))
    for s, thr in enumerate([0.3, 0.5, 0.7, 0.9], 1):
        assert min(table.column(score_column(s)).to_pylist()) >= thr
    # What survives four stages is the code documentation, not the walks.
    assert all("docs.example.org" in u for u in table.column("url").to_pylist())
    assert table.schema.names[: len(WEB_TEXT_SCHEMA)] == WEB_TEXT_SCHEMA.names


def test_stage_on_empty_input_writes_empty_set(tmp_path, model_file):
    empty = _web_set(str(tmp_path / "empty"), [])
    m, st = pipeline.run_stage(empty, str(tmp_path / "out"), model_file, 1, 0.5, config={})
    assert (m.rows, st.docs_in, st.retention) == (0, 0, 0.0)


def test_recall_examples_expand_mostly_recalled_sections(tmp_path):
    code = [_row(f"https://docs.example.org/py/{i}", CODE_PAGE + str(i)) for i in range(10)]
    prose_rows = [_row(f"https://blog.example.org/walks/{i}", PROSE_PAGE + str(i)) for i in range(10)]
    # A documentation page that reads like prose, on the docs site: not recalled itself.
    odd = _row("https://docs.example.org/py/about", "About this documentation. " * 20)
    web = _web_set(str(tmp_path / "web"), code + prose_rows + [odd])
    prev = _web_set(str(tmp_path / "prev"), code[:8] + prose_rows[:1])  # 8/11 docs pages, 1/10 blog recalled
    stats = RecallStats()
    ex = list(recall_examples([(web, prev)], RecallConfig(domain_min_recall=0.5, domain_min_docs=3), stats))
    labels = {t: y for t, y in ex}
    assert labels[odd["text"]] == 1  # section-level expansion
    assert labels[code[9]["text"]] == 1
    assert labels[prose_rows[0]["text"]] == 1  # recalled -> positive
    assert labels[prose_rows[5]["text"]] == 0
    assert (stats.recalled, stats.positives_recalled, stats.positives_domain, stats.negatives) == (9, 9, 3, 9)
    assert stats.code_groups == 1 and stats.groups == 2


def test_recall_sampling_caps_are_deterministic(tmp_path):
    rows = [_row(f"https://s{i % 7}.org/p/{i}", f"text {i} " * 30) for i in range(200)]
    web = _web_set(str(tmp_path / "web"), rows)
    prev = _web_set(str(tmp_path / "prev"), rows[:50])
    cfg = RecallConfig(max_recalled=20, max_negatives=30, domain_min_recall=0.99)
    a = list(recall_examples([(web, prev)], cfg, RecallStats()))
    b = list(recall_examples([(web, prev)], cfg, RecallStats()))
    assert a == b
    pos = sum(y for _, y in a)
    assert 5 <= pos <= 40 and 10 <= len(a) - pos <= 60

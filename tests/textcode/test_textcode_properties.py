"""Property tests: extraction, URL normalization and code stripping never crash and keep invariants."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.textcode.codestrip import code_line, strip_code
from corpus.textcode.dedup import normalize_url, url_group
from corpus.textcode.extract import Rejected, payload_to_text
from corpus.textcode.langid import ScriptStopwordLid

FAST = settings(max_examples=60, deadline=None)


@FAST
@given(st.binary(max_size=3000), st.sampled_from([None, "text/html", "text/plain; charset=latin-1", "image/png"]))
def test_payload_to_text_only_rejects(data, ctype):
    try:
        out = payload_to_text(data, ctype)
    except Rejected as rej:
        assert rej.reason in {"empty_payload", "non_text_content_type", "binary_payload", "empty_extraction"}
    else:
        assert isinstance(out, str) and out == out.strip() and out


@FAST
@given(st.text(max_size=200))
def test_url_functions_total(url):
    n = normalize_url(url)
    assert isinstance(n, str)
    assert isinstance(url_group(url), str)


@FAST
@given(st.lists(st.sampled_from([
    "The meeting is on Tuesday and everyone is welcome to join us.", "def f(x):", "    return x * 2",
    "", ">>> f(2)", "4", "Prices rose sharply in the spring.", "for (i = 0; i < n; i++) {", "}",
    "```", "We thank all contributors for their patience.",
]), max_size=40), st.floats(min_value=0.0, max_value=1.0))
def test_strip_code_keeps_only_prose_lines_in_order(lines, ratio):
    text = "\n".join(lines)
    r = strip_code(text, ratio)
    assert 0.0 <= r.code_ratio <= 1.0
    if r.text is None:
        assert r.code_ratio > ratio
        return
    kept = [x for x in r.text.split("\n") if x.strip()]
    assert not any(code_line(x) for x in kept)
    it = iter(lines)
    assert all(any(x == y for y in it) for x in kept)  # an order-preserving subsequence


@FAST
@given(st.text(max_size=2000))
def test_language_id_total(text):
    lang, score = ScriptStopwordLid().predict(text)
    assert isinstance(lang, str) and 0.0 <= score <= 1.0

"""The numpy byte-buffer metrics equal the polars regex definitions on every row."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from quality_helpers import GOOD_PY, stdlib_file

from corpus.quality import QualityFilter, load_rules
from corpus.quality import metrics as M
from corpus.quality.bytestats import byte_metrics

CHECKED = ["line_count", "max_line_length", "mean_line_length", "alnum_fraction", "alpha_fraction",
           "chars_per_token"]


def _polars(texts: list[str | None]) -> dict[str, np.ndarray]:
    df = pl.DataFrame({"c": pl.Series("c", texts, dtype=pl.String)})
    c = pl.col("c").fill_null("")
    out = df.select([M.METRICS[m](c, "python").alias(m) for m in CHECKED] + [c.str.len_chars().alias("chars")])
    return {m: out.get_column(m).to_numpy().astype(np.float64) for m in CHECKED + ["chars"]}


def _compare(texts: list[str | None]) -> None:
    arr = pa.array(texts, type=pa.large_string())
    got, needs_regex = byte_metrics(arr)
    want = _polars(texts)
    ascii_rows = ~needs_regex
    for m in ["chars", "line_count", "max_line_length", "mean_line_length"]:
        np.testing.assert_allclose(got[m], want[m], err_msg=m)
    for m in ["alnum_fraction", "alpha_fraction", "chars_per_token"]:
        np.testing.assert_allclose(got[m][ascii_rows], want[m][ascii_rows], err_msg=m)


def test_real_files_match():
    _compare([stdlib_file(rel) for rel in GOOD_PY] + [None, "", "\n", "a", "a\n\n", "\r\n\r\n"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
                                                  max_size=80),
                          st.text(alphabet="ab_1 .\t\n\r\x0b\x0c\x1c(é", max_size=80)), min_size=1, max_size=6))
def test_random_rows_match(texts):
    _compare(texts)


def test_filter_uses_regex_values_for_non_ascii_rows():
    """A non-ASCII row gets the exact Unicode fractions (letters like é, 中 count as alphabetic)."""
    cjk = "# 注释\n" + "\n".join(f"变量{i} = '中文字符串{i}'" for i in range(10)) + "\n"
    t = pa.table({"id": ["a"], "content": [cjk], "language": ["python"]})
    f = QualityFilter(load_rules(overrides={"alphabetic_fraction": {"below": 0.4}}))
    keep, dropped = f.evaluate(t, "python")
    alpha = pl.DataFrame({"c": [cjk]}).select(M.alpha_fraction(pl.col("c"), "python")).item()
    assert alpha > 0.4 and keep[0], dropped  # ASCII-only counting would give < 0.1 and drop it


def test_sliced_and_chunked_arrays():
    texts = [stdlib_file(rel) for rel in GOOD_PY[:5]] + [None, "x\ny\n"]
    arr = pa.array(texts, type=pa.string())
    full, _ = byte_metrics(arr)
    part, _ = byte_metrics(arr.slice(2, 4))
    chunked, _ = byte_metrics(pa.chunked_array([arr.slice(0, 3), arr.slice(3)]))
    for m in CHECKED:
        np.testing.assert_allclose(part[m], full[m][2:6], err_msg=m)
        np.testing.assert_allclose(chunked[m], full[m], err_msg=m)

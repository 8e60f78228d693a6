"""Exact values and boundaries of the mixture budget: proxy tokens, share splits, caps, selection.

Every expected number here is computed by hand from the documented rules (``ceil(bytes / 4)``,
70:20:10 split inside each category, ``floor(target/available)`` epochs plus a seeded subset),
so an off-by-one or a swapped ratio changes the answer.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from corpus.mix.budget import Shares, effective_shares, plan_budget, proxy_tokens, proxy_tokens_str
from corpus.mix.mixer import MixInput, MixReport, _fill, _Scanned, _select


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 1), ("a", 1), ("abc", 1), ("abcd", 1), ("abcde", 2), ("a" * 8, 2), ("a" * 9, 3), ("é" * 2, 1), ("é" * 3, 2)],
)
def test_proxy_tokens_ceil_of_bytes_over_four(text: str, tokens: int) -> None:
    assert proxy_tokens_str(text) == tokens
    assert proxy_tokens(pa.array([text])).to_pylist() == [tokens]


def test_proxy_tokens_null_counts_as_one() -> None:
    assert proxy_tokens(pa.array([None, "abcdefghi"], pa.string())).to_pylist() == [1, 3]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
@example("\U0001f600" * 3)  # 12 bytes: exactly three tokens
def test_proxy_tokens_column_matches_scalar(text: str) -> None:
    n = len(text.encode("utf-8", "surrogatepass"))
    assert proxy_tokens(pa.array([text])).to_pylist() == [proxy_tokens_str(text)] == [max(1, -(-n // 4))]


def test_per_source_split_inside_each_category() -> None:
    # Unnormalized 7:2:1 (total 10), synthetic 10% of code, general 40% of text.
    got = Shares(code=7, text=2, math=1, general_of_text=0.4, synthetic_of_code=0.1).per_source()
    assert got == pytest.approx({"code": 0.63, "synthetic": 0.07, "text_code": 0.12, "general": 0.08, "math": 0.1})


@pytest.mark.parametrize("name", ["general_of_text", "synthetic_of_code"])
def test_split_bounds_are_inclusive(name: str) -> None:
    Shares(**{name: 0.0}).validate()
    Shares(**{name: 1.0}).validate()
    with pytest.raises(ValueError, match=name):
        Shares(**{name: -1e-9}).validate()
    with pytest.raises(ValueError, match=name):
        Shares(**{name: 1 + 1e-9}).validate()


def test_category_shares_zero_allowed_negative_or_all_zero_rejected() -> None:
    assert Shares(code=1, text=0, math=0).per_source()["code"] == pytest.approx(0.95)
    with pytest.raises(ValueError, match="text"):
        Shares(text=-1e-9).validate()
    with pytest.raises(ValueError, match="positive"):
        Shares(code=0, text=0, math=0).validate()


FULL = {"code": 10, "synthetic": 10, "text_code": 10, "general": 10, "math": 10}


def test_empty_sibling_share_goes_to_the_sibling_exactly() -> None:
    target = Shares().per_source()  # code .665, synthetic .035, text_code .15, general .05, math .1
    got, notes = effective_shares(target, {**FULL, "general": 0})
    assert got == pytest.approx({"code": 0.665, "synthetic": 0.035, "text_code": 0.2, "math": 0.1})
    assert len(notes) == 1 and "general" in notes[0] and "0.050" in notes[0]


def test_empty_category_spreads_proportionally_over_the_rest() -> None:
    target = Shares().per_source()
    got, notes = effective_shares(target, {**FULL, "math": 0})
    assert got == pytest.approx({"code": 0.665 / 0.9, "synthetic": 0.035 / 0.9, "text_code": 0.15 / 0.9,
                                 "general": 0.05 / 0.9})
    assert len(notes) == 1 and "category of math" in notes[0]


def test_sibling_with_zero_share_still_inherits() -> None:
    # general_of_text=0 gives text_code all of text; with text_code empty, general (share 0) is the
    # only alive sibling and takes the whole 0.2 (the base == 0 branch).
    target = Shares(general_of_text=0.0).per_source()
    got, _ = effective_shares(target, {**FULL, "text_code": 0})
    assert got["general"] == pytest.approx(0.2)
    assert sum(got.values()) == pytest.approx(1.0)


def test_available_one_token_is_alive_zero_is_dead() -> None:
    got, notes = effective_shares({"code": 0.5, "math": 0.5}, {"code": 1, "math": 0})
    assert got == {"code": 1.0} and notes
    got, notes = effective_shares({"code": 0.5, "math": 0.5}, {"code": 1, "math": 1})
    assert got == {"code": 0.5, "math": 0.5} and notes == []


def test_source_with_data_but_zero_share_is_left_out() -> None:
    got, _ = effective_shares({"code": 1.0, "math": 0.0}, {"code": 5, "math": 5})
    assert got == {"code": 1.0}
    with pytest.raises(ValueError, match="share of 0"):
        effective_shares({"code": 0.0}, {"code": 5})
    with pytest.raises(ValueError, match="no source"):
        effective_shares({"code": 1.0}, {"code": 0})


def test_budget_cap_is_inclusive() -> None:
    shares, avail = {"code": 0.5, "math": 0.5}, {"code": 100, "math": 50}
    # cap = min(100 * 2 / .5, 50 * 2 / .5) = 200
    assert plan_budget(shares, avail, 200, 2.0) == (200, {"code": 100, "math": 100}, [])
    total, targets, notes = plan_budget(shares, avail, 201, 2.0)
    assert (total, targets) == (200, {"code": 100, "math": 100})
    assert len(notes) == 1 and "'math'" in notes[0] and "201" in notes[0]


def test_budget_zero_means_everything_available() -> None:
    assert plan_budget({"code": 0.6, "math": 0.4}, {"code": 90, "math": 60, "general": 999}, 0, 4.0) == (
        150, {"code": 90, "math": 60}, [])


def test_fill_prefix_first_fit_and_closer_overshoot() -> None:
    sizes = np.array([5, 3, 8, 2])
    assert _fill(sizes, 9).tolist() == [0, 1]  # gap 1: the 2 would overshoot by 1, not closer
    assert _fill(sizes, 10).tolist() == [0, 1, 3]  # first fit closes the gap exactly
    assert _fill(sizes, 8).tolist() == [0, 1]  # a prefix summing exactly to the goal
    assert _fill(np.array([5, 4]), 8).tolist() == [0, 1]  # overshoot by 1 beats a gap of 3
    assert _fill(np.array([5, 6]), 8).tolist() == [0]  # overshoot 3 == gap 3: not closer, not taken
    assert _fill(np.array([5, 7, 6]), 8).tolist() == [0]  # smallest overshoot is compared (6 - 3 == 3)
    assert _fill(np.array([5, 7, 4]), 8).tolist() == [0, 2]  # smallest overshoot (4) wins
    assert _fill(np.array([4]), 0).tolist() == []
    assert _fill(np.array([4]), 3).tolist() == [0]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 20), min_size=1, max_size=12), st.integers(0, 150))
def test_fill_never_worse_than_the_plain_prefix(sizes: list[int], goal: int) -> None:
    arr = np.array(sizes)
    got = _fill(arr, goal)
    assert got.tolist() == sorted(set(got.tolist()))
    total = int(arr[got].sum())
    cum = np.cumsum(arr)
    prefix = int(cum[cum <= goal][-1]) if (cum <= goal).any() else 0
    assert abs(goal - total) <= goal - prefix
    # Within one document of the goal whenever the documents are enough to reach it.
    if arr.sum() >= goal:
        assert abs(goal - total) <= arr.max()


def _scans(tokens: list[int], keys: list[int]) -> list[_Scanned]:
    inp = MixInput("code", "unused")
    return [_Scanned(inp, np.array(keys, dtype=np.uint64), np.array(tokens, dtype=np.int64))]


@pytest.mark.parametrize(
    ("keys", "target", "reps"),
    [
        ([1, 2, 3], 75, [3, 0, 2]),  # 2 full epochs (60) + rest 15: key order picks row 0
        ([1, 2, 3], 80, [3, 0, 2]),  # rest 20: row 0 (10) fits; row 2 (20) would overshoot by 10
        ([3, 2, 1], 80, [2, 0, 3]),  # same rest, other seed order: row 2 (20) first and exact
        ([1, 2, 3], 60, [2, 0, 2]),  # exactly two epochs
        ([1, 2, 3], 0, [0, 0, 0]),
    ],
)
def test_select_epochs_and_seeded_rest(keys: list[int], target: int, reps: list[int]) -> None:
    scans = _scans([10, 0, 20], keys)
    _select(scans, target)
    assert scans[0].reps is not None and scans[0].reps.tolist() == reps


def test_select_equal_keys_tie_break_by_position_and_split_over_inputs() -> None:
    inp = MixInput("code", "unused")
    a = _Scanned(inp, np.array([5, 5], np.uint64), np.array([10, 10], np.int64))
    b = _Scanned(inp, np.array([5], np.uint64), np.array([10], np.int64))
    _select([a, b], 10)
    assert a.reps is not None and b.reps is not None
    assert (a.reps.tolist(), b.reps.tolist()) == ([1, 0], [0])
    _select([a, b], 0)
    assert a.reps.tolist() == [0, 0]


def test_actual_shares_empty_and_exact() -> None:
    assert MixReport().actual_shares() == {}
    assert MixReport(tokens={"code": 0}).actual_shares() == {"code": 0.0}
    r = MixReport(tokens={"code": 3, "math": 1, "general": 0})
    assert r.actual_shares() == {"code": 0.75, "math": 0.25, "general": 0.0}


def _text_set(root: str, asset: str, rows: list[tuple[str | None, str | None]], shard_rows: int = 1000) -> None:
    from corpus import shards
    from corpus.schemas import TEXT_SCHEMA

    table = pa.Table.from_pylist([{"id": i, "url": f"u/{i}", "text": t, "source": "x"} for i, t in rows],
                                 schema=TEXT_SCHEMA.set(0, TEXT_SCHEMA.field(0).with_nullable(True)))
    with shards.ShardSetWriter(shards.shard_set_path(root, asset), table.schema, shard_rows=shard_rows) as w:
        if table.num_rows:
            w.write_batch(table)


@pytest.mark.parametrize(
    ("total", "math_tokens", "order"),
    [
        # general (first in SOURCES order) and math reach progress 0.5 together: input order breaks the tie
        (12, 6, ["g1", "m1", "m2", "g1~1", "m1~1", "m2~1"]),
        # math's goal is 7: after epoch 0 it is at 3/7 < 0.5, so its epoch 1 comes before general's
        (14, 7, ["g1", "m1", "m2", "m1~1", "m2~1", "g1~1", "m1~2"]),
    ],
)
def test_plan_and_write_exact_rows_and_interleaving(tmp_path, total: int, math_tokens: int, order: list[str]) -> None:
    from corpus import shards
    from corpus.mix import MIX_SCHEMA, discover_inputs, plan_and_write

    root = str(tmp_path / "up")
    # math: a 1-token and a 2-token document (3 tokens), a row without id; general: one 3-token document
    _text_set(root, "math_clean", [("m1", "abcd"), ("m2", "abcdefgh"), (None, "abcd"), ("", "abcd")])
    _text_set(root, "general_clean", [("g1", "a" * 12)])
    inputs, _ = discover_inputs(root)
    with shards.ShardSetWriter(str(tmp_path / "mix"), MIX_SCHEMA) as w:
        r = plan_and_write(inputs, w, shares=Shares(code=0, text=1, math=1, general_of_text=1), total_tokens=total)
    assert r.available_docs["math"] == 2 and r.available_tokens["math"] == 3
    assert r.skipped["math: missing id"] == 2
    assert r.targets == {"general": total // 2, "math": total // 2}
    # rest 1 of math: the 1-token document either fits or is the first fit; general's 3-token
    # document would overshoot a rest of 1 by 2 and is not added.
    assert r.tokens == {"math": math_tokens, "general": 6}
    assert r.unique_docs == {"math": 2, "general": 1}
    rows = pa.concat_tables(pa.Table.from_batches([b]) for b in shards.iter_batches(str(tmp_path / "mix"))).to_pylist()
    ids = [x["id"] for x in rows]
    tail = ["m1~2"] if math_tokens == 7 else []
    assert ids == order
    assert [x["epoch"] for x in rows] == [int(i.partition("~")[2] or 0) for i in order]
    assert [x["n_tokens"] for x in rows][:3] == [3, 1, 2]
    assert {x["doc_id"] for x in rows} == {"m1", "m2", "g1"}
    assert rows[1]["path"] == "u/m1" and rows[1]["language"] is None and rows[1]["source"] == "math"
    assert r.rows == len(rows) and r.docs == {"math": 4 + len(tail), "general": 2}
    assert r.tokens_by_language == {("math", "-"): math_tokens, ("general", "-"): 6}


def test_fill_stops_at_an_exact_gap_of_zero_only() -> None:
    # prefix [5, 3] leaves a gap of 1: the 2 overshoots, the later 1 closes the gap exactly
    assert _fill(np.array([5, 3, 2, 1]), 9).tolist() == [0, 1, 3]


def test_mix_schema_contract() -> None:
    from corpus.mix import MIX_SCHEMA

    assert [(f.name, str(f.type), f.nullable) for f in MIX_SCHEMA] == [
        ("id", "string", False), ("doc_id", "string", False), ("source", "string", False),
        ("language", "string", True), ("repo", "string", True), ("path", "string", True),
        ("text", "large_string", True), ("n_tokens", "int64", True), ("epoch", "int32", True)]


def test_batches_without_selected_rows_and_empty_inputs_are_skipped_not_fatal(tmp_path) -> None:
    from corpus import shards
    from corpus.mix import MIX_SCHEMA, MixInput, discover_inputs, plan_and_write

    root = str(tmp_path / "up")
    # one row per part file (so per batch): the id-less row (never selected) and m2 (not in epoch 2) come before m1
    _text_set(root, "math_clean", [("m2", "abcdefgh"), ("", "abcd"), ("m1", "abcd")], shard_rows=1)
    _text_set(str(tmp_path / "empty"), "math_clean", [])
    inputs, _ = discover_inputs(root)
    assert len(list(shards.iter_batches(inputs[0].path))) == 3
    inputs = [MixInput("math", shards.shard_set_path(str(tmp_path / "empty"), "math_clean")), *inputs]
    with shards.ShardSetWriter(str(tmp_path / "mix"), MIX_SCHEMA) as w:
        r = plan_and_write(inputs, w, shares=Shares(code=0, text=0, math=1), total_tokens=7)
    ids = [x["id"] for b in shards.iter_batches(str(tmp_path / "mix")) for x in b.to_pylist()]
    # 2 full epochs of 3 tokens, then the 1-token m1 closes the rest of 1
    assert ids == ["m2", "m1", "m2~1", "m1~1", "m1~2"] and r.tokens == {"math": 7}
    assert r.available_docs["math"] == 2 and r.inputs == 2

"""Token budgeting: proxy counts, share redistribution, budget limits."""

from __future__ import annotations

import pyarrow as pa
import pytest

from corpus.mix.budget import Shares, effective_shares, plan_budget, proxy_tokens, proxy_tokens_str


def test_proxy_tokens_bytes_over_four():
    arr = pa.array(["", None, "abcd", "abcde", "日本"], pa.large_string())
    assert proxy_tokens(arr).to_pylist() == [1, 1, 1, 2, 2]  # 日本 = 6 UTF-8 bytes
    assert proxy_tokens_str("abcde") == 2


def test_default_shares_are_70_20_10():
    s = Shares().per_source()
    assert s["code"] + s["synthetic"] == pytest.approx(0.7)
    assert s["text_code"] + s["general"] == pytest.approx(0.2)
    assert s["math"] == pytest.approx(0.1)


def test_empty_source_share_moves_to_siblings_then_categories():
    avail = {"code": 100, "synthetic": 0, "text_code": 50, "general": 50, "math": 0}
    eff, notes = effective_shares(Shares().per_source(), avail)
    assert set(eff) == {"code", "text_code", "general"}
    assert sum(eff.values()) == pytest.approx(1.0)
    assert eff["code"] / (eff["text_code"] + eff["general"]) == pytest.approx(0.7 / 0.2)
    assert any("synthetic" in n for n in notes) and any("math" in n for n in notes)
    with pytest.raises(ValueError, match="no source has any data"):
        effective_shares(Shares().per_source(), dict.fromkeys(avail, 0))


def test_budget_is_lowered_when_a_source_would_repeat_too_often():
    shares = {"code": 0.7, "math": 0.3}
    total, targets, notes = plan_budget(shares, {"code": 1000, "math": 10}, 0, max_epochs=4)
    assert total == int(10 * 4 / 0.3) and targets["math"] == round(total * 0.3)
    assert notes and "math" in notes[0]
    total, targets, notes = plan_budget(shares, {"code": 1000, "math": 1000}, 500, max_epochs=4)
    assert total == 500 and targets == {"code": 350, "math": 150} and not notes


def test_invalid_shares_rejected():
    with pytest.raises(ValueError, match="general_of_text"):
        Shares(general_of_text=1.5).per_source()
    with pytest.raises(ValueError, match="must be positive"):
        Shares(code=0, text=0, math=0).per_source()

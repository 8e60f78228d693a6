"""Boundaries of packing and FIM: a document of exactly ``seq_len`` tokens, rate thresholds hit
exactly, cut points at both ends of the text. Expected rows are written out by hand."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from corpus.tokenize.fim import FimSplit, doc_rng, fim_layout, parse_fim_ids, split_fim
from corpus.tokenize.format import PAD_SOURCE
from corpus.tokenize.pack import Packer
from corpus.tokenize.tokenizer import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX

EOS, PAD = 1, 2
SPECIAL = {FIM_PREFIX: 90, FIM_MIDDLE: 91, FIM_SUFFIX: 92}


def _rows(p: Packer, final: bool = True) -> list[np.ndarray]:
    parts = p.drain(final=final)
    return [np.concatenate(a).tolist() for a in zip(*parts)] if parts else []


def test_document_of_seq_len_minus_one_fills_exactly_one_row() -> None:
    p = Packer(4, EOS, PAD)
    p.add([10, 11, 12], source=3)
    tok, mask, doc, src = _rows(p)
    assert tok == [[10, 11, 12, EOS]]  # no padded row after an exact fit
    assert mask == [[1, 1, 1, 1]] and doc == [[0, 0, 0, 0]] and src == [[3, 3, 3, 3]]
    assert (p.documents, p.tokens) == (1, 4)


def test_document_of_seq_len_spills_its_eos_into_a_padded_row() -> None:
    p = Packer(4, EOS, PAD)
    p.add([10, 11, 12, 13], source=1)
    tok, mask, doc, src = _rows(p)
    assert tok == [[10, 11, 12, 13], [EOS, PAD, PAD, PAD]]
    assert mask == [[1, 1, 1, 1], [1, 0, 0, 0]]
    assert doc == [[0, 0, 0, 0], [0, 1, 1, 1]]  # the continued document is 0; padding its own index
    assert src == [[1, 1, 1, 1], [1, PAD_SOURCE, PAD_SOURCE, PAD_SOURCE]]


def test_document_index_restarts_per_row_and_masks_pass_through() -> None:
    p = Packer(5, EOS, PAD)
    p.add([10, 11], source=0, mask=[0, 1])
    p.add([20, 21, 22], source=1)
    p.add([], source=2)
    tok, mask, doc, src = _rows(p)
    assert tok == [[10, 11, EOS, 20, 21], [22, EOS, EOS, PAD, PAD]]
    assert mask == [[0, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert doc == [[0, 0, 0, 1, 1], [0, 0, 1, 2, 2]]
    assert src == [[0, 0, 0, 1, 1], [1, 1, 2, PAD_SOURCE, PAD_SOURCE]]


def test_drop_last_drops_only_the_partial_row() -> None:
    p = Packer(3, EOS, PAD)
    p.add([10, 11, 12, 13], source=0)  # 5 tokens: one full row, 2 left
    tok, *_ = [np.concatenate(a).tolist() for a in zip(*p.drain(final=True, drop_last=True))]
    assert tok == [[10, 11, 12]]
    assert p.drain(final=True) == []


def test_ready_exactly_at_flush_rows_times_seq_len() -> None:
    p = Packer(4, EOS, PAD, flush_rows=2)
    p.add(list(range(10, 16)), source=0)  # 7 tokens
    assert not p.ready()
    p.add([], source=0)  # 8 tokens = 2 rows
    assert p.ready()


def test_non_final_drain_keeps_the_remainder_and_document_serials() -> None:
    p = Packer(3, EOS, PAD)
    p.add([10, 11, 12, 13], source=0)  # 5 tokens
    tok, _, doc, _ = _rows(p, final=False)
    assert tok == [[10, 11, 12]] and doc == [[0, 0, 0]]
    assert p._pending == 2 and not p.ready()
    p.add([20], source=0)
    tok, _, doc, _ = _rows(p)
    assert tok == [[13, EOS, 20], [EOS, PAD, PAD]]
    assert doc == [[0, 0, 1], [0, 1, 1]]


class _ScriptedRng:
    """Stands in for random.Random: returns scripted values and checks randint's bounds."""

    def __init__(self, randoms: list[float], ints: list[int], n: int) -> None:
        self.randoms, self.ints, self.n = list(randoms), list(ints), n

    def random(self) -> float:
        return self.randoms.pop(0)

    def randint(self, a: int, b: int) -> int:
        assert (a, b) == (0, self.n), "cut points are drawn from 0..len(text) inclusive"
        return self.ints.pop(0)


def test_fim_rate_threshold_is_exclusive() -> None:
    text = "abcdef"
    assert split_fim(text, _ScriptedRng([0.5], [], 6), 0.5, 0.5) is None  # draw == rate: no FIM
    got = split_fim(text, _ScriptedRng([0.4999, 0.3], [4, 2], 6), 0.5, 0.3)
    assert got == FimSplit("ab", "cd", "ef", "psm")  # cuts sorted; spm draw == spm_rate: PSM
    got = split_fim(text, _ScriptedRng([0.0, 0.2999], [6, 0], 6), 1e-9, 0.3)
    assert got == FimSplit("", "abcdef", "", "spm")  # cuts at both ends of the text


def test_fim_split_is_a_frozen_value() -> None:
    s = FimSplit("a", "b", "c", "psm")
    assert s == FimSplit("a", "b", "c", "psm") and hash(s) == hash(FimSplit("a", "b", "c", "psm"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.mode = "spm"  # type: ignore[misc]


def test_fim_rates_zero_and_one() -> None:
    for i in range(50):
        rng = doc_rng(3, f"d{i}", "fim")
        s = split_fim("x = 1\n", rng, 1.0, 1.0)
        assert s is not None and s.mode == "spm" and s.original == "x = 1\n"
        assert split_fim("x = 1\n", doc_rng(3, f"d{i}", "fim"), 1.0, 0.0).mode == "psm"  # type: ignore[union-attr]


def test_doc_rng_depends_on_seed_id_and_salt() -> None:
    base = doc_rng(1, "a", "fim").random()
    assert doc_rng(1, "a", "fim").random() == base
    assert len({base, doc_rng(2, "a", "fim").random(), doc_rng(1, "b", "fim").random(),
                doc_rng(1, "a", "other").random()}) == 4


def test_fim_layouts_exact_and_parse_back() -> None:
    pre, mid, suf = [1, 2], [3], [4, 5]
    assert fim_layout("psm", pre, mid, suf, SPECIAL) == [90, 1, 2, 92, 4, 5, 91, 3]
    assert fim_layout("spm", pre, mid, suf, SPECIAL) == [90, 92, 4, 5, 91, 1, 2, 3]
    assert parse_fim_ids([90, 1, 2, 92, 4, 5, 91, 3], SPECIAL) == ("psm", [1, 2], [3], [4, 5])
    assert parse_fim_ids([90, 92, 4, 5, 91, 1, 2, 3], SPECIAL) == ("spm", [], [1, 2, 3], [4, 5])


def test_parse_fim_shortest_sample_and_rejects() -> None:
    assert parse_fim_ids([90, 92, 91], SPECIAL) == ("spm", [], [], [])  # three ids: the minimum
    assert parse_fim_ids([90, 1, 92, 91], SPECIAL) == ("psm", [1], [], [])
    with pytest.raises(ValueError, match="not a FIM sample"):
        parse_fim_ids([90, 92], SPECIAL)
    with pytest.raises(ValueError, match="not a FIM sample"):
        parse_fim_ids([1, 90, 92, 91], SPECIAL)
    with pytest.raises(ValueError, match="unknown FIM mode"):
        fim_layout("pms", [], [], [], SPECIAL)

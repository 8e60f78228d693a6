"""FIM: round trips on real files, seeded decisions, PSM/SPM layouts."""

from __future__ import annotations

import pytest
from tokdata import MULTILINGUAL, non_ascii_texts, stdlib_texts, trained_tokenizer

from corpus.tokenize.encoder import FastEncoder
from corpus.tokenize.fim import doc_rng, fim_ids, fim_layout, parse_fim_ids, split_fim
from corpus.tokenize.tokenizer import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX


@pytest.fixture(scope="module")
def enc(tmp_path_factory):
    return FastEncoder.from_file(str(trained_tokenizer(tmp_path_factory.mktemp("tok") / "t.json")))


def test_fim_split_round_trip_on_real_files():
    docs = stdlib_texts(("json", "email")) + non_ascii_texts(6) + MULTILINGUAL
    n_fim = 0
    for i, d in enumerate(docs):
        for seed in range(3):
            s = split_fim(d, doc_rng(seed, f"doc{i}", "fim"), 1.0, 0.5)
            assert s is not None
            assert s.prefix + s.middle + s.suffix == d
            n_fim += 1
    assert n_fim == 3 * len(docs)


def test_fim_is_seeded_per_document_and_rate_is_respected():
    text = "def f(x):\n    return x\n" * 5
    a = [split_fim(text, doc_rng(7, f"id{i}", "fim"), 0.5, 0.5) for i in range(2000)]
    b = [split_fim(text, doc_rng(7, f"id{i}", "fim"), 0.5, 0.5) for i in range(2000)]
    assert a == b
    rate = sum(x is not None for x in a) / len(a)
    assert 0.45 < rate < 0.55
    spm = sum(x.mode == "spm" for x in a if x) / sum(x is not None for x in a)
    assert 0.44 < spm < 0.56
    assert all(split_fim(text, doc_rng(7, f"id{i}", "fim"), 0.0, 0.5) is None for i in range(100))
    assert split_fim("", doc_rng(0, "x"), 1.0, 0.5) is None


def test_psm_and_spm_layouts_decode_back_to_the_document(enc):
    special = enc.info.special_tokens
    p, m, s = special[FIM_PREFIX], special[FIM_MIDDLE], special[FIM_SUFFIX]
    doc = non_ascii_texts(1)[0][:3000]
    for seed in range(20):
        sp = split_fim(doc, doc_rng(seed, "d", "fim"), 1.0, 0.5)
        ids = fim_ids(sp, enc.encode, special)
        assert ids.count(p) == ids.count(m) == ids.count(s) == 1
        mode, pre, mid, suf = parse_fim_ids(ids, special)
        assert mode == sp.mode
        if mode == "psm":
            assert ids[0] == p and enc.decode(pre) == sp.prefix
            assert enc.decode(pre) + enc.decode(mid) + enc.decode(suf) == doc
        else:
            assert ids[:2] == [p, s]
            assert enc.decode(mid) == sp.prefix + sp.middle  # SPM: prefix and middle are contiguous
            assert enc.decode(mid) + enc.decode(suf) == doc


def test_fim_layout_rejects_unknown_mode():
    with pytest.raises(ValueError, match="unknown FIM mode"):
        fim_layout("pms", [1], [2], [3], {FIM_PREFIX: 0, FIM_MIDDLE: 1, FIM_SUFFIX: 2})

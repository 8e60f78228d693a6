"""Tokenizer training/loading and the fast encoder: round trips and id equality on real files."""

from __future__ import annotations

import json

import pytest
from tokdata import MULTILINGUAL, non_ascii_texts, stdlib_texts, trained_tokenizer

from corpus.tokenize.encoder import FastEncoder, sanitize
from corpus.tokenize.tokenizer import (
    SPECIAL_TOKENS,
    TokenizerError,
    load_tokenizer,
    merges_from_ranks,
    train_bpe,
)


@pytest.fixture(scope="module")
def tok_path(tmp_path_factory):
    return trained_tokenizer(tmp_path_factory.mktemp("tok") / "tokenizer.json")


@pytest.fixture(scope="module")
def enc(tok_path):
    return FastEncoder.from_file(str(tok_path))


def test_special_tokens_have_fixed_ids(enc):
    assert list(enc.info.special_tokens) == list(SPECIAL_TOKENS)
    assert [enc.special(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    assert enc.vocab_size == 1024


def test_roundtrip_on_real_files_including_non_ascii(enc):
    docs = non_ascii_texts(12) + MULTILINGUAL + stdlib_texts(("json",))
    assert len(docs) > 15
    assert any(any(ord(c) > 0x3000 for c in d) for d in docs)
    for d in docs:
        assert enc.decode(enc.encode(d)) == d


def test_fast_encoder_ids_equal_hf_ids(enc):
    docs = non_ascii_texts(12) + MULTILINGUAL + stdlib_texts(("http", "logging"))
    assert enc.verify(docs) == []
    enc.hf.encode_special_tokens = True
    try:
        ref = [e.ids for e in enc.hf.encode_batch(docs, add_special_tokens=False)]
    finally:
        enc.hf.encode_special_tokens = False
    assert enc.encode_batch(docs) == ref


def test_literal_special_strings_are_plain_text(enc):
    ids = enc.encode("a <|endoftext|> b")
    assert enc.special("<|endoftext|>") not in ids
    assert enc.decode(ids) == "a <|endoftext|> b"


def test_empty_document_encodes_to_nothing(enc):
    assert enc.encode("") == []
    assert enc.encode_batch(["", "x", ""])[0] == []


def test_lone_surrogates_are_replaced_and_counted(enc):
    before = enc.stats.surrogates_replaced
    text = "ok \udcff and \ud800 end"  # what surrogateescape-decoded bytes look like
    ids = enc.encode(text)
    assert enc.decode(ids) == "ok \ufffd and \ufffd end"
    assert enc.stats.surrogates_replaced - before == 2
    assert sanitize("clean")[1] == 0


def test_merges_match_tiktoken_semantics_on_ranks():
    ranks = {bytes([i]): i for i in range(256)}
    for t in (b"ab", b"bc", b"abc", b"abcd"):
        ranks[t] = len(ranks)
    # tiktoken joins the lowest-ranked pair first: a+b (256) beats b+c (257), so "abc" can only
    # ever be formed from "ab"+"c", and "abcd" from "abc"+"d"
    assert merges_from_ranks(ranks) == [(b"a", b"b"), (b"b", b"c"), (b"ab", b"c"), (b"abc", b"d")]


def test_missing_special_tokens_is_a_clear_error(tok_path, tmp_path):
    raw = json.loads(tok_path.read_text())
    raw["added_tokens"] = [a for a in raw["added_tokens"] if a["content"] not in ("<|fim_pad|>", "<|repo_name|>")]
    bad = tmp_path / "no_specials.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(TokenizerError) as e:
        load_tokenizer(bad)
    assert "<|fim_pad|>" in str(e.value) and "<|repo_name|>" in str(e.value) and str(bad) in str(e.value)


def test_not_a_tokenizer_file(tmp_path):
    p = tmp_path / "garbage.json"
    p.write_text("{not json")
    with pytest.raises(TokenizerError, match="not a Hugging Face tokenizer.json"):
        load_tokenizer(p)
    with pytest.raises(TokenizerError, match="not found"):
        load_tokenizer(tmp_path / "absent.json")


def test_vocab_too_small_rejected():
    with pytest.raises(TokenizerError, match="too small"):
        train_bpe(["abc"], 100)


def test_nfc_normalizer_is_honoured(tok_path, tmp_path):
    """Qwen2's tokenizer.json normalizes to NFC; the fast encoder must do the same."""
    raw = json.loads(tok_path.read_text())
    raw["normalizer"] = {"type": "NFC"}
    p = tmp_path / "nfc.json"
    p.write_text(json.dumps(raw))
    enc = FastEncoder.from_file(str(p))
    docs = ["cafe\u0301 vs café", "Ångström A\u030angstro\u0308m"] + MULTILINGUAL
    assert enc.verify(docs) == []
    assert enc.decode(enc.encode("cafe\u0301")) == "café"


def test_gpt2_style_pre_tokenizer_is_supported(tok_path, tmp_path):
    raw = json.loads(tok_path.read_text())
    raw["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    p = tmp_path / "gpt2style.json"
    p.write_text(json.dumps(raw))
    enc = FastEncoder.from_file(str(p))
    assert enc.info.pattern.startswith("'s|'t")
    assert enc.verify(non_ascii_texts(4) + MULTILINGUAL + stdlib_texts(("json",))) == []


def test_unsupported_pre_tokenizer_rejected(tok_path, tmp_path):
    raw = json.loads(tok_path.read_text())
    raw["pre_tokenizer"] = {"type": "Whitespace"}
    p = tmp_path / "ws.json"
    p.write_text(json.dumps(raw))
    with pytest.raises(TokenizerError, match="unsupported pre_tokenizer"):
        load_tokenizer(p)


def test_training_tolerates_lone_surrogates():
    raw = "caf\xe9 na\xefve".encode("latin-1").decode("utf-8", errors="surrogateescape")
    tok = train_bpe([raw * 20, "def f(): pass\n" * 20], 300)
    assert tok.get_vocab_size() <= 300

"""Real token shards for the training tests: stdlib Python files, a small BPE trained here,
packed into the documented codecorpus-tokens-v1 format (with FIM documents)."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from corpus import shards

# One intra-op thread: on a shared 2-core machine OpenMP spin-waiting makes 2 threads ~8x slower.
torch.set_num_threads(1)

STDLIB = "/root/.pyenv/versions/3.11.7/lib/python3.11"
SPECIALS = ["<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
            "<|repo_name|>", "<|file_sep|>", "<|im_start|>", "<|im_end|>"]


def stdlib_texts(n: int = 40, max_chars: int = 6000) -> list[str]:
    files = sorted(glob.glob(os.path.join(STDLIB, "*.py")))[:n]
    out = []
    for f in files:
        with open(f, encoding="utf-8", errors="replace") as fh:
            out.append(fh.read()[:max_chars])
    return out


def train_tokenizer(texts: list[str], vocab_size: int = 512) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return tok


def write_tokenizer_set(path: str, tok: Tokenizer) -> str:
    with shards.ShardSetWriter(path, None, config={"t": 1}) as w:
        w.add_side_file("tokenizer.json", tok.to_str().encode())
    return os.path.join(path, "tokenizer.json")


def pack(docs: list[list[int]], seq_len: int, pad_id: int,
         keep_short_whole: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy packing: documents concatenated, long ones split across rows, tails padded (mask 0)."""
    toks, mask, dids = [], [], []
    row_t, row_d, d = [], [], 0

    def flush() -> None:
        n = seq_len - len(row_t)
        toks.append(row_t + [pad_id] * n)
        mask.append([1] * len(row_t) + [0] * n)
        dids.append(row_d + [d] * n)

    for doc in docs:
        if keep_short_whole and row_t and len(doc) <= seq_len and len(doc) > seq_len - len(row_t):
            flush()  # a short document (a FIM sample) starts a new row instead of being cut
            row_t, row_d, d = [], [], 0
        pos = 0
        while pos < len(doc):
            take = doc[pos:pos + seq_len - len(row_t)]
            row_t += take
            row_d += [d] * len(take)
            pos += len(take)
            if len(row_t) == seq_len:
                toks.append(row_t)
                mask.append([1] * seq_len)
                dids.append(row_d)
                row_t, row_d, d = [], [], 0
        if row_t:
            d += 1
    if row_t:
        flush()
    return (np.asarray(toks, dtype="<u4"), np.asarray(mask, dtype="u1"), np.asarray(dids, dtype="<u2"))


def write_token_set(path: str, tokens: np.ndarray, mask: np.ndarray, docs: np.ndarray, *, vocab_size: int,
                    eos_id: int = 0, pad_id: int = 4, special_tokens: dict | None = None, shard_rows: int = 64,
                    seq_len: int | None = None) -> str:
    seq_len = seq_len or tokens.shape[1]
    extra = {"format": "codecorpus-tokens-v1", "seq_len": seq_len, "vocab_size": vocab_size,
             "n_seq": int(tokens.shape[0]), "eos_id": eos_id, "pad_id": pad_id, "tokenizer_sha256": "test",
             "special_tokens": special_tokens or {s: i for i, s in enumerate(SPECIALS)}}
    with shards.ShardSetWriter(path, None, config={"n": int(tokens.shape[0])}, extra=extra) as w:
        for k, s in enumerate(range(0, tokens.shape[0], shard_rows)):
            n = min(shard_rows, tokens.shape[0] - s)
            for arr, name in ((tokens, "tokens.u32"), (mask, "mask.u8"), (docs, "docs.u16")):
                with open(w.side_file_path(f"part-{k:05d}.{name}", rows=n), "wb") as fh:
                    fh.write(np.ascontiguousarray(arr[s:s + n]).tobytes())
    return path


def encode_docs(tok: Tokenizer, texts: list[str], fim_every: int = 3) -> list[list[int]]:
    """File documents ending in <|endoftext|>; every ``fim_every``-th one as a PSM FIM sample."""
    eos, pre, mid, suf = (tok.token_to_id(s) for s in ("<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>",
                                                       "<|fim_suffix|>"))
    docs = []
    for i, t in enumerate(texts):
        if fim_every and i % fim_every == 1:
            a, b = len(t) // 3, len(t) // 3 + 40
            p, m, s = tok.encode(t[:a]).ids, tok.encode(t[a:b]).ids, tok.encode(t[b:b + 400]).ids
            docs.append([pre] + p[-40:] + [suf] + s[:40] + [mid] + m + [eos])
        else:
            docs.append(tok.encode(t).ids + [eos])
    return docs


@pytest.fixture(scope="session")
def corpus_root(tmp_path_factory):
    """A data root with ``tokenizer`` and ``tokens_stage1`` (seq 128) / ``tokens_stage2`` (seq 256)."""
    root = str(tmp_path_factory.mktemp("train_root"))
    texts = stdlib_texts()
    tok = train_tokenizer(texts)
    write_tokenizer_set(shards.shard_set_path(root, "tokenizer"), tok)
    docs = encode_docs(tok, texts)
    vocab = tok.get_vocab_size()
    specials = {s: tok.token_to_id(s) for s in SPECIALS}
    for asset, seq in (("tokens_stage1", 128), ("tokens_stage2", 256)):
        t, m, d = pack(docs, seq, specials["<|fim_pad|>"])
        write_token_set(shards.shard_set_path(root, asset), t, m, d, vocab_size=vocab,
                        eos_id=specials["<|endoftext|>"], pad_id=specials["<|fim_pad|>"], special_tokens=specials)
    return root

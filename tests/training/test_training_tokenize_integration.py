"""Training on token shards built by the real tokenize stage library (corpus/tokenize), with its
tokenizer, FIM (PSM + SPM), per-token sources and held-out validation set."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest
from conftest import stdlib_texts

from corpus import shards
from training.data import TokenShardDataset
from training.evaluate import fim_exact_match, heldout_by_source
from training.pretrain import TrainConfig, train, unigram_entropy

build = pytest.importorskip("corpus.tokenize.build")
tokenizer_mod = pytest.importorskip("corpus.tokenize.tokenizer")
encoder_mod = pytest.importorskip("corpus.tokenize.encoder")


@pytest.fixture(scope="module")
def real_tokens(tmp_path_factory):
    root = tmp_path_factory.mktemp("real_tok")
    texts = stdlib_texts(n=60, max_chars=4000)
    tok = tokenizer_mod.train_bpe(texts, vocab_size=600)
    tok_path = str(root / "tokenizer.json")
    tok.save(tok_path)
    mix = str(root / "mixture.parquet")
    rows = [{"id": f"d{i}", "source": "code", "text": t} for i, t in enumerate(texts)]
    rows += [{"id": f"m{i}", "source": "math", "text": f"Let x = {i}. Then x squared is {i * i}.\n" * 5}
             for i in range(20)]
    import pyarrow.parquet as pq
    pq.write_table(pa.Table.from_pylist(rows), mix)
    enc = encoder_mod.FastEncoder.from_file(tok_path, threads=1)
    settings = build.StageSettings(seq_len=128, fim_rate=0.5, spm_rate=0.5, seed=0, val_fraction=0.1)
    train_p, val_p = str(root / "tokens_stage1"), str(root / "tokens_stage1_val")
    build.build_stage1([mix], enc, train_p, val_p, settings)
    return train_p, val_p


def test_train_and_evaluate_on_tokenize_stage_output(real_tokens, tmp_path):
    train_p, val_p = real_tokens
    ds, val = TokenShardDataset(train_p), TokenShardDataset(val_p)
    assert ds.has_sources and "code" in ds.sources and len(val) > 0
    cfg = TrainConfig(steps=40, lr=1e-2, warmup_steps=5, micro_batch_size=16, eval_data=val_p, log_every=100)
    r = train(cfg, train_p, str(tmp_path / "ck"), log=lambda s: None)
    assert r.final["final_loss"] < unigram_entropy(ds)
    assert np.isfinite(r.final["heldout_loss"])
    res = heldout_by_source(r.model, val, np.arange(len(val)))
    assert "source:code" in res and res["all"]["tokens"] > 0
    fim = fim_exact_match(r.model, ds, np.arange(len(ds)), max_samples=3)
    # The builder writes PSM and SPM samples; SPM ones are counted as skipped, PSM ones decoded.
    assert fim.samples + sum(fim.skipped.values()) > 0
    assert os.path.exists(os.path.join(r.checkpoint, "model.safetensors"))
    assert shards.is_committed(r.checkpoint)

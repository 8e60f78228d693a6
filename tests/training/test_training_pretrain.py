"""Token-shard loading, the pretraining loop, exact resume, and the bad-input paths."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from conftest import pack, write_token_set

from corpus import shards
from training import checkpoint as ckpt
from training.data import BatchSampler, TokenShardDataset, TokenShardError
from training.pretrain import NonFiniteLossError, TrainConfig, train, unigram_entropy


def _stage1(root: str) -> str:
    return shards.shard_set_path(root, "tokens_stage1")


def test_dataset_reads_documented_format(corpus_root):
    ds = TokenShardDataset(_stage1(corpus_root))
    assert ds.seq_len == 128 and len(ds) > 100 and ds.vocab_size == 512
    tok, mask, docs = ds.rows([0, len(ds) - 1])
    assert tok.shape == (2, 128) and tok.dtype == np.uint32
    b = ds.batch([3, 4])
    assert b.input_ids.shape == (2, 127)
    assert torch.equal(b.targets[:, :-1], b.input_ids[:, 1:])
    assert ds.max_token_id() < 512
    # Rows are read across shard boundaries (64 rows per shard in the fixture).
    full = np.concatenate([ds.rows([i])[0] for i in range(60, 70)])
    assert np.array_equal(full, ds.rows(list(range(60, 70)))[0])


def test_sampler_is_seeded_and_resumable():
    a = BatchSampler(np.arange(10), 4, seed=7)
    seq = [a.next().tolist() for _ in range(6)]
    assert sorted(sum(seq[:2], []) + seq[2][:2]) == list(range(10))  # epoch 0 is a permutation
    b = BatchSampler(np.arange(10), 4, seed=7)
    for _ in range(3):
        b.next()
    c = BatchSampler(np.arange(10), 4, seed=7)
    c.load_state_dict(b.state_dict())
    assert [c.next().tolist() for _ in range(3)] == seq[3:]
    with pytest.raises(TokenShardError, match="data changed"):
        BatchSampler(np.arange(11), 4, seed=7).load_state_dict(b.state_dict())


def test_training_loss_falls_below_unigram_entropy(corpus_root, tmp_path):
    data = _stage1(corpus_root)
    cfg = TrainConfig(steps=80, lr=1e-2, warmup_steps=5, micro_batch_size=16, heldout_seqs=8, log_every=20)
    logs: list[str] = []
    r = train(cfg, data, str(tmp_path / "ck"), log=logs.append)
    h = unigram_entropy(TokenShardDataset(data))
    first = r.history[0]["loss"]
    assert first > np.log(512) - 0.3  # starts near uniform
    assert r.final["final_loss"] < h - 0.2, (r.final, h)
    assert np.isfinite(r.final["heldout_loss"])
    assert any("tok/s" in line for line in logs)
    assert r.history[-1]["tokens_per_s"] > 0
    assert r.checkpoint and os.path.exists(os.path.join(r.checkpoint, "model.safetensors"))


def test_exact_resume_matches_straight_run(corpus_root, tmp_path):
    data = _stage1(corpus_root)
    base = dict(steps=6, lr=5e-3, warmup_steps=2, micro_batch_size=4, grad_accum=2, log_every=1)
    straight = train(TrainConfig(**base), data, str(tmp_path / "a"), log=lambda s: None)
    ck_root = str(tmp_path / "b")
    # Run 3 steps with the full schedule (steps=6) and a checkpoint at step 3, then "crash".
    cfg = TrainConfig(**base | {"checkpoint_every": 3})
    _train_until(cfg, data, ck_root, stop_after=3)
    logs: list[str] = []
    resumed = train(cfg, data, ck_root, log=logs.append)
    assert resumed.resumed_from == 3 and any("resumed from" in m for m in logs)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    for (n, p), (_, q) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(p, q), n


def _train_until(cfg: TrainConfig, data: str, ck_root: str, stop_after: int) -> None:
    """Run ``cfg`` but kill it (exception from the logger) right after step ``stop_after``."""

    class Crash(Exception):
        pass

    def log(msg: str) -> None:
        if msg.startswith(f"step {stop_after + 1}/"):
            raise Crash

    with pytest.raises(Crash):
        train(cfg, data, ck_root, log=log)


def test_shards_with_wrong_vocab_or_seq_len_are_refused(corpus_root, tmp_path):
    data = _stage1(corpus_root)
    model_dir = train(TrainConfig(steps=1, micro_batch_size=2), data, str(tmp_path / "m"), log=lambda s: None).checkpoint
    t, m, d = pack([list(range(1, 300))] * 3, 64, 0)
    other = write_token_set(str(tmp_path / "v"), t, m, d, vocab_size=1000)
    with pytest.raises(TokenShardError, match="vocab_size 1000 but the model has 512"):
        train(TrainConfig(steps=1, init_from=model_dir), other, None, log=lambda s: None)
    with pytest.raises(TokenShardError, match="seq_len 128 but training is configured for 256"):
        train(TrainConfig(steps=1, seq_len=256), data, None, log=lambda s: None)
    longer = shards.shard_set_path(corpus_root, "tokens_stage2")
    with pytest.raises(TokenShardError, match="exceeds the model's max_position_embeddings 128"):
        train(TrainConfig(steps=1, init_from=model_dir), longer, None, log=lambda s: None)
    # A token id outside the vocabulary (corrupt shard) is named.
    t2 = t.copy()
    t2[1, 5] = 700
    bad = write_token_set(str(tmp_path / "bad"), t2, m, d, vocab_size=512)
    with pytest.raises(TokenShardError, match="token id 700 >= vocab_size 512"):
        train(TrainConfig(steps=1), bad, None, log=lambda s: None)


def test_truncated_or_malformed_token_sets(tmp_path):
    t, m, d = pack([list(range(1, 200))] * 2, 32, 0)
    path = write_token_set(str(tmp_path / "t"), t, m, d, vocab_size=256)
    f = os.path.join(path, "part-00000.mask.u8")
    with open(f, "r+b") as fh:
        fh.truncate(10)
    with pytest.raises(TokenShardError, match="part-00000.mask.u8: 10 bytes, expected"):
        TokenShardDataset(path)
    with pytest.raises(TokenShardError, match="no _manifest.json"):
        TokenShardDataset(str(tmp_path / "nothing"))
    with shards.ShardSetWriter(str(tmp_path / "p"), None, extra={"format": "parquet"}) as w:
        w.add_side_file("x", b"1")
    with pytest.raises(TokenShardError, match="expected 'codecorpus-tokens-v1'"):
        TokenShardDataset(str(tmp_path / "p"))


def test_corrupt_checkpoint_is_named_and_previous_kept(corpus_root, tmp_path):
    data = _stage1(corpus_root)
    cfg = TrainConfig(steps=4, micro_batch_size=2, checkpoint_every=2, keep_checkpoints=3, log_every=100)
    r = train(cfg, data, str(tmp_path / "ck"), log=lambda s: None)
    run_dir = os.path.dirname(r.checkpoint)
    found = [p for _, p in ckpt.list_checkpoints(run_dir)]
    assert [os.path.basename(p) for p in found] == ["step-00000002", "step-00000004"]
    # A write killed half-way (no manifest) is never taken for a checkpoint.
    os.makedirs(os.path.join(run_dir, "step-00000099"))
    open(os.path.join(run_dir, "step-00000099", "model.safetensors"), "wb").write(b"partial")
    assert ckpt.latest_checkpoint(run_dir) == found[-1]
    weights = os.path.join(found[-1], "model.safetensors")
    raw = bytearray(open(weights, "rb").read())
    raw[-5] ^= 0xFF
    open(weights, "wb").write(bytes(raw))
    with pytest.raises(ckpt.CheckpointError, match="step-00000004/model.safetensors: sha256 does not match.*"
                       "previous valid checkpoint is .*step-00000002"):
        train(cfg, data, str(tmp_path / "ck"), log=lambda s: None)
    assert all(os.path.exists(p) for p in found)  # nothing deleted
    # After removing the corrupt one, training resumes from the previous checkpoint.
    shards.delete_set(found[-1])
    logs: list[str] = []
    r2 = train(cfg, data, str(tmp_path / "ck"), log=logs.append)
    assert r2.resumed_from == 2 and r2.final["steps"] == 4


def test_nan_loss_stops_with_step_and_batch_named(corpus_root, tmp_path):
    data = _stage1(corpus_root)
    ck_root = str(tmp_path / "ck")
    ok = TrainConfig(steps=2, micro_batch_size=2, checkpoint_every=1, log_every=100)
    kept = train(ok, data, ck_root, log=lambda s: None).checkpoint
    # An absurd learning rate blows the weights up to inf within a few steps: loss becomes NaN.
    bad = TrainConfig(steps=20, micro_batch_size=2, lr=1e30, warmup_steps=0, grad_clip=0.0, checkpoint_every=1,
                      log_every=100)
    with pytest.raises(NonFiniteLossError, match=r"at step \d+, micro-batch 0 \(data rows \[\d+, \d+\]\).*"
                       "Last checkpoint kept"):
        train(bad, data, ck_root, log=lambda s: None)
    assert shards.is_committed(kept)


def test_chunked_loss_training_matches_plain(corpus_root):
    data = _stage1(corpus_root)
    base = dict(steps=3, micro_batch_size=4, log_every=100)
    a = train(TrainConfig(**base), data, None, log=lambda s: None)
    b = train(TrainConfig(**base, loss_chunk_tokens=100), data, None, log=lambda s: None)
    assert np.allclose([h["loss"] for h in a.history], [h["loss"] for h in b.history], rtol=1e-5)


def test_init_from_plain_hugging_face_folder(corpus_root, tmp_path):
    from training.hf_io import save_hf
    from training.model import Qwen2ForCausalLM, get_preset

    cfg = get_preset("tiny", vocab_size=512, max_position_embeddings=128)
    save_hf(Qwen2ForCausalLM(cfg), cfg, str(tmp_path / "hf"))  # no manifest: not one of our shard sets
    r = train(TrainConfig(steps=2, micro_batch_size=2, init_from=str(tmp_path / "hf"),
                          model_overrides={"rope_theta": 5e5}), _stage1(corpus_root), None, log=lambda s: None)
    assert r.model_cfg.rope_theta == 5e5 and r.final["steps"] == 2


@pytest.mark.parametrize("chunk", [0, 64])
def test_bf16_autocast_path_runs_on_cpu(corpus_root, chunk):
    """The GPU code path (bf16 autocast over fp32 weights) exercised on CPU."""
    cfg = TrainConfig(steps=4, micro_batch_size=4, precision="bf16", loss_chunk_tokens=chunk, lr=1e-2, log_every=100)
    r = train(cfg, _stage1(corpus_root), None, log=lambda s: None)
    assert all(np.isfinite(h["loss"]) for h in r.history)
    assert next(r.model.parameters()).dtype == torch.float32  # master weights stay fp32

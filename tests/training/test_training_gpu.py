"""CUDA paths: bf16 autocast training, torch.compile, the benchmark. Skipped without a GPU."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from corpus import shards
from training.pretrain import TrainConfig, train

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("compile_model", [False, True])
def test_bf16_training_on_cuda(corpus_root, tmp_path, compile_model):
    data = shards.shard_set_path(corpus_root, "tokens_stage1")
    r = train(TrainConfig(steps=30, lr=1e-2, micro_batch_size=16, device="cuda", compile=compile_model,
                          log_every=10), data, str(tmp_path), log=lambda s: None)
    assert r.history[-1]["loss"] < r.history[0]["loss"] - 0.5
    assert r.final["mfu"] is None or 0 < r.final["mfu"] < 1


def test_train_bench_runs_on_cuda(tmp_path):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "train_bench.py"), "--preset", "tiny",
                          "--seq-len", "256", "--batch", "4", "--steps", "3", "--warmup", "1", "--compile", "off"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ratio codecorpus / transformers" in out.stdout

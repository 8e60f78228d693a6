"""Held-out evaluation, FIM exact match and the HumanEval harness."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from corpus import shards
from training import humaneval as he
from training.data import TokenShardDataset
from training.evaluate import fim_exact_match, fim_samples, heldout_by_source
from training.model import Qwen2ForCausalLM, get_preset


def test_heldout_loss_per_source_and_fim_samples(corpus_root):
    ds = TokenShardDataset(shards.shard_set_path(corpus_root, "tokens_stage1"))
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(get_preset("tiny", vocab_size=ds.vocab_size, max_position_embeddings=128))
    samples = list(fim_samples(ds, np.arange(len(ds)), max_middle=64))
    assert samples
    rows = np.unique([s.row for s in samples[:4]] + list(range(len(ds) - 10, len(ds))))
    res = heldout_by_source(model, ds, rows)
    assert {"file", "fim", "all"} <= set(res)
    # An untrained model is near-uniform: loss ~ log(vocab) for every source.
    for name in ("file", "fim", "all"):
        assert abs(res[name]["loss"] - np.log(512)) < 0.3
        assert res[name]["perplexity"] == pytest.approx(np.exp(res[name]["loss"]))
    assert res["all"]["tokens"] == res["file"]["tokens"] + res["fim"]["tokens"]
    fim = ds.special_tokens
    for s in samples:
        assert s.prompt[0] == fim["<|fim_prefix|>"] and s.prompt[-1] == fim["<|fim_middle|>"]
        assert fim["<|endoftext|>"] not in s.middle


class _Oracle(torch.nn.Module):
    """A "model" whose greedy output is the reference middle: FIM exact match must be 1.0."""

    def __init__(self, answers: dict[tuple[int, ...], list[int]], eos: int, vocab: int) -> None:
        super().__init__()
        self.answers, self.eos, self.vocab = answers, eos, vocab

    def generate(self, prompt, max_new_tokens, stop_ids=frozenset(), stop=None):
        return list(self.answers[tuple(prompt)])


def test_fim_exact_match_scores_oracle_and_counts_skips(corpus_root):
    ds = TokenShardDataset(shards.shard_set_path(corpus_root, "tokens_stage1"))
    rows = np.arange(len(ds))
    samples = list(fim_samples(ds, rows, max_middle=64))
    oracle = _Oracle({tuple(s.prompt): s.middle for s in samples}, ds.eos_id, ds.vocab_size)
    stats = fim_exact_match(oracle, ds, rows, max_samples=5)
    assert stats.samples == 5 and stats.exact_match == 1.0
    assert stats.skipped["over max_samples"] == len(samples) - 5
    wrong = _Oracle({tuple(s.prompt): s.middle[:-1] for s in samples}, ds.eos_id, ds.vocab_size)
    assert fim_exact_match(wrong, ds, rows, max_samples=5).exact_match == 0.0
    short = fim_exact_match(oracle, ds, rows, max_samples=100, max_middle=3, mode="native")
    assert short.skipped["middle longer than 3 tokens"] > 0


def _local_executor(jobs, timeout_s):
    """Runs each program with a plain interpreter: checks the harness independently of the sandbox."""
    out = []
    for code, tests in jobs:
        try:
            p = subprocess.run([sys.executable, "-c", code + "\n" + tests], capture_output=True, timeout=timeout_s)
            out.append("passed" if p.returncode == 0 else "failed")
        except subprocess.TimeoutExpired:
            out.append("timeout")
    return out


def test_humaneval_harness_logic_with_local_runner():
    problems = he.load_problems(limit=6)
    assert he.evaluate(problems, he.canonical_completer, executor=_local_executor).pass_at_1 == 1.0
    wrong = he.evaluate(problems, lambda p: "    return None\n", executor=_local_executor)
    assert wrong.pass_at_1 == 0.0 and wrong.statuses["failed"] == 6
    # Top-level code after the body is cut by the stop sequences.
    assert he.truncate("    return 1\n\ndef other():\n    pass") == "    return 1\n"
    assert he.truncate("    return 1\nprint(f())") == "    return 1"


def _sandbox_or_skip():
    try:
        import sandbox
    except ImportError:
        pytest.skip("sandbox package not importable")
    try:
        sandbox.api.pick_backend("auto")
    except ValueError as exc:
        pytest.skip(f"no sandbox backend: {exc}")


def test_humaneval_canonical_solutions_score_one_in_sandbox():
    _sandbox_or_skip()
    problems = he.load_problems()
    assert len(problems) == 164
    res = he.evaluate(problems, he.canonical_completer)
    assert res.pass_at_1 == 1.0, [t for t in res.per_task if not t["passed"]][:3]
    broken = he.evaluate(problems[:4], lambda p: "    raise ValueError('no')\n")
    assert broken.pass_at_1 == 0.0


def test_humaneval_model_completer_runs_end_to_end(corpus_root):
    _sandbox_or_skip()
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(shards.side_file(shards.shard_set_path(corpus_root, "tokenizer"), "tokenizer.json"))
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(get_preset("tiny", vocab_size=tok.get_vocab_size(), max_position_embeddings=512))
    res = he.evaluate(he.load_problems(limit=2), he.ModelCompleter(model, tok, max_new_tokens=16))
    assert res.total == 2 and res.pass_at_1 == 0.0  # an untrained tiny model solves nothing
    assert all(isinstance(t["completion"], str) for t in res.per_task)


def test_malformed_problem_file_is_named(tmp_path):
    p = tmp_path / "he.jsonl"
    p.write_text('{"task_id": "x"}\n')
    with pytest.raises(ValueError, match=r"he.jsonl:1: not a HumanEval record"):
        he.load_problems(str(p))


def test_reads_tokenize_stage_writer_output_with_sources(tmp_path):
    """Shards written by corpus/tokenize/format.py (with per-token sources) load and score per source."""
    fmt = pytest.importorskip("corpus.tokenize.format")
    rng = np.random.default_rng(0)
    n, t = 6, 32
    tokens = rng.integers(10, 200, size=(n, t))
    src = np.zeros((n, t), dtype=np.uint8)
    src[3:] = 1
    src[-1, -4:] = fmt.PAD_SOURCE
    mask = (src != fmt.PAD_SOURCE).astype(np.uint8)
    docs = np.zeros((n, t), dtype=np.uint16)
    docs[:, 16:] = 1
    path = str(tmp_path / "tok")
    extra = {"vocab_size": 256, "eos_id": 0, "pad_id": 1, "tokenizer_sha256": "x", "special_tokens": {}}
    with fmt.TokenShardWriter(path, t, ["code", "math"], extra=extra, shard_seqs=4) as w:
        w.add(tokens, mask, docs, src)
    ds = TokenShardDataset(path)
    assert len(ds) == n and ds.has_sources and ds.sources == ["code", "math"]
    assert np.array_equal(ds.rows([5])[0][0], tokens[5])
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(get_preset("tiny", vocab_size=256, max_position_embeddings=64))
    res = heldout_by_source(model, ds, np.arange(n))
    assert res["source:code"]["tokens"] + res["source:math"]["tokens"] == res["all"]["tokens"]
    assert res["source:math"]["tokens"] == 3 * (t - 1) - 4


def test_fim_parsing_handles_spm_cut_and_unterminated_samples(tmp_path):
    from conftest import write_token_set
    pre, mid, suf, eos = 1, 2, 3, 0
    psm = [pre, 10, 11, suf, 12, mid, 13, 14]  # no EOS, but another document follows in the row
    spm = [pre, suf, 12, mid, 10, 11, 13, eos]
    cut = [pre, 10, suf, 12, mid, 13]  # last in its row: may continue, unusable
    row = psm + spm + cut
    docs = [0] * len(psm) + [1] * len(spm) + [2] * len(cut)
    t = np.asarray([row], dtype="<u4")
    path = write_token_set(str(tmp_path / "f"), t, np.ones_like(t, dtype="u1"), np.asarray([docs], dtype="<u2"),
                           vocab_size=64)
    ds = TokenShardDataset(path)
    from collections import Counter
    skipped = Counter()
    got = list(fim_samples(ds, np.arange(1), skipped=skipped))
    assert [(s.prompt, s.middle) for s in got] == [([pre, 10, 11, suf, 12, mid], [13, 14])]
    assert skipped == {"SPM order (prefix/middle boundary not marked)": 1, "fim sample cut by packing": 1}


def test_span_fim_samples_from_plain_documents(corpus_root):
    from training.evaluate import span_fim_samples
    ds = TokenShardDataset(shards.shard_set_path(corpus_root, "tokens_stage1"))
    rows = np.arange(40)
    a = list(span_fim_samples(ds, rows, max_middle=8))
    assert a and a == list(span_fim_samples(ds, rows, max_middle=8))  # seeded: same samples every time
    sp = ds.special_tokens
    for s in a:
        assert 1 <= len(s.middle) <= 8 and s.prompt[0] == sp["<|fim_prefix|>"] and s.prompt[-1] == sp["<|fim_middle|>"]
        tok = ds.rows([s.row])[0][0].tolist()
        pre = s.prompt[1:s.prompt.index(sp["<|fim_suffix|>"])]
        joined = pre[-5:] + s.middle  # prefix tail + middle are contiguous in the original row
        assert any(tok[i:i + len(joined)] == joined for i in range(len(tok)))
    oracle = _Oracle({tuple(s.prompt): s.middle for s in a}, ds.eos_id, ds.vocab_size)
    stats = fim_exact_match(oracle, ds, rows, max_samples=4, max_middle=8, mode="span")
    assert stats.mode == "span" and stats.samples == 4 and stats.exact_match == 1.0

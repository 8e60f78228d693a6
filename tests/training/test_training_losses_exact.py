"""SFT/DPO losses, log-prob masks and ChatML encoding against hand-computed values.

The other post-training tests check directions (loss falls, chosen beats rejected); an off-by-one
in the target shift or the mask passes those. Here a character tokenizer and a stub model with
known logits make every expected number computable by hand or by a plain Python loop.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from types import SimpleNamespace

import pytest
import torch

from training.dpo import DPOConfig, dpo_loss, encode_pair, train_dpo
from training.model import Qwen2ForCausalLM, get_preset
from training.pretrain import NonFiniteLossError
from training.sft import (
    ChatEncoder,
    NoExamplesError,
    SFTConfig,
    masked_token_logps,
    pad_batch,
    stream_examples,
    train_sft,
)

SPECIAL = {"<|im_start|>": 1, "<|im_end|>": 2, "<|endoftext|>": 3}


class CharTokenizer:
    """One id per character (``ord(c) % 90 + 10``), ChatML specials 1, 2, 3."""

    def get_vocab_size(self) -> int:
        return 100

    def token_to_id(self, s: str) -> int | None:
        return SPECIAL.get(s)

    def encode(self, text: str, add_special_tokens: bool = False) -> SimpleNamespace:
        return SimpleNamespace(ids=[ord(c) % 90 + 10 for c in text])


def c(text: str) -> list[int]:
    return CharTokenizer().encode(text).ids


NL = c("\n")


def test_message_mask_covers_body_and_im_end_only() -> None:
    enc = ChatEncoder(CharTokenizer(), 100)
    ids, mask = enc.message("assistant", "ab", train=True)
    assert ids == [1, *c("assistant\n"), *c("ab"), 2, *NL]
    assert mask == [0] * 11 + [1, 1, 1] + [0]
    assert enc.message("user", "ab", train=False)[1] == [0] * 10  # 1 + len("user\n") + 2 + 1 + 1


def test_conversation_truncation_boundaries() -> None:
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    full, full_mask = ChatEncoder(CharTokenizer(), 100).conversation(msgs)  # type: ignore[misc]
    n = len(full)  # user turn 9 ids + assistant turn 14 ids
    assert n == 23 and full_mask.index(1) == 20
    assert ChatEncoder(CharTokenizer(), n).conversation(msgs) == (full, full_mask)  # exactly max_len: whole
    ids, mask = ChatEncoder(CharTokenizer(), 21).conversation(msgs)  # type: ignore[misc]
    assert ids == full[:21] and mask == full_mask[:21] and mask[-1] == 1
    # Cut right before the first target: nothing left to learn.
    assert ChatEncoder(CharTokenizer(), 20).conversation(msgs) == "assistant turn beyond max_len 20"


def test_pad_batch_exact() -> None:
    ids, mask = pad_batch([[5, 6, 7], [8]], [[0, 1, 1], [1]], pad_id=3)
    assert ids.tolist() == [[5, 6, 7], [8, 3, 3]]
    assert mask.tolist() == [[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]


class TableModel(torch.nn.Module):
    """Logits depend only on the position (row ``p`` of a fixed table), so a shifted target or a
    shifted mask gives a different sum."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(table.clone())

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table[: ids.shape[1]].unsqueeze(0).expand(ids.shape[0], -1, -1)


def _reference_logps(table: torch.Tensor, ids: list[list[int]], mask: list[list[float]]) -> tuple[list[float], list[float]]:
    out, cnt = [], []
    for seq, m in zip(ids, mask):
        s = 0.0
        for t in range(1, len(seq)):
            if m[t]:
                row = table[t - 1].tolist()
                s += row[seq[t]] - math.log(sum(math.exp(v) for v in row))
        out.append(s)
        cnt.append(float(sum(m[1:])))
    return out, cnt


def test_masked_token_logps_matches_a_hand_loop() -> None:
    g = torch.Generator().manual_seed(0)
    table = torch.randn(6, 5, generator=g)
    ids = [[0, 1, 2, 3, 4, 0], [4, 3, 2, 1, 0, 0]]
    mask = [[1.0, 0.0, 1.0, 1.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0, 0.0, 0.0]]
    got, n = masked_token_logps(TableModel(table), torch.tensor(ids), torch.tensor(mask))
    want, cnt = _reference_logps(table, ids, mask)
    assert got.tolist() == pytest.approx(want, abs=1e-5)
    assert n.tolist() == cnt == [3.0, 2.0]  # mask[:, 0] is never a target


def test_masked_token_logps_uniform_is_log_vocab() -> None:
    got, n = masked_token_logps(TableModel(torch.zeros(4, 7)), torch.tensor([[1, 2, 3, 4]]), torch.tensor([[1.0] * 4]))
    assert got.item() == pytest.approx(-3 * math.log(7)) and n.item() == 3


def test_dpo_loss_hand_value() -> None:
    losses, cr, rr = dpo_loss(torch.tensor([-1.0, -5.0]), torch.tensor([-3.0, -5.0]), torch.tensor([-2.0, -4.0]),
                              torch.tensor([-2.0, -4.0]), beta=0.5)
    # pair 0: rewards 0.5 and -0.5 -> -log sigmoid(1); pair 1: both -0.5 -> log 2
    assert cr.tolist() == [0.5, -0.5] and rr.tolist() == [-0.5, -0.5]
    assert losses.tolist() == pytest.approx([math.log1p(math.exp(-1.0)), math.log(2.0)], abs=1e-6)


def test_encode_pair_masks_and_prompt_boundary() -> None:
    row = {"prompt": [{"role": "user", "content": "q"}], "chosen": "ab", "rejected": "c"}
    enc = ChatEncoder(CharTokenizer(), 100)
    prompt = enc.prompt(row["prompt"])
    assert isinstance(prompt, list) and len(prompt) == 20
    ci, cm, ri, rm = encode_pair(enc, row)  # type: ignore[misc]
    assert ci == prompt + c("ab") + [2] and cm == [0] * 20 + [1, 1, 1]
    assert ri == prompt + c("c") + [2] and rm == [0] * 20 + [1, 1]
    # max_len 22: prompt + 1 < max_len, answers truncated to two targets / kept whole
    ci, cm, ri, rm = encode_pair(ChatEncoder(CharTokenizer(), 22), row)  # type: ignore[misc]
    assert cm == [0] * 20 + [1, 1] and rm == [0] * 20 + [1, 1]
    assert encode_pair(ChatEncoder(CharTokenizer(), 21), row) == "prompt longer than max_len 21"
    assert encode_pair(enc, {**row, "rejected": "ab"}) == "chosen equals rejected"
    assert encode_pair(enc, {**row, "rejected": None}) == "chosen/rejected missing"


def test_stream_buffer_boundary_and_skips_counted_once() -> None:
    rows = [{"v": i} for i in range(5)] + [{"v": -1}]
    skipped: Counter = Counter()

    def encode(r: dict) -> int | str:
        return "negative" if r["v"] < 0 else r["v"]

    it = stream_examples(lambda: rows, encode, skipped, seed=3, buffer=5)
    first = [next(it) for _ in range(10)]
    assert sorted(first[:5]) == sorted(first[5:]) == [0, 1, 2, 3, 4]
    assert skipped == Counter({"negative": 1})  # second epoch does not count again
    with pytest.raises(NoExamplesError, match="negative"):
        next(stream_examples(lambda: [{"v": -1}], encode, Counter(), seed=0, buffer=2))
    with pytest.raises(NoExamplesError, match="no rows at all"):
        next(stream_examples(lambda: [], encode, Counter(), seed=0, buffer=2))


def _tiny(vocab: int = 100) -> Qwen2ForCausalLM:
    torch.manual_seed(0)
    return Qwen2ForCausalLM(get_preset("tiny", vocab_size=vocab, max_position_embeddings=64))


def test_sft_first_loss_is_mean_logp_over_target_tokens() -> None:
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "ab" * (i + 1)}]}
            for i in range(2)]
    model = _tiny()
    before = _tiny()
    enc = ChatEncoder(CharTokenizer(), 64)
    res = train_sft(model, CharTokenizer(), lambda: rows, SFTConfig(steps=1, batch_size=2, lr=1e-3, warmup_steps=0),
                    log=lambda _: None)
    # The first step sees both conversations (one buffer-sized epoch); order does not matter for a sum.
    seqs = [enc.conversation(r["messages"]) for r in rows]
    ids, mask = pad_batch([s[0] for s in seqs], [s[1] for s in seqs], enc.pad_id)  # type: ignore[index]
    with torch.no_grad():
        logps, n = masked_token_logps(before.eval(), ids, mask)
    assert res.history[0]["tokens"] == int(n.sum()) == 3 + 5
    assert res.history[0]["loss"] == pytest.approx(float(-logps.sum() / n.sum()), rel=1e-4)
    assert res.final["examples_seen"] == res.examples == 2 and res.final["steps"] == 1
    assert res.final["first_loss"] == res.final["final_loss"] == res.history[0]["loss"]


def test_sft_final_loss_is_the_mean_of_the_last_ten_steps() -> None:
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "ab"}]}]
    res = train_sft(_tiny(), CharTokenizer(), lambda: rows, SFTConfig(steps=12, batch_size=3, lr=1e-3),
                    log=lambda _: None)
    losses = [h["loss"] for h in res.history]
    assert [h["step"] for h in res.history] == list(range(1, 13)) and res.examples == 36
    assert res.final["final_loss"] == pytest.approx(sum(losses[2:]) / 10)
    assert res.final["first_loss"] == losses[0] and all(h["tokens"] == 9 for h in res.history)


def test_dpo_first_step_loss_is_log2_and_rewards_zero() -> None:
    # Policy == reference at step 1: every implicit reward is 0, so the loss is exactly log 2.
    rows = [{"prompt": [{"role": "user", "content": "q"}], "chosen": "ab", "rejected": "c"}] * 2
    res = train_dpo(_tiny(), CharTokenizer(), lambda: rows, DPOConfig(steps=2, batch_size=2, warmup_steps=0, lr=1e-2),
                    log=lambda _: None)
    h0 = res.history[0]
    assert h0["loss"] == pytest.approx(math.log(2.0), abs=1e-6)
    assert (h0["chosen_reward"], h0["rejected_reward"], h0["reward_margin"], h0["reward_accuracy"]) == (0.0, 0.0, 0.0, 0.0)
    assert res.final["first_loss"] == h0["loss"] and res.final["pairs_seen"] == 4 == res.examples
    assert res.final["final_loss"] == pytest.approx((h0["loss"] + res.history[1]["loss"]) / 2)
    assert res.history[1]["loss"] < h0["loss"]  # after one update the policy prefers the chosen answers


def test_dpo_first_step_equals_the_loss_recomputed_from_the_encoded_pairs() -> None:
    rows = [{"prompt": [{"role": "user", "content": "q"}], "chosen": "ab", "rejected": "c"},
            {"prompt": [{"role": "user", "content": "w"}], "chosen": "xyz", "rejected": "xy"}]
    policy, reference = _tiny(), _tiny()
    torch.manual_seed(1)
    for p in reference.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    before = copy.deepcopy(policy)
    res = train_dpo(policy, CharTokenizer(), lambda: rows, DPOConfig(steps=1, batch_size=2, beta=0.3, warmup_steps=0),
                    reference=reference, log=lambda _: None)
    enc = ChatEncoder(CharTokenizer(), 64)
    pairs = [encode_pair(enc, r) for r in rows]
    ids, mask = pad_batch([p[0] for p in pairs] + [p[2] for p in pairs],  # type: ignore[index]
                          [p[1] for p in pairs] + [p[3] for p in pairs], enc.pad_id)  # type: ignore[index]
    with torch.no_grad():
        pol, _ = masked_token_logps(before.train(), ids, mask)
        ref, _ = masked_token_logps(reference, ids, mask)
    losses, cr, rr = dpo_loss(pol[:2], pol[2:], ref[:2], ref[2:], 0.3)
    h = res.history[0]
    assert h["loss"] == pytest.approx(float(losses.mean()), rel=1e-4)
    assert h["chosen_reward"] == pytest.approx(float(cr.mean()), rel=1e-3, abs=1e-6)
    assert h["reward_margin"] == pytest.approx(float((cr - rr).mean()), rel=1e-3, abs=1e-6)
    assert h["reward_accuracy"] == float((cr > rr).float().mean())


def test_non_finite_losses_stop_training() -> None:
    rows_dpo = [{"prompt": [{"role": "user", "content": "q"}], "chosen": "ab", "rejected": "c"}]
    reference = _tiny()
    with torch.no_grad():
        reference.lm_head.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="DPO: non-finite loss at step 1"):
        train_dpo(_tiny(), CharTokenizer(), lambda: rows_dpo, DPOConfig(steps=1, batch_size=1), reference=reference,
                  log=lambda _: None)
    model = _tiny()
    with torch.no_grad():
        model.lm_head.weight.fill_(float("nan"))
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}]
    with pytest.raises(NonFiniteLossError, match="SFT: non-finite loss at step 1"):
        train_sft(model, CharTokenizer(), lambda: rows, SFTConfig(steps=1, batch_size=1), log=lambda _: None)


def test_sft_rejects_a_tokenizer_bigger_than_the_vocabulary() -> None:
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}]
    train_sft(_tiny(100), CharTokenizer(), lambda: rows, SFTConfig(steps=1, batch_size=1), log=lambda _: None)
    with pytest.raises(ValueError, match="tokenizer has 100 tokens but the model only 99"):
        train_sft(_tiny(99), CharTokenizer(), lambda: rows, SFTConfig(steps=1, batch_size=1), log=lambda _: None)


@pytest.mark.parametrize(("steps", "every", "logged"), [(3, 2, [2, 3]), (4, 2, [2, 4]), (2, 0, [1, 2]), (1, 5, [1])])
def test_log_every_and_the_last_step(steps: int, every: int, logged: list[int]) -> None:
    lines: list[str] = []
    rows = [{"prompt": [{"role": "user", "content": "q"}], "chosen": "ab", "rejected": "c"}]
    train_dpo(_tiny(), CharTokenizer(), lambda: rows, DPOConfig(steps=steps, batch_size=1, log_every=every),
              log=lines.append)
    assert [int(x.split()[2].split("/")[0]) for x in lines] == logged and all(x.startswith("dpo step") for x in lines)
    lines.clear()
    conv = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}]
    train_sft(_tiny(), CharTokenizer(), lambda: conv, SFTConfig(steps=steps, batch_size=1, log_every=every),
              log=lines.append)
    assert [int(x.split()[2].split("/")[0]) for x in lines] == logged and all(x.startswith("sft step") for x in lines)

"""SFT (assistant-only loss, ChatML) and DPO (sigmoid loss, frozen reference) on the tiny model."""

from __future__ import annotations

import ast
import copy
import math

import pytest
import torch
from conftest import STDLIB
from tokenizers import Tokenizer

from corpus import shards
from training.dpo import DPOConfig, dpo_loss, encode_pair, train_dpo
from training.model import Qwen2ForCausalLM, get_preset
from training.sft import (
    ChatEncoder,
    ChatTemplateError,
    NoExamplesError,
    SFTConfig,
    masked_token_logps,
    pad_batch,
    train_sft,
)


@pytest.fixture(scope="module")
def tok(corpus_root):
    return Tokenizer.from_file(shards.side_file(shards.shard_set_path(corpus_root, "tokenizer"), "tokenizer.json"))


def _model(vocab: int, seed: int = 0) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(get_preset("tiny", vocab_size=vocab, max_position_embeddings=512))


def _conversations(n: int = 24) -> list[dict]:
    """Real instruction-like pairs: "write function NAME" -> the stdlib function's source."""
    src = open(f"{STDLIB}/textwrap.py").read() + open(f"{STDLIB}/shlex.py").read()
    out = []
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.FunctionDef) and len(out) < n:
            body = ast.get_source_segment(src, node)[:200]
            out.append({"messages": [{"role": "system", "content": "You write Python."},
                                     {"role": "user", "content": f"Write the function {node.name}."},
                                     {"role": "assistant", "content": body}]})
    return out


def test_chat_encoder_masks_only_assistant_tokens(tok):
    enc = ChatEncoder(tok, max_len=512)
    msgs = [{"role": "user", "content": "Add two numbers."}, {"role": "assistant", "content": "def add(a, b):\n    return a + b"}]
    ids, mask = enc.conversation(msgs)
    assert tok.decode(ids, skip_special_tokens=False) == (
        "<|im_start|>user\nAdd two numbers.<|im_end|>\n<|im_start|>assistant\ndef add(a, b):\n    return a + b<|im_end|>\n")
    trained = [i for i, m in zip(ids, mask) if m]
    assert tok.decode(trained, skip_special_tokens=False) == "def add(a, b):\n    return a + b<|im_end|>"
    assert enc.conversation([{"role": "user", "content": "hi"}]) == "no assistant turn"
    assert enc.conversation([{"role": "robot", "content": "hi"}]) == "unknown role 'robot'"
    assert enc.conversation([{"role": "assistant", "content": None}]) == "message content is not a string"


def test_chat_encoder_requires_chatml_tokens():
    from tokenizers import models
    bare = Tokenizer(models.BPE())
    with pytest.raises(ChatTemplateError, match="<\\|im_start\\|>"):
        ChatEncoder(bare, 128)


def test_sft_lowers_assistant_loss_and_counts_bad_rows(tok):
    convs = _conversations()
    bad = [{"messages": []}, {"messages": [{"role": "user", "content": "no answer"}]},
           {"messages": [{"role": "narrator", "content": "x"}]}]
    model = _model(tok.get_vocab_size())
    enc = ChatEncoder(tok, 512)
    ids, mask = pad_batch(*zip(*[enc.conversation(c["messages"]) for c in convs[:8]]), pad_id=enc.pad_id)
    with torch.no_grad():
        before = (-masked_token_logps(model, ids, mask)[0].sum() / mask[:, 1:].sum()).item()
    res = train_sft(model, tok, lambda: iter(convs + bad), SFTConfig(steps=25, batch_size=8, lr=3e-3, warmup_steps=3,
                                                                      max_len=128), log=lambda s: None)
    with torch.no_grad():
        after = (-masked_token_logps(model, ids, mask)[0].sum() / mask[:, 1:].sum()).item()
    assert after < before - 0.5, (before, after)
    assert res.skipped == {"no messages": 1, "no assistant turn": 1, "unknown role 'narrator'": 1}
    with pytest.raises(NoExamplesError, match="no usable training examples"):
        train_sft(_model(tok.get_vocab_size()), tok, lambda: iter(bad), SFTConfig(steps=1), log=lambda s: None)


def test_dpo_loss_matches_formula_on_hand_computed_logps():
    pc, pr = torch.tensor([-1.0, -3.0]), torch.tensor([-2.0, -1.0])
    rc, rr = torch.tensor([-1.5, -2.0]), torch.tensor([-1.0, -1.0])
    losses, cr, rrw = dpo_loss(pc, pr, rc, rr, beta=0.1)
    # pair 0: 0.1 * ((-1 + 1.5) - (-2 + 1)) = 0.15 ; pair 1: 0.1 * ((-3 + 2) - (-1 + 1)) = -0.1
    assert losses[0].item() == pytest.approx(math.log(1 + math.exp(-0.15)), abs=1e-6)
    assert losses[1].item() == pytest.approx(math.log(1 + math.exp(0.1)), abs=1e-6)
    assert cr.tolist() == pytest.approx([0.05, -0.1]) and rrw.tolist() == pytest.approx([-0.1, 0.0])
    # At policy == reference the loss is log 2 whatever beta is.
    assert dpo_loss(pc, pr, pc, pr, beta=0.5)[0].tolist() == pytest.approx([math.log(2)] * 2)


def _pairs(convs: list[dict]) -> list[dict]:
    out = []
    for c in convs:
        m = c["messages"]
        good = m[-1]["content"]
        out.append({"prompt": m[:-1], "chosen": good, "rejected": "def broken(:\n    pass  # " + good[:40][::-1],
                    "pair_source": "execution"})
    return out


def test_dpo_raises_chosen_over_rejected_with_frozen_reference(tok):
    pairs = _pairs(_conversations(12))
    policy = _model(tok.get_vocab_size())
    reference = copy.deepcopy(policy)
    ref_before = {k: v.clone() for k, v in reference.state_dict().items()}
    bad = [{"prompt": [{"role": "user", "content": "q"}], "chosen": "same", "rejected": "same"},
           {"prompt": [{"role": "alien", "content": "q"}], "chosen": "a", "rejected": "b"}]
    res = train_dpo(policy, tok, lambda: iter(pairs + bad),
                    DPOConfig(steps=12, batch_size=4, lr=2e-3, beta=0.1, warmup_steps=2, max_len=128),
                    reference=reference, log=lambda s: None)
    assert res.history[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)  # policy starts equal to reference
    assert res.final["final_loss"] < math.log(2) - 0.1
    assert res.final["reward_accuracy"] > 0.8
    assert all(torch.equal(v, ref_before[k]) for k, v in reference.state_dict().items())
    assert res.skipped == {"chosen equals rejected": 1, "malformed prompt message (role 'alien')": 1}
    enc = ChatEncoder(tok, 256)
    c_ids, c_mask, r_ids, r_mask = encode_pair(enc, pairs[0])
    assert tok.decode([i for i, m in zip(c_ids, c_mask) if m], skip_special_tokens=False) == pairs[0]["chosen"] + "<|im_end|>"

"""Supervised fine-tuning on ChatML conversations, loss on assistant tokens only.

Each message is rendered ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` (docs/STAGES.md);
the content of assistant turns and their closing ``<|im_end|>`` are the targets, everything
else (system, user, role headers) is context. Conversations are streamed from a row source
(re-iterated per epoch), shuffled in a bounded, seeded buffer, and padded per batch.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from training.model import Qwen2ForCausalLM
from training.pretrain import NonFiniteLossError, cosine_lr

IM_START, IM_END, ENDOFTEXT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
ROLES = ("system", "user", "assistant")


class ChatTemplateError(ValueError):
    """The tokenizer lacks the ChatML special tokens."""


class NoExamplesError(ValueError):
    """The row source held no usable example; ``skipped`` says why each row was rejected."""

    def __init__(self, skipped: Counter) -> None:
        super().__init__(f"no usable training examples (skipped: {dict(skipped) or 'no rows at all'})")
        self.skipped = skipped


def render_chatml(messages: Sequence[dict[str, str]]) -> str:
    return "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages)


class ChatEncoder:
    """Token ids + loss mask of ChatML conversations with a ``tokenizers.Tokenizer``."""

    def __init__(self, tokenizer: Any, max_len: int) -> None:
        self.tok = tokenizer
        self.max_len = max_len
        ids = {s: tokenizer.token_to_id(s) for s in (IM_START, IM_END, ENDOFTEXT)}
        missing = [s for s in (IM_START, IM_END) if ids[s] is None]
        if missing:
            raise ChatTemplateError(f"tokenizer has no {missing} special token(s); SFT/DPO need ChatML tokens")
        self.im_start, self.im_end = ids[IM_START], ids[IM_END]
        self.pad_id = ids[ENDOFTEXT] if ids[ENDOFTEXT] is not None else self.im_end
        self.newline = self._enc("\n")

    def _enc(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids

    def message(self, role: str, content: str, train: bool) -> tuple[list[int], list[int]]:
        head = [self.im_start] + self._enc(f"{role}\n")
        body = self._enc(content)
        ids = head + body + [self.im_end] + self.newline
        mask = [0] * len(head) + [int(train)] * (len(body) + 1) + [0] * len(self.newline)
        return ids, mask

    def conversation(self, messages: Sequence[dict[str, Any]]) -> tuple[list[int], list[int]] | str:
        """(ids, mask) or the skip reason for a malformed conversation."""
        if not messages:
            return "no messages"
        ids: list[int] = []
        mask: list[int] = []
        for m in messages:
            role, content = (m or {}).get("role"), (m or {}).get("content")
            if role not in ROLES:
                return f"unknown role {role!r}"
            if not isinstance(content, str):
                return "message content is not a string"
            i, k = self.message(role, content, train=role == "assistant")
            ids += i
            mask += k
        if not any(mask):
            return "no assistant turn"
        if len(ids) > self.max_len:
            ids, mask = ids[: self.max_len], mask[: self.max_len]
            if not any(mask[1:]):
                return f"assistant turn beyond max_len {self.max_len}"
        return ids, mask

    def prompt(self, messages: Sequence[dict[str, Any]]) -> list[int] | str:
        """The context before an answer: the messages plus ``<|im_start|>assistant\\n``."""
        ids: list[int] = []
        for m in messages:
            role, content = (m or {}).get("role"), (m or {}).get("content")
            if role not in ROLES or not isinstance(content, str):
                return f"malformed prompt message (role {role!r})"
            ids += self.message(role, content, train=False)[0]
        return ids + [self.im_start] + self._enc("assistant\n")

    def answer(self, text: str) -> list[int]:
        return self._enc(text) + [self.im_end]


def pad_batch(seqs: list[list[int]], masks: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids [B, T] and float mask [B, T] (pads masked out)."""
    t = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), t), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), t), dtype=torch.float32)
    for i, (s, m) in enumerate(zip(seqs, masks)):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(m)] = torch.tensor(m, dtype=torch.float32)
    return ids, mask


def masked_token_logps(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence sum of log p(token) over masked targets, and the token counts.

    ``mask[:, t]`` marks token ``t`` as a target (predicted from positions < t)."""
    logits = model(ids[:, :-1]).float()
    logp = torch.gather(F.log_softmax(logits, dim=-1), 2, ids[:, 1:, None]).squeeze(-1)
    m = mask[:, 1:]
    return (logp * m).sum(-1), m.sum(-1)


@dataclass
class SFTConfig:
    steps: int = 100
    batch_size: int = 8
    max_len: int = 1024
    lr: float = 1e-4
    min_lr_ratio: float = 0.1
    warmup_steps: int = 10
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    shuffle_buffer: int = 1024
    log_every: int = 10


@dataclass
class PostTrainResult:
    history: list[dict[str, Any]]
    final: dict[str, Any]
    skipped: Counter = field(default_factory=Counter)
    examples: int = 0


def stream_examples(rows: Callable[[], Iterable[dict[str, Any]]], encode: Callable[[dict[str, Any]], Any],
                    skipped: Counter, seed: int, buffer: int) -> Iterator[Any]:
    """Encoded examples forever (epoch after epoch), shuffled in a bounded seeded buffer.

    Rows that ``encode`` rejects (returns a string reason) are counted in ``skipped`` during
    the first epoch only; raises if an epoch yields no usable example."""
    rng = random.Random(seed)
    epoch = 0
    while True:
        buf: list[Any] = []
        usable = 0
        for row in rows():
            ex = encode(row)
            if isinstance(ex, str):
                if epoch == 0:
                    skipped[ex] += 1
                continue
            usable += 1
            buf.append(ex)
            if len(buf) >= buffer:
                yield buf.pop(rng.randrange(len(buf)))
        if usable == 0:
            raise NoExamplesError(skipped)
        rng.shuffle(buf)
        yield from buf
        epoch += 1


def posttrain_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, steps: int, warmup: int,
                        min_ratio: float) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """The optimizer and schedule SFT and DPO share: AdamW over the unique parameters (tied
    embeddings once), betas (0.9, 0.95), warmup + cosine (:func:`cosine_lr`)."""
    opt = torch.optim.AdamW([p for p in {id(p): p for p in model.parameters()}.values()], lr=lr,
                            weight_decay=weight_decay, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_lr(s, steps, warmup, min_ratio))
    return opt, sched


def posttrain_step(model: torch.nn.Module, loss: torch.Tensor, opt: torch.optim.Optimizer,
                   sched: torch.optim.lr_scheduler.LRScheduler, grad_clip: float) -> float:
    """One SFT / DPO update (backward, clip, step, schedule, zero grads); returns the grad norm."""
    loss.backward()
    gn = float(torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip))
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    return gn


def train_sft(model: Qwen2ForCausalLM, tokenizer: Any, rows: Callable[[], Iterable[dict[str, Any]]], cfg: SFTConfig,
              log: Callable[[str], None] = print) -> PostTrainResult:
    """Fine-tune ``model`` in place on conversations from ``rows()`` (each with ``messages``)."""
    enc = ChatEncoder(tokenizer, min(cfg.max_len, model.cfg.max_position_embeddings))
    vocab = model.cfg.vocab_size
    if tokenizer.get_vocab_size() > vocab:
        raise ValueError(f"tokenizer has {tokenizer.get_vocab_size()} tokens but the model only {vocab}")
    skipped: Counter = Counter()
    stream = stream_examples(rows, lambda r: enc.conversation(r.get("messages") or []), skipped, cfg.seed,
                             cfg.shuffle_buffer)
    device = model.lm_head.weight.device
    opt, sched = posttrain_optimizer(model, cfg.lr, cfg.weight_decay, cfg.steps, cfg.warmup_steps, cfg.min_lr_ratio)
    model.train()
    history: list[dict[str, Any]] = []
    seen = 0
    for step in range(1, cfg.steps + 1):
        batch = [next(stream) for _ in range(cfg.batch_size)]
        seen += len(batch)
        ids, mask = pad_batch([b[0] for b in batch], [b[1] for b in batch], enc.pad_id)
        ids, mask = ids.to(device), mask.to(device)
        logps, n = masked_token_logps(model, ids, mask)
        loss = -logps.sum() / n.sum().clamp(min=1)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"SFT: non-finite loss at step {step}; stopped, nothing saved")
        gn = posttrain_step(model, loss, opt, sched, cfg.grad_clip)
        history.append({"step": step, "loss": float(loss.detach()), "grad_norm": gn, "tokens": int(n.sum())})
        if step % max(1, cfg.log_every) == 0 or step == cfg.steps:
            log(f"sft step {step}/{cfg.steps} loss {float(loss.detach()):.4f} grad_norm {gn:.3f}")
    tail = history[-min(10, len(history)):]
    final = {"steps": cfg.steps, "final_loss": sum(h["loss"] for h in tail) / len(tail),
             "first_loss": history[0]["loss"], "examples_seen": seen}
    return PostTrainResult(history, final, skipped, seen)

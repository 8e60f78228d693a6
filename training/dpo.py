"""Direct Preference Optimization (Rafailov et al. 2023), sigmoid loss, frozen reference.

For a prompt x with chosen answer y_w and rejected y_l:
``loss = -log sigmoid(beta * [(log pi(y_w|x) - log ref(y_w|x)) - (log pi(y_l|x) - log ref(y_l|x))])``
where log-probabilities are summed over the answer tokens (ChatML ``<|im_start|>assistant\\n``
prompt, answer + ``<|im_end|>`` as targets). The reference is a frozen copy of the starting
(SFT) model.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from training.model import Qwen2ForCausalLM
from training.pretrain import NonFiniteLossError
from training.sft import (
    ChatEncoder,
    PostTrainResult,
    masked_token_logps,
    pad_batch,
    posttrain_optimizer,
    posttrain_step,
    stream_examples,
)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair losses and the implicit rewards ``beta * (log pi - log ref)`` of chosen / rejected."""
    chosen_reward = beta * (policy_chosen - ref_chosen)
    rejected_reward = beta * (policy_rejected - ref_rejected)
    losses = -F.logsigmoid(chosen_reward - rejected_reward)
    return losses, chosen_reward.detach(), rejected_reward.detach()


@dataclass
class DPOConfig:
    steps: int = 100
    batch_size: int = 4  # pairs per step
    beta: float = 0.1
    max_len: int = 1024
    lr: float = 5e-6
    min_lr_ratio: float = 0.1
    warmup_steps: int = 10
    grad_clip: float = 1.0
    seed: int = 0
    shuffle_buffer: int = 1024
    log_every: int = 10


def encode_pair(enc: ChatEncoder, row: dict[str, Any]) -> tuple[list[int], list[int], list[int], list[int]] | str:
    """(chosen ids, chosen mask, rejected ids, rejected mask) of one ``dpo_pairs`` row, or a skip reason."""
    prompt = enc.prompt(row.get("prompt") or [])
    if isinstance(prompt, str):
        return prompt
    chosen, rejected = row.get("chosen"), row.get("rejected")
    if not isinstance(chosen, str) or not isinstance(rejected, str):
        return "chosen/rejected missing"
    if chosen == rejected:
        return "chosen equals rejected"
    c, r = enc.answer(chosen), enc.answer(rejected)
    if len(prompt) + 1 >= enc.max_len:
        return f"prompt longer than max_len {enc.max_len}"
    out = []
    for ans in (c, r):
        ids = (prompt + ans)[: enc.max_len]
        out += [ids, [0] * len(prompt) + [1] * (len(ids) - len(prompt))]
    return out[0], out[1], out[2], out[3]


def train_dpo(policy: Qwen2ForCausalLM, tokenizer: Any, rows: Callable[[], Iterable[dict[str, Any]]], cfg: DPOConfig,
              reference: Qwen2ForCausalLM | None = None, log: Callable[[str], None] = print) -> PostTrainResult:
    """Optimize ``policy`` in place on ``dpo_pairs`` rows; reference defaults to a frozen copy."""
    reference = reference if reference is not None else copy.deepcopy(policy)
    reference.eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    enc = ChatEncoder(tokenizer, min(cfg.max_len, policy.cfg.max_position_embeddings))
    skipped: Counter = Counter()
    stream = stream_examples(rows, lambda r: encode_pair(enc, r), skipped, cfg.seed, cfg.shuffle_buffer)
    device = policy.lm_head.weight.device
    opt, sched = posttrain_optimizer(policy, cfg.lr, 0.0, cfg.steps, cfg.warmup_steps, cfg.min_lr_ratio)
    policy.train()
    history: list[dict[str, Any]] = []
    seen = 0
    for step in range(1, cfg.steps + 1):
        pairs = [next(stream) for _ in range(cfg.batch_size)]
        seen += len(pairs)
        # Chosen and rejected of all pairs in one padded batch: [chosen_0..n, rejected_0..n].
        seqs = [p[0] for p in pairs] + [p[2] for p in pairs]
        masks = [p[1] for p in pairs] + [p[3] for p in pairs]
        ids, mask = pad_batch(seqs, masks, enc.pad_id)
        ids, mask = ids.to(device), mask.to(device)
        with torch.no_grad():
            ref_logps, _ = masked_token_logps(reference, ids, mask)
        logps, _ = masked_token_logps(policy, ids, mask)
        n = len(pairs)
        losses, cr, rr = dpo_loss(logps[:n], logps[n:], ref_logps[:n], ref_logps[n:], cfg.beta)
        loss = losses.mean()
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"DPO: non-finite loss at step {step}; stopped, nothing saved")
        gn = posttrain_step(policy, loss, opt, sched, cfg.grad_clip)
        rec = {"step": step, "loss": float(loss.detach()), "reward_accuracy": float((cr > rr).float().mean()),
               "reward_margin": float((cr - rr).mean()), "chosen_reward": float(cr.mean()),
               "rejected_reward": float(rr.mean()), "grad_norm": gn}
        history.append(rec)
        if step % max(1, cfg.log_every) == 0 or step == cfg.steps:
            log(f"dpo step {step}/{cfg.steps} loss {rec['loss']:.4f} reward acc {rec['reward_accuracy']:.2f} "
                f"margin {rec['reward_margin']:.4f}")
    tail = history[-min(10, len(history)):]
    final = {"steps": cfg.steps, "first_loss": history[0]["loss"],
             "final_loss": sum(h["loss"] for h in tail) / len(tail),
             "reward_accuracy": sum(h["reward_accuracy"] for h in tail) / len(tail),
             "reward_margin": sum(h["reward_margin"] for h in tail) / len(tail), "pairs_seen": seen}
    return PostTrainResult(history, final, skipped, seen)

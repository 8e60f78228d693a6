"""Backend for a local Hugging Face-format model directory run with torch.

Works with a checkpoint exported by ``training/`` (``model.safetensors`` + ``config.json``,
Qwen2 names) or any downloaded chat model such as Qwen2.5-Coder-0.5B-Instruct. Uses
transformers when installed; otherwise ``training.hf_io.load_hf`` plus the project's
tokenizer.json. Prompts are rendered in ChatML, decoding is greedy at temperature 0 and
seeded sampling otherwise, so the same prompt gives the same text.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from corpus.llm.base import Completion, LLMError, Message, Usage, validate_messages
from corpus.llm.cache import ResponseCache, cache_key


def render_chatml(messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
    """``<|im_start|>{role}\\n{content}<|im_end|>\\n`` per message (docs/STAGES.md)."""
    out = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return out + ("<|im_start|>assistant\n" if add_generation_prompt else "")


class LocalHFBackend:
    """Generate with a local model; one generation at a time (the model owns the device)."""

    def __init__(
        self,
        model_dir: str,
        *,
        tokenizer_path: str | None = None,
        device: str = "cpu",
        max_context: int = 2048,
        cache_dir: str | None = None,
        prefer_transformers: bool = True,
    ) -> None:
        if not os.path.isfile(os.path.join(model_dir, "config.json")):
            raise LLMError(f"{model_dir}: no config.json; expected a Hugging Face-format model directory", "bad_model")
        self.model_dir = model_dir
        self.name = f"hf:{os.path.basename(os.path.normpath(model_dir))}"
        self.device = device
        self.max_context = max_context
        self.cache = ResponseCache(cache_dir) if cache_dir else None
        self.usage = Usage()
        self._lock = threading.Lock()
        self._tok = _load_tokenizer(model_dir, tokenizer_path)
        self._model, self.engine = _load_model(model_dir, device, prefer_transformers)
        self._stop_ids = {i for i in (self._tok.token_to_id("<|im_end|>"), self._tok.token_to_id("<|endoftext|>"))
                          if i is not None}
        with open(os.path.join(model_dir, "config.json"), "rb") as fh:
            import hashlib

            self._fingerprint = hashlib.sha256(fh.read()).hexdigest()[:16]

    def chat(
        self, messages: Sequence[Message], *, max_tokens: int = 512, temperature: float = 0.0, seed: int = 0
    ) -> Completion:
        msgs = validate_messages(messages)
        key = cache_key({"backend": "hf", "model": self._fingerprint, "dir": os.path.abspath(self.model_dir),
                         "messages": msgs, "max_tokens": max_tokens, "temperature": temperature, "seed": seed})
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                c = Completion.from_json(hit, cached=True)
                self.usage.record(c)
                return c
        prompt_ids = self._tok.encode(render_chatml(msgs)).ids
        if len(prompt_ids) >= self.max_context:
            self.usage.record_failure("prompt_too_long")
            raise LLMError(f"prompt has {len(prompt_ids)} tokens; the model context is {self.max_context}",
                           "prompt_too_long")
        budget = min(max_tokens, self.max_context - len(prompt_ids))
        with self._lock:
            out_ids, finish = self._generate(prompt_ids, budget, temperature, seed)
        text = self._tok.decode(out_ids, skip_special_tokens=True)
        c = Completion(text=text, model=self.name, prompt_tokens=len(prompt_ids),
                       completion_tokens=len(out_ids), finish_reason=finish)
        self.usage.record(c)
        if self.cache is not None:
            self.cache.put(key, c.to_json())
        return c

    def chat_many(self, conversations: Sequence[Sequence[Message]], **kwargs: Any) -> list[Completion | LLMError]:
        out: list[Completion | LLMError] = []
        for conv in conversations:
            try:
                out.append(self.chat(conv, **kwargs))
            except LLMError as exc:
                out.append(exc)
        return out

    def _generate(self, prompt_ids: list[int], budget: int, temperature: float, seed: int) -> tuple[list[int], str]:
        """Token-by-token decoding (full re-forward: simple and exact; fine for small local models)."""
        import torch

        gen = torch.Generator(device="cpu").manual_seed(seed)
        ids = torch.tensor([prompt_ids], dtype=torch.long, device=self.device)
        out: list[int] = []
        with torch.no_grad():
            for _ in range(budget):
                logits = self._forward(ids)[0, -1].float().cpu()
                if temperature <= 0:
                    nxt = int(torch.argmax(logits))
                else:
                    probs = torch.softmax(logits / temperature, dim=-1)
                    nxt = int(torch.multinomial(probs, 1, generator=gen))
                if nxt in self._stop_ids:
                    return out, "stop"
                out.append(nxt)
                ids = torch.cat([ids, torch.tensor([[nxt]], device=self.device)], dim=1)
        return out, "length"

    def _forward(self, ids):  # noqa: ANN001 - torch tensor
        if self.engine == "transformers":
            return self._model(input_ids=ids).logits
        return self._model(ids)


class _HFTokenizer:
    """Uniform surface over ``tokenizers.Tokenizer`` (encode/decode/token_to_id)."""

    def __init__(self, tok: Any) -> None:
        self.tok = tok

    def encode(self, text: str):  # noqa: ANN201
        return self.tok.encode(text, add_special_tokens=False)

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self.tok.decode(ids, skip_special_tokens=skip_special_tokens)

    def token_to_id(self, token: str) -> int | None:
        return self.tok.token_to_id(token)


def _load_tokenizer(model_dir: str, tokenizer_path: str | None) -> _HFTokenizer:
    from tokenizers import Tokenizer

    path = tokenizer_path or os.path.join(model_dir, "tokenizer.json")
    if not os.path.isfile(path):
        raise LLMError(
            f"{path}: tokenizer.json not found; pass tokenizer_path (e.g. <data>/tokenizer/_all/tokenizer.json)",
            "bad_model",
        )
    return _HFTokenizer(Tokenizer.from_file(path))


def _load_model(model_dir: str, device: str, prefer_transformers: bool) -> tuple[Any, str]:
    if prefer_transformers:
        try:
            from transformers import AutoModelForCausalLM
        except ImportError:
            pass
        else:
            try:
                model = AutoModelForCausalLM.from_pretrained(model_dir)
            except (OSError, ValueError) as exc:
                raise LLMError(f"{model_dir}: transformers could not load the model ({exc})", "bad_model") from exc
            return model.to(device).eval(), "transformers"
    try:
        from training.hf_io import load_hf
    except ImportError as exc:
        raise LLMError("neither transformers nor training.hf_io is importable; install transformers",
                       "bad_model") from exc
    model, _cfg = load_hf(model_dir)
    return model.to(device).eval(), "training"

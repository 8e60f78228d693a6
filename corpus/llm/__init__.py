"""LLM backends behind one chat interface (``ChatBackend``).

Three ways to produce synthetic data, chosen by ``LLMSpec.backend``:

- ``openai``: any OpenAI-compatible chat endpoint (vLLM, SGLang, llama.cpp server, Ollama),
  see ``openai_compat.OpenAICompatBackend``;
- ``hf``: a local Hugging Face-format model directory run with torch, ``local_hf.LocalHFBackend``;
- ``offline``: no model at all. The program-analysis generator lives with the tasks it
  serves (``corpus.instruct.offline``) because it reads code, not prompts; ``make_backend``
  returns None for it and callers pick the offline generator instead.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from corpus.llm.base import ChatBackend, Completion, LLMError, Message, Usage
from corpus.llm.cache import ResponseCache, cache_key
from corpus.llm.local_hf import LocalHFBackend, render_chatml
from corpus.llm.openai_compat import OpenAICompatBackend

BACKENDS = ("offline", "openai", "hf")


@dataclass(frozen=True)
class LLMSpec:
    """Everything needed to build a backend; plain values so it can live in asset config."""

    backend: str = "offline"
    base_url: str = "http://localhost:8000/v1"
    model: str = "Qwen/Qwen2.5-Coder-7B-Instruct"
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 4
    max_retries: int = 4
    timeout_s: float = 60.0
    price_in_per_mtok: float = 0.0
    price_out_per_mtok: float = 0.0
    model_dir: str = ""
    tokenizer_path: str = ""
    device: str = "cpu"
    max_tokens: int = 768
    temperature: float = 0.0

    def identity(self) -> dict[str, object]:
        """Fields that change outputs (for config hashes); secrets and tuning knobs left out."""
        d = asdict(self)
        for k in ("api_key_env", "max_concurrency", "max_retries", "timeout_s", "price_in_per_mtok",
                  "price_out_per_mtok", "device"):
            d.pop(k)
        if self.backend == "offline":
            return {"backend": "offline"}
        return d


def make_backend(spec: LLMSpec, cache_dir: str | None = None) -> ChatBackend | None:
    """The chat backend for ``spec``; None for ``offline`` (use the offline generator)."""
    if spec.backend == "offline":
        return None
    if spec.backend == "openai":
        return OpenAICompatBackend(
            spec.base_url,
            spec.model,
            api_key=os.environ.get(spec.api_key_env) or None,
            max_concurrency=spec.max_concurrency,
            max_retries=spec.max_retries,
            timeout_s=spec.timeout_s,
            cache_dir=cache_dir,
            price_in_per_mtok=spec.price_in_per_mtok,
            price_out_per_mtok=spec.price_out_per_mtok,
        )
    if spec.backend == "hf":
        if not spec.model_dir:
            raise ValueError("backend 'hf' needs model_dir (a Hugging Face-format model directory)")
        return LocalHFBackend(spec.model_dir, tokenizer_path=spec.tokenizer_path or None, device=spec.device,
                              cache_dir=cache_dir)
    raise ValueError(f"unknown LLM backend {spec.backend!r}; choose one of {BACKENDS}")


__all__ = [
    "BACKENDS",
    "ChatBackend",
    "Completion",
    "LLMError",
    "LLMSpec",
    "LocalHFBackend",
    "Message",
    "OpenAICompatBackend",
    "ResponseCache",
    "Usage",
    "cache_key",
    "make_backend",
    "render_chatml",
]

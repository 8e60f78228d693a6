"""The chat interface every LLM backend implements, plus token/cost accounting.

A backend turns a list of chat messages into one completion. Batch calls return an
``LLMError`` in place of a failed item instead of raising, so one bad prompt never sinks a
whole shard; callers count those as skip reasons.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}


class LLMError(RuntimeError):
    """A request failed for good (after retries); ``reason`` is a short countable label."""

    def __init__(self, message: str, reason: str = "error") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"
    cached: bool = False
    latency_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "model": self.model,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "finish_reason": self.finish_reason,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any], *, cached: bool = False) -> Completion:
        return cls(
            text=str(raw["text"]),
            model=str(raw.get("model", "")),
            prompt_tokens=int(raw.get("prompt_tokens", 0)),
            completion_tokens=int(raw.get("completion_tokens", 0)),
            finish_reason=str(raw.get("finish_reason", "stop")),
            cached=cached,
        )


@dataclass
class Usage:
    """Thread-safe running totals of one backend's traffic (reported in asset metadata)."""

    requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    failure_reasons: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, c: Completion, cost: float = 0.0) -> None:
        with self._lock:
            if c.cached:
                self.cache_hits += 1
                return
            self.requests += 1
            self.prompt_tokens += c.prompt_tokens
            self.completion_tokens += c.completion_tokens
            self.cost_usd += cost

    def record_retry(self) -> None:
        with self._lock:
            self.retries += 1

    def record_failure(self, reason: str) -> None:
        with self._lock:
            self.failures += 1
            self.failure_reasons[reason] = self.failure_reasons.get(reason, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "cache_hits": self.cache_hits,
                "retries": self.retries,
                "failures": self.failures,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "cost_usd": round(self.cost_usd, 6),
                "failure_reasons": dict(self.failure_reasons),
            }


@runtime_checkable
class ChatBackend(Protocol):
    """Anything that answers chat messages: an OpenAI-compatible server or a local model."""

    name: str
    usage: Usage

    def chat(
        self, messages: Sequence[Message], *, max_tokens: int = 512, temperature: float = 0.0, seed: int = 0
    ) -> Completion: ...

    def chat_many(
        self, conversations: Sequence[Sequence[Message]], **kwargs: Any
    ) -> list[Completion | LLMError]: ...


def chat_many_threaded(
    backend: ChatBackend, conversations: Sequence[Sequence[Message]], workers: int, **kwargs: Any
) -> list[Completion | LLMError]:
    """Run ``backend.chat`` over many conversations with ``workers`` threads, order kept."""

    def one(msgs: Sequence[Message]) -> Completion | LLMError:
        try:
            return backend.chat(msgs, **kwargs)
        except LLMError as exc:
            return exc

    if workers <= 1 or len(conversations) <= 1:
        return [one(m) for m in conversations]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, conversations))


def validate_messages(messages: Sequence[Message]) -> list[Message]:
    """Messages as plain dicts; a clear error for anything a chat endpoint would reject."""
    out = []
    for i, m in enumerate(messages):
        role, content = m.get("role"), m.get("content")
        if role not in {"system", "user", "assistant"} or not isinstance(content, str):
            raise LLMError(f"message {i} must have role system|user|assistant and string content: {m!r}", "bad_request")
        out.append({"role": role, "content": content})
    if not out:
        raise LLMError("no messages to send", "bad_request")
    return out

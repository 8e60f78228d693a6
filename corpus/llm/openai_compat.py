"""Backend for any OpenAI-compatible ``/v1/chat/completions`` server (vLLM, SGLang,
llama.cpp server, Ollama, hosted APIs).

Production concerns handled here rather than in every caller: a concurrency limit shared by
all threads, retries with exponential backoff on 429 (honouring ``Retry-After``), 5xx,
timeouts, connection errors and malformed JSON; an on-disk response cache so a re-run never
re-asks; token and cost accounting.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Sequence
from typing import Any

import requests

from corpus.llm.base import Completion, LLMError, Message, Usage, chat_many_threaded, validate_messages
from corpus.llm.cache import ResponseCache, cache_key

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class OpenAICompatBackend:
    """Chat completions over HTTP with bounded concurrency, retries, cache and accounting.

    ``price_in_per_mtok`` / ``price_out_per_mtok`` are USD per million prompt / completion
    tokens (0 for self-hosted servers). ``max_retries`` counts attempts after the first.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        max_concurrency: int = 4,
        max_retries: int = 4,
        timeout_s: float = 60.0,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        cache_dir: str | None = None,
        price_in_per_mtok: float = 0.0,
        price_out_per_mtok: float = 0.0,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + ("/chat/completions" if self.base_url.endswith("/v1") else "/v1/chat/completions")
        self.model = model
        self.name = f"openai:{model}"
        self.api_key = api_key
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.cache = ResponseCache(cache_dir) if cache_dir else None
        self.price_in = price_in_per_mtok
        self.price_out = price_out_per_mtok
        self.extra_body = dict(extra_body or {})
        self.usage = Usage()
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._local = threading.local()
        self._sleep = time.sleep

    # ------------------------------------------------------------------ public API
    def chat(
        self, messages: Sequence[Message], *, max_tokens: int = 512, temperature: float = 0.0, seed: int = 0
    ) -> Completion:
        msgs = validate_messages(messages)
        body = {
            "model": self.model,
            "messages": msgs,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": seed,
            **self.extra_body,
        }
        key = cache_key({"backend": "openai", "url": self.base_url, **body})
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                c = Completion.from_json(hit, cached=True)
                self.usage.record(c)
                return c
        try:
            c = self._post_with_retries(body)
        except LLMError as exc:
            self.usage.record_failure(exc.reason)
            raise
        self.usage.record(c, self.cost(c))
        if self.cache is not None:
            self.cache.put(key, c.to_json())
        return c

    def chat_many(self, conversations: Sequence[Sequence[Message]], **kwargs: Any) -> list[Completion | LLMError]:
        return chat_many_threaded(self, conversations, self.max_concurrency, **kwargs)

    def cost(self, c: Completion) -> float:
        return (c.prompt_tokens * self.price_in + c.completion_tokens * self.price_out) / 1e6

    # ------------------------------------------------------------------ HTTP
    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            if self.api_key:
                s.headers["Authorization"] = f"Bearer {self.api_key}"
            self._local.session = s
        return s

    def _post_with_retries(self, body: dict[str, Any]) -> Completion:
        last = "unknown"
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.usage.record_retry()
            t0 = time.monotonic()
            try:
                with self._slots:
                    resp = self._session().post(self.url, json=body, timeout=self.timeout_s)
            except requests.Timeout:
                last, wait = "timeout", None
            except requests.ConnectionError as exc:
                last, wait = f"connection_error: {exc.__class__.__name__}", None
            else:
                if resp.status_code == 200:
                    try:
                        return self._parse(resp, time.monotonic() - t0)
                    except LLMError as exc:
                        last, wait = exc.reason, None
                elif resp.status_code in RETRY_STATUSES:
                    last, wait = f"http_{resp.status_code}", _retry_after(resp)
                else:
                    raise LLMError(
                        f"{self.url}: HTTP {resp.status_code} (not retryable): {resp.text[:300]!r}; "
                        "check the model name, API key and request parameters",
                        f"http_{resp.status_code}",
                    )
            if attempt < self.max_retries:
                self._sleep(self._backoff(attempt, wait))
        reason = last.split(":")[0]
        raise LLMError(f"{self.url}: gave up after {self.max_retries + 1} attempts (last error: {last})", reason)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff_s)
        base = min(self.backoff_s * (2**attempt), self.max_backoff_s)
        return base * (0.5 + random.random() / 2)  # jitter: concurrent clients do not retry in lockstep

    def _parse(self, resp: requests.Response, latency: float) -> Completion:
        try:
            raw = resp.json()
            choice = raw["choices"][0]
            text = choice["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMError(f"{self.url}: malformed response ({exc}): {resp.text[:200]!r}", "malformed_json") from exc
        if not isinstance(text, str):
            raise LLMError(f"{self.url}: response content is not a string: {text!r}", "malformed_json")
        usage = raw.get("usage") or {}
        prompt_tokens = usage.get("prompt_tokens")
        completion_tokens = usage.get("completion_tokens")
        if not isinstance(prompt_tokens, int):  # server did not report usage: estimate (~4 chars/token)
            prompt_tokens = sum(len(m["content"]) for m in json.loads(resp.request.body or b"{}").get("messages", [])) // 4
        if not isinstance(completion_tokens, int):
            completion_tokens = len(text) // 4
        return Completion(
            text=text,
            model=str(raw.get("model") or self.model),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason=str(choice.get("finish_reason") or "stop"),
            latency_s=latency,
        )


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # HTTP-date form: fall back to exponential backoff

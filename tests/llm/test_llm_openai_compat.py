"""The OpenAI-compatible backend against a real local HTTP server speaking /v1/chat/completions."""

from __future__ import annotations

import threading
import time

import pytest

from corpus.llm import LLMError, LLMSpec, OpenAICompatBackend, make_backend
from corpus.llm.local_server import LocalChatServer, Reply

MSGS = [{"role": "user", "content": "Say hello"}]


def scripted(*replies):
    """A responder returning the scripted replies in order, then 'ok' forever."""
    queue = list(replies)
    lock = threading.Lock()

    def responder(body):
        with lock:
            return queue.pop(0) if queue else Reply(text="ok")

    return responder


def backend(srv, tmp_path=None, **kw):
    b = OpenAICompatBackend(srv.base_url, "test-model", cache_dir=str(tmp_path / "cache") if tmp_path else None,
                            backoff_s=0.01, timeout_s=kw.pop("timeout_s", 5), **kw)
    b.sleeps = []
    b._sleep = lambda s: b.sleeps.append(s)  # record backoff instead of waiting
    return b


def test_plain_reply_and_usage_accounting():
    with LocalChatServer(lambda body: Reply(text="hi there", usage={"prompt_tokens": 7, "completion_tokens": 3})) as srv:
        b = backend(srv, price_in_per_mtok=1000.0, price_out_per_mtok=2000.0)
        c = b.chat(MSGS, max_tokens=16, temperature=0.0, seed=3)
        assert c.text == "hi there" and not c.cached
        assert (c.prompt_tokens, c.completion_tokens) == (7, 3)
        assert srv.requests[0]["model"] == "test-model"
        assert srv.requests[0]["messages"] == MSGS
        assert srv.requests[0]["max_tokens"] == 16 and srv.requests[0]["seed"] == 3
        u = b.usage.as_dict()
        assert u["requests"] == 1 and u["prompt_tokens"] == 7 and u["completion_tokens"] == 3
        assert u["cost_usd"] == pytest.approx((7 * 1000 + 3 * 2000) / 1e6)


def test_429_honours_retry_after_then_succeeds():
    with LocalChatServer(scripted(Reply(status=429, headers={"Retry-After": "2"}))) as srv:
        b = backend(srv)
        assert b.chat(MSGS).text == "ok"
        assert len(srv.requests) == 2
        assert b.sleeps == [2.0]
        assert b.usage.retries == 1


def test_500_and_malformed_json_are_retried_with_backoff():
    with LocalChatServer(scripted(Reply(status=500), Reply(raw=b"{not json"), Reply(raw=b'{"choices": []}'))) as srv:
        b = backend(srv)
        assert b.chat(MSGS).text == "ok"
        assert len(srv.requests) == 4
        assert len(b.sleeps) == 3 and all(s > 0 for s in b.sleeps)
        assert b.sleeps[2] > b.sleeps[0] * 0.9  # exponential (with jitter in [0.5, 1])


def test_timeout_is_retried():
    with LocalChatServer(scripted(Reply(text="slow", delay_s=1.5))) as srv:
        b = backend(srv, timeout_s=0.3)
        t0 = time.monotonic()
        assert b.chat(MSGS).text == "ok"
        assert time.monotonic() - t0 < 5
        assert b.usage.retries == 1


def test_persistent_5xx_gives_up_with_clear_error():
    with LocalChatServer(lambda body: Reply(status=503)) as srv:
        b = backend(srv, max_retries=2)
        with pytest.raises(LLMError) as err:
            b.chat(MSGS)
        assert err.value.reason == "http_503"
        assert "3 attempts" in str(err.value)
        assert len(srv.requests) == 3
        assert b.usage.failures == 1 and b.usage.failure_reasons == {"http_503": 1}


def test_non_retryable_4xx_fails_at_once():
    with LocalChatServer(lambda body: Reply(status=400)) as srv:
        b = backend(srv)
        with pytest.raises(LLMError, match="not retryable"):
            b.chat(MSGS)
        assert len(srv.requests) == 1


def test_bad_messages_rejected_before_sending():
    with LocalChatServer(lambda body: "x") as srv:
        b = backend(srv)
        with pytest.raises(LLMError, match="role"):
            b.chat([{"role": "robot", "content": "x"}])
        assert srv.requests == []


def test_cache_means_reruns_never_reask(tmp_path):
    with LocalChatServer(lambda body: Reply(text="answer: " + body["messages"][-1]["content"])) as srv:
        b1 = backend(srv, tmp_path)
        first = b1.chat(MSGS)
        b2 = backend(srv, tmp_path)  # a new process-equivalent: fresh backend, same cache folder
        again = b2.chat(MSGS)
        assert again.text == first.text and again.cached
        assert len(srv.requests) == 1
        assert b2.usage.cache_hits == 1 and b2.usage.requests == 0
        b2.chat(MSGS, temperature=0.7)  # different sampling parameters: a different key
        assert len(srv.requests) == 2


def test_corrupt_cache_entry_is_a_miss(tmp_path):
    with LocalChatServer(lambda body: "fresh") as srv:
        b = backend(srv, tmp_path)
        b.chat(MSGS)
        for p in (tmp_path / "cache").rglob("*.json"):
            p.write_text("{truncated")
        b2 = backend(srv, tmp_path)
        assert b2.chat(MSGS).text == "fresh"
        assert b2.cache.corrupt == 1 and len(srv.requests) == 2


def test_concurrency_limit_and_order_in_chat_many():
    def responder(body):
        return Reply(text=body["messages"][0]["content"].upper(), delay_s=0.05)

    with LocalChatServer(responder) as srv:
        b = backend(srv, max_concurrency=3)
        convs = [[{"role": "user", "content": f"q{i}"}] for i in range(12)]
        out = b.chat_many(convs)
        assert [c.text for c in out] == [f"Q{i}" for i in range(12)]
        assert 1 < srv.max_in_flight <= 3


def test_chat_many_returns_errors_in_place():
    def responder(body):
        return Reply(status=400) if body["messages"][0]["content"] == "bad" else "fine"

    with LocalChatServer(responder) as srv:
        b = backend(srv)
        out = b.chat_many([[{"role": "user", "content": c}] for c in ("a", "bad", "b")])
        assert out[0].text == "fine" and out[2].text == "fine"
        assert isinstance(out[1], LLMError) and out[1].reason == "http_400"


def test_make_backend_and_spec_identity(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_KEY", "sekret")
    with LocalChatServer(lambda body: "x") as srv:
        spec = LLMSpec(backend="openai", base_url=srv.base_url, model="m", api_key_env="MY_KEY")
        b = make_backend(spec, cache_dir=str(tmp_path))
        assert b.chat(MSGS).text == "x"
        assert srv.headers[-1]["Authorization"] == "Bearer sekret"
        root = srv.base_url.removesuffix("/v1")  # a base URL without /v1 works too
        assert OpenAICompatBackend(root, "m").chat(MSGS).text == "x"
        assert "Authorization" not in srv.headers[-1]
    assert make_backend(LLMSpec()) is None
    assert "api_key_env" not in spec.identity() and spec.identity()["model"] == "m"
    with pytest.raises(ValueError, match="unknown LLM backend"):
        make_backend(LLMSpec(backend="gpt"))

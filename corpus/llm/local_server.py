"""A minimal OpenAI-compatible chat server driven by a Python callable.

Used to exercise the real HTTP path (retries, cache, accounting) without a GPU: tests,
demos and dry runs of the synthetic-data graph. ``responder(body)`` returns either a reply
string or a ``Reply`` (status, headers, raw body, delay) to script errors such as 429 with
``Retry-After``, 500, malformed JSON or a slow answer.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    text: str | None = None  # assistant content (status 200, well-formed body)
    raw: bytes | None = None  # exact body to send instead (malformed JSON, error pages)
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    usage: dict[str, int] | None = None


Responder = Callable[[dict[str, Any]], "str | Reply"]


class LocalChatServer:
    """``with LocalChatServer(responder) as srv: srv.base_url`` -> ``http://127.0.0.1:PORT/v1``."""

    def __init__(self, responder: Responder, host: str = "127.0.0.1", port: int = 0) -> None:
        self.responder = responder
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> LocalChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, b'{"error": "not found"}', {})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self._send(400, b'{"error": "bad json"}', {})
                    return
                with server._lock:
                    server.requests.append(body)
                    server.headers.append(dict(self.headers.items()))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    out = server.responder(body)
                    reply = out if isinstance(out, Reply) else Reply(text=str(out))
                    if reply.delay_s:
                        time.sleep(reply.delay_s)
                    if reply.raw is not None:
                        payload = reply.raw
                    elif reply.status == 200:
                        payload = json.dumps(_completion(body, reply)).encode()
                    else:
                        payload = json.dumps({"error": {"message": f"scripted {reply.status}"}}).encode()
                    self._send(reply.status, payload, reply.headers)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

        return Handler


def _completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    text = reply.text or ""
    prompt_chars = sum(len(m.get("content", "")) for m in body.get("messages", []))
    usage = reply.usage or {"prompt_tokens": max(1, prompt_chars // 4), "completion_tokens": max(1, len(text) // 4)}
    usage = {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}
    return {
        "id": "chatcmpl-local",
        "object": "chat.completion",
        "model": body.get("model", "local"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": usage,
    }

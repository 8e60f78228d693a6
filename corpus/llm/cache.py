"""Content-addressed on-disk cache of LLM responses, so a re-run never re-asks a question.

The key is the sha256 of (backend, model, messages, sampling parameters); a response is one
small JSON file written atomically (temp file + rename), so a killed run leaves either the
whole entry or none. An unreadable entry is treated as a miss and overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from typing import Any


def cache_key(payload: dict[str, Any]) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


class ResponseCache:
    """``<root>/<key[:2]>/<key>.json`` files; safe to share between threads and processes."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.corrupt = 0
        self._lock = threading.Lock()

    def _path(self, key: str) -> str:
        return os.path.join(self.root, key[:2], f"{key}.json")

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            with open(path, encoding="utf-8") as fh:
                raw = json.load(fh)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            with self._lock:
                self.corrupt += 1
            return None
        return raw if isinstance(raw, dict) else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(value, fh, ensure_ascii=False, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def __len__(self) -> int:
        n = 0
        for _dirpath, _dirs, files in os.walk(self.root):
            n += sum(1 for f in files if f.endswith(".json") and not f.startswith(".tmp-"))
        return n

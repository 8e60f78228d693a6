"""Row schemas of the SFT / DPO sets (docs/STAGES.md "SFT / DPO sets") and ChatML helpers.

These schemas are a contract with training/: change them only together with that library.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pyarrow as pa

MESSAGE = pa.struct([pa.field("role", pa.string()), pa.field("content", pa.large_string())])

SFT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source_id", pa.string()),
        pa.field("language", pa.string()),
        pa.field("messages", pa.list_(MESSAGE)),
        pa.field("score", pa.float64()),
        pa.field("verified", pa.bool_()),
        pa.field("status", pa.string()),
    ]
)

DPO_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source_id", pa.string()),
        pa.field("language", pa.string()),
        pa.field("prompt", pa.list_(MESSAGE)),
        pa.field("chosen", pa.large_string()),
        pa.field("rejected", pa.large_string()),
        pa.field("pair_source", pa.string()),
    ]
)

SYSTEM_PROMPT = "You are a helpful coding assistant."


def chatml(messages: Sequence[dict[str, str]]) -> str:
    """Render messages as ChatML: ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` each."""
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)


def conversation(instruction: str, response: str | None = None, system: str | None = SYSTEM_PROMPT) -> list[dict]:
    msgs = [{"role": "system", "content": system}] if system else []
    msgs.append({"role": "user", "content": instruction})
    if response is not None:
        msgs.append({"role": "assistant", "content": response})
    return msgs


def sample_id(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]

"""Row contracts shared by every stage (see ARCHITECTURE.md, "Data contracts").

Later stages add columns to these schemas; they never rewrite or drop the contract columns.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

CODE_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("repo", pa.string()),
        pa.field("path", pa.string()),
        pa.field("language", pa.string()),
        pa.field("content", pa.large_string()),
        pa.field("size_bytes", pa.int64()),
        pa.field("sha256", pa.string()),
        pa.field("license", pa.string()),
        pa.field("stars", pa.int64()),
        pa.field("forks", pa.int64()),
        pa.field("revision_date", pa.timestamp("s", tz="UTC")),
        pa.field("source", pa.string()),
    ]
)
CODE_SOURCES = ("github", "git", "local", "notebook", "commit", "synthetic")

TEXT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("text", pa.large_string()),
        pa.field("source", pa.string()),
    ]
)


def content_sha256(content: str | bytes) -> str:
    data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
    return hashlib.sha256(data).hexdigest()


def code_row_id(repo: str, path: str, sha256: str) -> str:
    """Stable id of a code row: hash of repo + path + content sha (32 hex chars)."""
    return hashlib.sha256(f"{repo}\x00{path}\x00{sha256}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


def text_row_id(url: str, text: str) -> str:
    """Stable id of a text row: hash of url + text."""
    return hashlib.sha256(f"{url}\x00{text}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


def extend_schema(base: pa.Schema, *fields: pa.Field) -> pa.Schema:
    """``base`` plus new columns (a later stage's additions), refusing to shadow contract columns."""
    for f in fields:
        if f.name in base.names:
            raise ValueError(f"column {f.name!r} already exists in the schema; add, never rewrite")
    return pa.schema(list(base) + list(fields))

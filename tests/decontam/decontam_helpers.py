"""Helpers shared by the decontamination tests (unique module name: tests dirs have no __init__)."""

from __future__ import annotations

import os

import pyarrow as pa

from corpus import shards
from corpus.schemas import CODE_SCHEMA, code_row_id, content_sha256, text_row_id

STDLIB = "/root/.pyenv/versions/3.11.7/lib/python3.11"
CODE_DEDUP_SCHEMA = CODE_SCHEMA.append(pa.field("cluster_id", pa.string()))


def stdlib_file(rel: str) -> str:
    with open(os.path.join(STDLIB, rel), encoding="utf-8") as fh:
        return fh.read()


def reformat_whitespace(code: str) -> str:
    """The same tokens with different whitespace: every run of spaces doubled, newlines as CRLF."""
    return code.replace(" ", "  ").replace("\n", " \r\n")


def code_row(path: str, content: str | None, **extra) -> dict:
    sha = content_sha256(content or "")
    return dict(
        id=code_row_id("test/repo", path, sha), repo="test/repo", path=path, language="python", content=content,
        size_bytes=len((content or "").encode()), sha256=sha, license="MIT", stars=1, forks=0,
        revision_date=None, source="local", cluster_id=sha[:8], **extra,
    )


def text_row(url: str, text: str | None) -> dict:
    return dict(id=text_row_id(url, text or ""), url=url, text=text, source="web")


def write_set(path: str, rows: list[dict], schema: pa.Schema = CODE_DEDUP_SCHEMA, **kw) -> str:
    with shards.ShardSetWriter(path, schema, **kw) as w:
        w.write_rows(rows)
    return path

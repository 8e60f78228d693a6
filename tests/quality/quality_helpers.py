"""Helpers shared by the quality tests (unique module name: tests dirs have no __init__)."""

from __future__ import annotations

import os

import pyarrow as pa

from corpus import shards
from corpus.schemas import CODE_SCHEMA, code_row_id, content_sha256

STDLIB = "/root/.pyenv/versions/3.11.7/lib/python3.11"
CODE_DEDUP_SCHEMA = CODE_SCHEMA.append(pa.field("cluster_id", pa.string()))
GOOD_PY = ["json/__init__.py", "json/decoder.py", "json/encoder.py", "textwrap.py", "heapq.py", "bisect.py",
           "statistics.py", "fractions.py", "colorsys.py", "shlex.py"]


def stdlib_file(rel: str) -> str:
    with open(os.path.join(STDLIB, rel), encoding="utf-8") as fh:
        return fh.read()


def code_row(path: str, content: str | None, language: str = "python", **extra) -> dict:
    sha = content_sha256(content or "")
    return dict(
        id=code_row_id("test/repo", path, sha), repo="test/repo", path=path, language=language, content=content,
        size_bytes=len((content or "").encode()), sha256=sha, license="MIT", stars=1, forks=0,
        revision_date=None, source="local", cluster_id=sha[:8], **extra,
    )


def write_set(path: str, rows: list[dict], schema: pa.Schema = CODE_DEDUP_SCHEMA, **kw) -> str:
    with shards.ShardSetWriter(path, schema, **kw) as w:
        w.write_rows(rows)
    return path

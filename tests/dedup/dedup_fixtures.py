"""Shared helpers for the dedup tests: real code files from this machine written as shard sets."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus import shards
from corpus.dedup import jaccard, shingle_set
from corpus.schemas import CODE_SCHEMA, code_row_id, content_sha256

VENV_SP = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       ".venv", "lib", "python3.11", "site-packages")
PYENV_SP = "/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages"
STDLIB = "/root/.pyenv/versions/3.11.7/lib/python3.11"
# (vendored copy, standalone package): same project, different releases -> real near duplicates.
VENDORED_PAIRS = (
    (os.path.join(PYENV_SP, "pip/_vendor/rich"), os.path.join(VENV_SP, "rich")),
    (os.path.join(VENV_SP, "pip/_vendor/tomli"), os.path.join(VENV_SP, "tomli")),
    (os.path.join(PYENV_SP, "pip/_vendor/requests"), os.path.join(VENV_SP, "requests")),
)


def read(path: str) -> str:
    with open(path, "rb") as fh:
        return fh.read().decode("utf-8", "replace")


def near_duplicate_pairs(lo: float = 0.9, limit: int = 8) -> list[tuple[str, str, float]]:
    """Real file pairs (vendored vs standalone release) with true Jaccard in [lo, 1), not equal."""
    out = []
    for a_dir, b_dir in VENDORED_PAIRS:
        for a in sorted(glob.glob(os.path.join(a_dir, "**", "*.py"), recursive=True)):
            b = b_dir + a[len(a_dir):]
            if not os.path.exists(b):
                continue
            ca, cb = read(a), read(b)
            if ca == cb or len(ca) < 1500:
                continue
            j = jaccard(shingle_set(ca, 5), shingle_set(cb, 5))
            if lo <= j < 1.0:
                out.append((a, b, j))
    out.sort(key=lambda t: (-t[2], t[0]))
    if len(out) < 2:
        pytest.skip("vendored near-duplicate pairs (pip/_vendor vs site-packages) not found on this machine")
    return out[:limit]


def unrelated_files(n: int = 12) -> list[str]:
    """Distinct stdlib modules of moderate size (no two are near duplicates)."""
    names = ["json/decoder.py", "csv.py", "heapq.py", "bisect.py", "shlex.py", "fnmatch.py", "glob.py",
             "textwrap.py", "colorsys.py", "calendar.py", "difflib.py", "fractions.py", "graphlib.py",
             "netrc.py", "queue.py", "sched.py"]
    files = [os.path.join(STDLIB, x) for x in names if os.path.exists(os.path.join(STDLIB, x))]
    if len(files) < n:
        pytest.skip("Python stdlib sources not found")
    return files[:n]


def code_row(path: str, content: str | bytes | None, **kw) -> dict:
    text = content if isinstance(content, str) or content is None else content.decode("utf-8", "replace")
    sha = content_sha256(text or "")
    row = dict(
        id=code_row_id("local", path, sha), repo="local", path=path, language="python", content=text,
        size_bytes=len(text or ""), sha256=sha, license=None, stars=None, forks=None,
        revision_date=None, source="local",
    )
    row.update(kw)
    return row


def rows_from_files(paths: Iterable[str], **kw) -> list[dict]:
    return [code_row(p, read(p), **kw) for p in paths]


def write_code_set(path: str, rows: Sequence[dict], shard_rows: int = 50_000) -> str:
    with shards.ShardSetWriter(path, CODE_SCHEMA, shard_rows=shard_rows) as w:
        w.write_rows(list(rows))
    return path


def write_raw_parquet(path: str, table: pa.Table) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(table, path)
    return path


def read_set(path: str) -> pa.Table:
    return pa.Table.from_batches(list(shards.iter_batches(path)), schema=shards.read_schema(path))


def when(year: int) -> datetime:
    return datetime(year, 1, 1, tzinfo=timezone.utc)

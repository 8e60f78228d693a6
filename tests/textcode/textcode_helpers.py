"""Builders of real input files (WARC via warcio, JSONL, Parquet) for the textcode tests."""

from __future__ import annotations

import gzip
import io
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

CODE_PAGE = """<!DOCTYPE html><html><head><title>Using dict comprehensions</title></head><body>
<nav>Home | Docs</nav><main><h1>Dictionary comprehensions in Python</h1>
<p>A dictionary comprehension builds a mapping from an iterable. The syntax mirrors list comprehensions,
with a key and a value expression separated by a colon. Use it to invert a mapping or to index records.</p>
<pre>squares = {n: n * n for n in range(10)}
inverse = {v: k for k, v in squares.items()}
print(inverse[81])</pre>
<p>The function returns a new dict; the original is unchanged. Call sorted() on the items to iterate in
key order, and use collections.defaultdict when values accumulate.</p></main></body></html>"""

PROSE_PAGE = """<!DOCTYPE html><html><head><title>Spring walk</title></head><body><main>
<h1>A walk along the river in spring</h1>
<p>The morning was cool and bright when we set out along the river. Birds were singing in the willows and
the meadows on the far bank were full of yellow flowers. We stopped at the old mill for coffee and talked
about the summer holidays, the garden and the neighbours' new dog.</p>
<p>In the afternoon the wind turned and clouds came in from the west, so we walked back through the village
and reached home just before the rain.</p></main></body></html>"""


def write_warc(path: str, records: list[dict], gz: bool = True) -> str:
    """records: dicts with url, body (bytes), and optional content_type, type ('response' |
    'resource' | 'conversion'), status."""
    with open(path, "wb") as fh:
        w = WARCWriter(fh, gzip=gz)
        for r in records:
            rtype = r.get("type", "response")
            body = r["body"]
            if rtype == "response":
                headers = [("Content-Type", r.get("content_type", "text/html; charset=utf-8"))]
                http = StatusAndHeaders(r.get("status", "200 OK"), headers + r.get("http_headers", []),
                                        protocol="HTTP/1.1")
                rec = w.create_warc_record(r["url"], "response", payload=io.BytesIO(body), length=len(body),
                                           http_headers=http)
            else:
                rec = w.create_warc_record(r["url"], rtype, payload=io.BytesIO(body), length=len(body),
                                           warc_content_type=r.get("content_type", "text/plain"))
            w.write_record(rec)
    return path


def write_jsonl(path: str, lines: list[bytes | dict], gz: bool = False) -> str:
    data = b"".join((json.dumps(x).encode() if isinstance(x, dict) else x) + b"\n" for x in lines)
    if gz:
        data = gzip.compress(data)
    with open(path, "wb") as fh:
        fh.write(data)
    return path


def write_parquet(path: str, rows: list[dict]) -> str:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def truncate(path: str, fraction: float = 0.6) -> str:
    size = os.path.getsize(path)
    with open(path, "rb+") as fh:
        fh.truncate(int(size * fraction))
    return path


def prose(i: int) -> str:
    return PROSE_PAGE.replace("spring", f"spring {i}").replace("river", f"river number {i}")


def code_page(i: int) -> str:
    return CODE_PAGE.replace("range(10)", f"range({i})").replace("Python", f"Python lesson {i}")

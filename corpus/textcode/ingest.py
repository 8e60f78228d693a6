"""Readers for web-text inputs: WARC / WET (gzip or plain), JSONL (gzip or plain), Parquet,
local HTML and plain-text files. Each yields :class:`Doc` (url + extracted text) and counts
every record it cannot use in a :class:`SkipCounter`, naming the file and record.

A *source spec* is a path, a folder, a glob, or a built-in local corpus ``local:<name>``
(see :mod:`corpus.textcode.seeds`), optionally suffixed ``@i/n`` to keep only the i-th of n
deterministic hash shards of its documents (so one corpus can feed a training seed and a
disjoint web batch).
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import xxhash

from corpus import shards
from corpus.textcode.extract import Rejected, clean_text, decode, html_to_text, payload_to_text
from corpus.textcode.skips import SkipCounter

WARC_SUFFIXES = (".warc", ".warc.gz", ".wet", ".wet.gz", ".arc.gz")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".ndjson", ".ndjson.gz")
PARQUET_SUFFIXES = (".parquet",)
HTML_SUFFIXES = (".html", ".htm", ".xhtml")
TEXT_SUFFIXES = (".txt", ".txt.gz", ".md", ".rst")
BATCH_SUFFIXES = WARC_SUFFIXES + JSONL_SUFFIXES + PARQUET_SUFFIXES
DEFAULT_MAX_DOC_BYTES = 4 * 1024 * 1024
_SHARD = re.compile(r"^(?P<spec>.*)@(?P<i>\d+)/(?P<n>\d+)$")


@dataclass(frozen=True)
class Doc:
    """One document: where it came from and its main text."""

    url: str
    text: str
    source: str


@dataclass(frozen=True)
class ReadOptions:
    text_field: str = "text"
    url_field: str = "url"
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES


# --------------------------------------------------------------------------- gzip


class _GzipTail(io.RawIOBase):
    """A gzip reader that turns a truncated stream into a clean EOF and remembers it, so the
    records before the cut are kept and the truncation is counted, not raised mid-file."""

    def __init__(self, path: str) -> None:
        self._gz = gzip.open(path, "rb")
        self.truncated = False
        self.corrupt = False
        self._pos = 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def readinto(self, b) -> int:  # type: ignore[override]
        if self.truncated or self.corrupt:
            return 0
        try:
            data = self._gz.read1(len(b))
        except EOFError:
            self.truncated = True
            return 0
        except (gzip.BadGzipFile, zlib.error, OSError):
            self.corrupt = True
            return 0
        b[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        self._gz.close()
        super().close()


def _open_maybe_gzip(path: str) -> io.BufferedReader | _GzipTail:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return _GzipTail(path)
    return open(path, "rb")


def _gzip_status(stream: object, path: str, skips: SkipCounter) -> None:
    if isinstance(stream, _GzipTail):
        if stream.truncated:
            skips.add("truncated_gzip", path)
        if stream.corrupt:
            skips.add("corrupt_gzip", path)


# --------------------------------------------------------------------------- WARC / WET


def iter_warc(path: str, skips: SkipCounter, opts: ReadOptions = ReadOptions()) -> Iterator[Doc]:
    """Response / resource records (HTML or text -> main text) and WET conversion records."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    wanted = WarcRecordType.response | WarcRecordType.resource | WarcRecordType.conversion
    stream = _open_maybe_gzip(path)
    seen_any = False
    try:
        for n, rec in enumerate(_records(ArchiveIterator(stream, record_types=wanted, parse_http=False), path, skips)):
            seen_any = True
            url = rec.headers.get("WARC-Target-URI", "") or ""
            where = f"{path}#record{n}({url or rec.record_id})"
            if "Content-Length" not in rec.headers:
                skips.add("truncated_record", where)  # header block cut off (WARC requires the field)
                continue
            declared = rec.content_length
            body = rec.reader.read(opts.max_doc_bytes + 1)
            if len(body) > opts.max_doc_bytes:
                skips.add("payload_too_large", where)
                continue
            if len(body) < declared:
                skips.add("truncated_record", where)
                continue
            content_type = rec.headers.get("Content-Type", "")
            kind = "wet" if rec.record_type == WarcRecordType.conversion else "warc"
            if rec.record_type == WarcRecordType.response and content_type.startswith("application/http"):
                head, sep, body = body.partition(b"\r\n\r\n")
                if not sep:
                    skips.add("bad_http_headers", where)
                    continue
                content_type = _http_header(head, b"content-type")
                status = head.split(b"\r\n", 1)[0].split()
                if len(status) >= 2 and status[1][:1] not in (b"2",):
                    skips.add("http_status_not_2xx", where)
                    continue
                try:
                    body = _decode_http_body(head, body, opts.max_doc_bytes)
                except ValueError as exc:
                    skips.add(str(exc), where)
                    continue
            try:
                if kind == "wet":
                    if not body.strip():
                        raise Rejected("empty_payload")
                    text = clean_text(body.decode("utf-8", errors="strict"))
                    if not text:
                        raise Rejected("empty_extraction")
                else:
                    text = payload_to_text(body, content_type)
            except UnicodeDecodeError:
                skips.add("non_utf8_wet_text", where)
                continue
            except Rejected as rej:
                skips.add(rej.reason, where)
                continue
            yield Doc(url=url, text=text, source=kind)
    finally:
        stream.close()
    _gzip_status(stream, path, skips)
    if not seen_any and not (isinstance(stream, _GzipTail) and (stream.truncated or stream.corrupt)):
        skips.add("no_warc_records", path)


def _records(it, path: str, skips: SkipCounter):
    """The iterator's records; a stream that stops being WARC ends the file with a counted reason."""
    from fastwarc.stream_io import StreamError

    try:
        yield from it
    except StreamError as exc:
        skips.add("not_a_warc_stream", f"{path} ({exc})")


def _decode_http_body(head: bytes, body: bytes, limit: int) -> bytes:
    """Undo chunked transfer coding and gzip / deflate / brotli content coding, as a raw
    (not Common Crawl-normalized) WARC stores them; ValueError(reason) if undecodable."""
    if "chunked" in _http_header(head, b"transfer-encoding").lower():
        body = _dechunk(body)
    coding = _http_header(head, b"content-encoding").strip().lower()
    if coding in ("", "identity", "none"):
        return body
    if coding not in ("gzip", "x-gzip", "deflate", "br"):
        raise ValueError("unsupported_content_encoding")
    try:
        if coding == "br":
            import brotli

            out = brotli.decompress(body)
        else:
            try:
                out = zlib.decompressobj(wbits=47 if coding != "deflate" else 15).decompress(body, limit + 1)
            except zlib.error:
                out = zlib.decompressobj(wbits=-15).decompress(body, limit + 1)  # raw deflate
    except Exception as exc:  # zlib.error, brotli.error: the stored bytes are not what the header says
        raise ValueError("bad_content_encoding") from exc
    if len(out) > limit:
        raise ValueError("payload_too_large")
    return out


def _dechunk(body: bytes) -> bytes:
    out, pos = bytearray(), 0
    while pos < len(body):
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            break
        try:
            size = int(body[pos:eol].split(b";")[0].strip() or b"0", 16)
        except ValueError:
            return body  # not really chunked: keep the body as stored
        if size == 0:
            break
        out += body[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2
    return bytes(out)


def _http_header(head: bytes, name: bytes) -> str:
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name:
            return v.strip().decode("latin-1")
    return ""


# --------------------------------------------------------------------------- JSONL / Parquet


def iter_jsonl(path: str, skips: SkipCounter, opts: ReadOptions = ReadOptions()) -> Iterator[Doc]:
    """One JSON object per line with a text field (``opts.text_field``) and optional url."""
    stream = _open_maybe_gzip(path)
    try:
        reader = io.BufferedReader(stream) if isinstance(stream, _GzipTail) else stream
        for n, raw in enumerate(reader, 1):
            where = f"{path}:{n}"
            if not raw.strip():
                continue
            if len(raw) > opts.max_doc_bytes:
                skips.add("payload_too_large", where)
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                skips.add("non_utf8_line", where)
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                skips.add("bad_json_line", where)
                continue
            text = obj.get(opts.text_field) if isinstance(obj, dict) else None
            if not isinstance(text, str):
                skips.add("missing_text_field", where)
                continue
            text = clean_text(text)
            if not text:
                skips.add("empty_text", where)
                continue
            url = obj.get(opts.url_field) or f"file://{os.path.abspath(path)}#L{n}"
            yield Doc(url=str(url), text=text, source="jsonl")
    finally:
        stream.close()
    _gzip_status(stream, path, skips)


def iter_parquet(path: str, skips: SkipCounter, opts: ReadOptions = ReadOptions()) -> Iterator[Doc]:
    """Rows of a Parquet text dump (a malformed file is skipped whole, with its name)."""
    try:
        schema_names = shards.parquet_file_schema(path).names
    except shards.ShardSetError:
        skips.add("corrupt_parquet", path)
        return
    if opts.text_field not in schema_names:
        skips.add("missing_text_field", f"{path} (columns: {schema_names})")
        return
    cols = [opts.text_field] + ([opts.url_field] if opts.url_field in schema_names else [])
    row = 0
    try:
        for batch in shards.iter_parquet_file(path, columns=cols):
            texts = batch.column(opts.text_field).to_pylist()
            urls = batch.column(opts.url_field).to_pylist() if len(cols) > 1 else [None] * len(texts)
            for text, url in zip(texts, urls):
                row += 1
                where = f"{path}:row{row}"
                if not isinstance(text, str) or not text.strip():
                    skips.add("empty_text", where)
                    continue
                if len(text) > opts.max_doc_bytes:
                    skips.add("payload_too_large", where)
                    continue
                yield Doc(url=str(url or f"file://{os.path.abspath(path)}#row{row}"), text=clean_text(text),
                          source="parquet")
    except shards.ShardSetError:
        skips.add("corrupt_parquet", f"{path} (after row {row})")


# --------------------------------------------------------------------------- local files


def _iter_local_file(path: str, skips: SkipCounter, opts: ReadOptions, to_text: Callable[[bytes], str],
                     empty_reason: str, source: str) -> Iterator[Doc]:
    """One local file as one document: the HTML and plain-text readers differ only in how the
    bytes become text, the skip reason for an empty result and the ``source`` label."""
    try:
        text = to_text(_read_file(path, opts.max_doc_bytes))
    except Rejected as rej:
        skips.add(rej.reason, path)
        return
    if not text:
        skips.add(empty_reason, path)
        return
    yield Doc(url=f"file://{os.path.abspath(path)}", text=text, source=source)


def iter_html_file(path: str, skips: SkipCounter, opts: ReadOptions = ReadOptions()) -> Iterator[Doc]:
    return _iter_local_file(path, skips, opts, html_to_text, "empty_extraction", "html")


def _plain_text(data: bytes) -> str:
    return clean_text(decode(data))


def iter_text_file(path: str, skips: SkipCounter, opts: ReadOptions = ReadOptions()) -> Iterator[Doc]:
    return _iter_local_file(path, skips, opts, _plain_text, "empty_text", "text")


def _read_file(path: str, limit: int) -> bytes:
    stream = _open_maybe_gzip(path)
    try:
        data = stream.read(limit + 1)
    finally:
        stream.close()
    if isinstance(stream, _GzipTail) and (stream.truncated or stream.corrupt):
        raise Rejected("truncated_gzip" if stream.truncated else "corrupt_gzip")
    if len(data) > limit:
        raise Rejected("payload_too_large")
    if not data.strip():
        raise Rejected("empty_payload")
    return data


# --------------------------------------------------------------------------- dispatch


def file_kind(path: str) -> str | None:
    low = path.lower()
    for kind, suffixes in (("warc", WARC_SUFFIXES), ("jsonl", JSONL_SUFFIXES), ("parquet", PARQUET_SUFFIXES),
                           ("html", HTML_SUFFIXES), ("text", TEXT_SUFFIXES)):
        if low.endswith(suffixes):
            return kind
    if os.path.basename(low) in {"copyright", "changelog.debian.gz", "changelog.gz", "readme"}:
        return "text"
    return None


_READERS = {"warc": iter_warc, "jsonl": iter_jsonl, "parquet": iter_parquet, "html": iter_html_file,
            "text": iter_text_file}


def iter_file(path: str, skips: SkipCounter, opts: ReadOptions = ReadOptions()) -> Iterator[Doc]:
    """Documents of one input file, by its suffix; unreadable files are counted, not raised."""
    kind = file_kind(path)
    if kind is None:
        skips.add("unsupported_file_type", path)
        return
    try:
        yield from _READERS[kind](path, skips, opts)
    except OSError as exc:
        skips.add("unreadable_file", f"{path} ({exc.strerror or exc})")


def expand_spec(spec: str, suffixes: tuple[str, ...] | None = None) -> list[str]:
    """Files named by a path / folder / glob spec, sorted; raises FileNotFoundError naming it."""
    if any(ch in spec for ch in "*?["):
        paths = sorted(glob.glob(spec, recursive=True))
    elif os.path.isdir(spec):
        paths = sorted(
            os.path.join(d, f) for d, _, fs in os.walk(spec, followlinks=True) for f in fs
        )
    elif os.path.exists(spec):
        return [spec]
    else:
        raise FileNotFoundError(f"text source {spec!r} does not exist (give a file, folder, glob or local:<name>)")
    out = [p for p in paths if os.path.isfile(p) and file_kind(p) is not None and ".tmp-" not in p]
    if suffixes:
        out = [p for p in out if p.lower().endswith(suffixes)]
    return out


def split_shard(spec: str) -> tuple[str, int, int]:
    """``spec@i/n`` -> (spec, i, n); no suffix -> (spec, 0, 1)."""
    m = _SHARD.match(spec)
    if not m:
        return spec, 0, 1
    i, n = int(m["i"]), int(m["n"])
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"source {spec!r}: shard suffix must be @i/n with 0 <= i < n")
    return m["spec"], i, n


def in_shard(key: str, i: int, n: int) -> bool:
    return n == 1 or xxhash.xxh64_intdigest(key.encode("utf-8", "surrogatepass")) % n == i


def iter_spec(spec: str, skips: SkipCounter, opts: ReadOptions = ReadOptions()) -> Iterator[Doc]:
    """Documents of one source spec (see the module docstring)."""
    base, i, n = split_shard(spec)
    if base.startswith("local:"):
        from corpus.textcode.seeds import iter_local

        docs: Iterable[Doc] = iter_local(base[len("local:"):], skips, opts, shard=(i, n))
        yield from docs
        return
    for path in expand_spec(base):
        per_file = file_kind(path) in {"html", "text"}
        if per_file and not in_shard(os.path.abspath(path), i, n):
            continue
        for doc in iter_file(path, skips, opts):
            if per_file or in_shard(doc.url, i, n):
                yield doc


def iter_specs(specs: Iterable[str], skips: SkipCounter, opts: ReadOptions = ReadOptions()) -> Iterator[Doc]:
    for spec in specs:
        yield from iter_spec(spec, skips, opts)


# --------------------------------------------------------------------------- batches


_KEY_BAD = re.compile(r"[^A-Za-z0-9._-]+")


def batch_key(path: str) -> str:
    """A readable partition key from a file name: suffix removed, unsafe characters replaced."""
    name = os.path.basename(path)
    low = name.lower()
    for suf in sorted(BATCH_SUFFIXES, key=len, reverse=True):
        if low.endswith(suf):
            name = name[: -len(suf)]
            break
    key = _KEY_BAD.sub("_", name).strip("._-") or "batch"
    return key[:100]


def discover_batches(specs: Iterable[str]) -> dict[str, str]:
    """Batch partition key -> input file, for every WARC/WET/JSONL/Parquet file the specs name.

    One input file is one batch (a Common Crawl WET file is ~150 MB / ~40k pages, a good
    unit of work); keys collide only for equal file names in different folders, which get a
    short path hash appended. Missing specs raise FileNotFoundError naming them.
    """
    out: dict[str, str] = {}
    for spec in specs:
        for path in expand_spec(spec, BATCH_SUFFIXES):
            path = os.path.abspath(path)
            key = batch_key(path)
            if key in out and out[key] != path:
                key = f"{key}-{xxhash.xxh32_hexdigest(path.encode())}"
            out[key] = path
    return dict(sorted(out.items()))

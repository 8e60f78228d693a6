"""Ingest readers on real files (warcio-written WARC / WET, JSONL, Parquet), including bad input."""

from __future__ import annotations

import gzip
import os

import pytest
from textcode_helpers import (
    CODE_PAGE,
    PROSE_PAGE,
    code_page,
    prose,
    truncate,
    write_jsonl,
    write_parquet,
    write_warc,
)

from corpus.textcode.extract import Rejected, html_to_text, payload_to_text
from corpus.textcode.ingest import (
    ReadOptions,
    batch_key,
    discover_batches,
    expand_spec,
    iter_file,
    iter_jsonl,
    iter_parquet,
    iter_spec,
    iter_warc,
    split_shard,
)
from corpus.textcode.skips import SkipCounter

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00" + bytes(range(256)) * 4


def test_warc_response_records_extract_main_text(tmp_path):
    path = write_warc(str(tmp_path / "a.warc.gz"), [
        {"url": "https://docs.example.org/dict", "body": CODE_PAGE.encode()},
        {"url": "https://blog.example.org/walk", "body": PROSE_PAGE.encode()},
    ])
    skips = SkipCounter()
    docs = list(iter_warc(path, skips))
    assert [d.url for d in docs] == ["https://docs.example.org/dict", "https://blog.example.org/walk"]
    assert "squares = {n: n * n for n in range(10)}" in docs[0].text  # <pre> keeps code lines
    assert "Home | Docs" not in docs[0].text  # navigation is boilerplate
    assert docs[1].text.startswith("A walk along the river")
    assert all(d.source == "warc" for d in docs)
    assert skips.total == 0


def test_plain_warc_and_wet_conversion_records(tmp_path):
    path = write_warc(str(tmp_path / "b.wet"), [
        {"url": "https://x.org/1", "body": b"First line of text.\r\nSecond line.", "type": "conversion"},
        {"url": "https://x.org/2", "body": "Zweite Seite mit Umlauten: äöü.".encode(), "type": "conversion"},
    ], gz=False)
    docs = list(iter_warc(path, SkipCounter()))
    assert [d.source for d in docs] == ["wet", "wet"]
    assert docs[0].text == "First line of text.\nSecond line."
    assert "äöü" in docs[1].text


def test_truncated_gzip_keeps_records_before_the_cut(tmp_path):
    pages = [{"url": f"https://x.org/{i}", "body": code_page(i).encode() * 3} for i in range(30)]
    path = truncate(write_warc(str(tmp_path / "t.warc.gz"), pages), 0.5)
    skips = SkipCounter()
    docs = list(iter_warc(path, skips))
    assert 5 < len(docs) < 30
    assert skips["truncated_gzip"] == 1
    assert path in skips.examples["truncated_gzip"][0]
    # The record the cut went through is counted, never emitted half.
    assert skips["truncated_record"] + len(docs) <= 30


def test_record_without_payload_and_binary_payloads_are_counted(tmp_path):
    path = write_warc(str(tmp_path / "bad.warc.gz"), [
        {"url": "https://x.org/empty", "body": b""},
        {"url": "https://x.org/resource-empty", "body": b"", "type": "resource"},
        {"url": "https://x.org/png-as-html", "body": PNG},
        {"url": "https://x.org/png", "body": PNG, "content_type": "image/png"},
        {"url": "https://x.org/markup-only", "body": b"<html><head><script>var a=1;</script></head><body></body></html>"},
        {"url": "https://x.org/404", "body": PROSE_PAGE.encode(), "status": "404 Not Found"},
        {"url": "https://x.org/good", "body": PROSE_PAGE.encode()},
    ])
    skips = SkipCounter()
    docs = list(iter_warc(path, skips))
    assert [d.url for d in docs] == ["https://x.org/good"]
    assert skips.as_dict() == {
        "binary_payload": 1,
        "empty_extraction": 1,
        "empty_payload": 2,
        "http_status_not_2xx": 1,
        "non_text_content_type": 1,
    }
    assert "png-as-html" in skips.examples["binary_payload"][0]


def test_invalid_html_never_raises():
    for broken in ("<<<>>><p", "<html><body><div><p>unclosed <b>tags <i>everywhere", "</html></body>"):
        try:
            text = payload_to_text(broken.encode(), "text/html")
        except Rejected as rej:
            assert rej.reason == "empty_extraction"
        else:
            assert isinstance(text, str)
    assert "unclosed tags everywhere" in html_to_text("<html><body><div><p>unclosed <b>tags <i>everywhere")


def test_not_a_warc_file_is_counted(tmp_path):
    p = tmp_path / "junk.warc"
    p.write_text('{"not": "warc"}\n' * 20)
    skips = SkipCounter()
    assert list(iter_warc(str(p), skips)) == []
    assert skips["not_a_warc_stream"] == 1 and skips["no_warc_records"] == 1


def test_oversized_payload_is_skipped(tmp_path):
    path = write_warc(str(tmp_path / "big.warc.gz"), [
        {"url": "https://x.org/big", "body": PROSE_PAGE.encode() * 50},
        {"url": "https://x.org/ok", "body": PROSE_PAGE.encode()},
    ])
    skips = SkipCounter()
    docs = list(iter_warc(path, skips, ReadOptions(max_doc_bytes=5000)))
    assert [d.url for d in docs] == ["https://x.org/ok"]
    assert skips["payload_too_large"] == 1


def test_jsonl_bad_lines_are_counted_with_line_numbers(tmp_path):
    path = write_jsonl(str(tmp_path / "d.jsonl.gz"), [
        {"url": "https://a.org/1", "text": "hello world " * 30},
        b"{not json",
        {"url": "https://a.org/2", "body": "no text field"},
        "caf\xe9 latin-1".encode("latin-1"),
        {"text": "no url here, " * 20},
        {"url": "https://a.org/3", "text": "   "},
    ], gz=True)
    skips = SkipCounter()
    docs = list(iter_jsonl(path, skips))
    assert [d.url for d in docs][0] == "https://a.org/1"
    assert docs[1].url.endswith("#L5")
    assert skips.as_dict() == {"bad_json_line": 1, "empty_text": 1, "missing_text_field": 1, "non_utf8_line": 1}
    assert skips.examples["bad_json_line"] == [f"{path}:2"]


def test_truncated_jsonl_gzip(tmp_path):
    path = write_jsonl(str(tmp_path / "t.jsonl.gz"), [{"text": f"doc {i} " * 200} for i in range(300)], gz=True)
    truncate(path, 0.5)
    skips = SkipCounter()
    docs = list(iter_jsonl(path, skips))
    assert 0 < len(docs) < 300
    assert skips["truncated_gzip"] == 1


def test_parquet_reader_and_malformed_parquet(tmp_path):
    good = write_parquet(str(tmp_path / "g.parquet"), [
        {"url": "https://p.org/1", "text": "parquet text " * 30}, {"url": None, "text": None},
    ])
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 this is not really parquet" * 10)
    skips = SkipCounter()
    docs = list(iter_parquet(good, skips)) + list(iter_parquet(str(bad), skips))
    assert [d.url for d in docs] == ["https://p.org/1"]
    assert skips["corrupt_parquet"] == 1 and skips["empty_text"] == 1
    other = write_parquet(str(tmp_path / "o.parquet"), [{"body": "x"}])
    list(iter_parquet(other, skips))
    assert skips["missing_text_field"] == 1
    assert [d.text[:7] for d in iter_parquet(good, SkipCounter(), ReadOptions(text_field="text"))] == ["parquet"]


def test_unsupported_and_unreadable_files(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(PNG)
    skips = SkipCounter()
    assert list(iter_file(str(p), skips)) == []
    assert skips["unsupported_file_type"] == 1
    html = tmp_path / "binary.html"
    html.write_bytes(PNG)
    assert list(iter_file(str(html), skips)) == []
    assert skips["binary_payload"] == 1


def test_batch_discovery_keys(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_warc(str(tmp_path / "a" / "CC-MAIN-2024-10-00001.warc.wet.gz"), [{"url": "u", "body": b"x", "type": "conversion"}])
    write_warc(str(tmp_path / "b" / "CC-MAIN-2024-10-00001.warc.wet.gz"), [{"url": "u", "body": b"x", "type": "conversion"}])
    write_jsonl(str(tmp_path / "a" / "dump part#1.jsonl"), [{"text": "t"}])
    (tmp_path / "a" / "notes.txt").write_text("not a batch")
    batches = discover_batches([str(tmp_path)])
    assert len(batches) == 3
    assert "CC-MAIN-2024-10-00001.warc" in batches
    assert "dump_part_1" in batches
    assert all("/" not in k for k in batches)
    assert batch_key("/x/y/file.warc.gz") == "file"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        discover_batches([str(tmp_path / "missing")])


def test_shard_suffix_splits_sources_disjointly(tmp_path):
    for i in range(12):
        (tmp_path / f"p{i}.html").write_text(prose(i))
    a = {d.url for d in iter_spec(f"{tmp_path}@0/2", SkipCounter())}
    b = {d.url for d in iter_spec(f"{tmp_path}@1/2", SkipCounter())}
    assert a and b and not (a & b) and len(a | b) == 12
    assert split_shard("local:python-docs@1/3") == ("local:python-docs", 1, 3)
    with pytest.raises(ValueError):
        split_shard("x@3/3")
    assert len(expand_spec(str(tmp_path / "*.html"))) == 12


def test_local_text_files_gzip(tmp_path):
    p = tmp_path / "changelog.Debian.gz"
    p.write_bytes(gzip.compress(b"pkg (1.0-1) unstable; urgency=medium\n\n  * Initial release.\n"))
    docs = list(iter_file(str(p), SkipCounter()))
    assert docs and "Initial release" in docs[0].text
    assert docs[0].url == f"file://{os.path.abspath(p)}"


def test_raw_http_content_and_transfer_encodings(tmp_path):
    import zlib

    page = PROSE_PAGE.encode()
    gz = gzip.compress(page)
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (page[:100], page[100:])) + b"0\r\n\r\n"
    deflated = zlib.compress(page)
    path = write_warc(str(tmp_path / "enc.warc.gz"), [
        {"url": "https://e.org/gzip", "body": gz, "http_headers": [("Content-Encoding", "gzip")]},
        {"url": "https://e.org/chunked", "body": chunked, "http_headers": [("Transfer-Encoding", "chunked")]},
        {"url": "https://e.org/deflate", "body": deflated, "http_headers": [("Content-Encoding", "deflate")]},
        {"url": "https://e.org/bad", "body": b"not gzip at all", "http_headers": [("Content-Encoding", "gzip")]},
        {"url": "https://e.org/odd", "body": page, "http_headers": [("Content-Encoding", "compress")]},
    ])
    skips = SkipCounter()
    docs = list(iter_warc(path, skips))
    assert [d.url.rsplit("/", 1)[1] for d in docs] == ["gzip", "chunked", "deflate"]
    assert len({d.text for d in docs}) == 1 and docs[0].text.startswith("A walk along the river")
    assert skips.as_dict() == {"bad_content_encoding": 1, "unsupported_content_encoding": 1}

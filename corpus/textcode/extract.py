"""Bytes -> main text: encoding detection, binary rejection and HTML main-content extraction.

HTML goes through resiliparse (Lexbor parser + main-content heuristics, the extractor
behind the FineWeb/ChatNoir pipelines): it is an order of magnitude faster than
trafilatura at comparable quality and never raises on broken markup, so "invalid HTML"
surfaces as an empty extraction, which is counted like any other skip.
"""

from __future__ import annotations

import re

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import bytes_to_str, detect_encoding
from resiliparse.parse.html import HTMLTree

TEXT_CONTENT_TYPES = ("text/", "application/xhtml", "application/xml", "application/json", "message/")
HTML_CONTENT_TYPES = ("text/html", "application/xhtml")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_BLANKS = re.compile(r"\n{3,}")
_SNIFF = 8192


class Rejected(Exception):
    """The payload is not usable text; ``reason`` is the counted skip reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def looks_binary(data: bytes) -> bool:
    """NUL bytes or many control bytes in the first 8 KiB: images, archives, executables."""
    head = data[:_SNIFF]
    if not head:
        return False
    if b"\x00" in head:
        return True
    ctrl = sum(1 for b in head if b < 9 or 13 < b < 32 or b == 127)
    return ctrl / len(head) > 0.05


def decode(data: bytes, declared: str | None = None) -> str:
    """Decode ``data`` (declared charset first, then detection); raise Rejected if binary."""
    if looks_binary(data):
        raise Rejected("binary_payload")
    enc = declared or detect_encoding(data[: 1 << 16])
    try:
        text = data.decode(enc)
    except (LookupError, UnicodeDecodeError):
        text = bytes_to_str(data, detect_encoding(data[: 1 << 16]), fallback_encodings=("utf-8", "cp1252"))
    if text and len(_CONTROL.findall(text[:_SNIFF])) / max(1, len(text[:_SNIFF])) > 0.05:
        raise Rejected("binary_payload")
    return text


def charset_of(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = re.search(r"charset=([\w.:-]+)", content_type, re.I)
    return m.group(1).strip("\"'").lower() if m else None


def is_textual(content_type: str | None) -> bool:
    """Unknown content types are sniffed later; known non-text types are rejected up front."""
    if not content_type:
        return True
    ct = content_type.split(";")[0].strip().lower()
    return ct.startswith(TEXT_CONTENT_TYPES) or ct == ""


def is_html(content_type: str | None, data: bytes) -> bool:
    if content_type:
        ct = content_type.split(";")[0].strip().lower()
        if ct.startswith(HTML_CONTENT_TYPES):
            return True
        if ct.startswith("text/plain"):
            return False
    head = data[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml")) or b"<body" in head or b"<head" in head


def html_to_text(data: bytes | str, declared_charset: str | None = None) -> str:
    """Main text of an HTML page (code blocks keep their line structure); '' if none."""
    if isinstance(data, bytes):
        if looks_binary(data):
            raise Rejected("binary_payload")
        tree = HTMLTree.parse_from_bytes(data, declared_charset or detect_encoding(data[: 1 << 16]))
    else:
        tree = HTMLTree.parse(data)
    text = extract_plain_text(
        tree,
        main_content=True,
        preserve_formatting=True,
        list_bullets=True,
        alt_texts=False,
        links=False,
        form_fields=False,
        noscript=False,
        comments=False,
    )
    return clean_text(text)


def clean_text(text: str) -> str:
    """Normalize line endings, strip trailing spaces and collapse runs of blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANKS.sub("\n\n", text).strip()


def payload_to_text(data: bytes, content_type: str | None) -> str:
    """Any web payload -> text, or Rejected(reason): non_text_content_type, binary_payload,
    empty_payload, empty_extraction."""
    if not data or not data.strip():
        raise Rejected("empty_payload")
    if not is_textual(content_type):
        raise Rejected("non_text_content_type")
    if is_html(content_type, data):
        text = html_to_text(data, charset_of(content_type))
    else:
        text = clean_text(decode(data, charset_of(content_type)))
    if not text:
        raise Rejected("empty_extraction")
    return text

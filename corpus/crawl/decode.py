"""Bytes -> text for source files: BOMs, UTF-16 without BOM, UTF-8, then charset detection.

Returns either the text with the encoding used or a skip reason, so callers can record
why a file was left out (``binary``, ``undecodable``) instead of guessing silently.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from charset_normalizer import from_bytes

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Control characters other than \t \n \v \f \r and ESC: their share tells binary from text.
_CTRL = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f]")
_CTRL_C1 = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x80-\x9f]")
_NOT_CONTROL_BYTES = bytes(b for b in range(256) if not (b <= 8 or 14 <= b <= 26 or 28 <= b <= 31))
MAX_CONTROL_RATIO = 0.01
# Single-byte encodings tried for non-UTF-8 files whose detection is unsure (short files).
_LEGACY_FALLBACK = ("cp1252", "latin-1")
_MULTIBYTE_PREFIXES = ("cp932", "shift_jis", "euc", "gb", "big5", "cp949", "cp950", "iso2022", "hz", "johab")
_NON_LATIN_SINGLE_BYTE = frozenset({
    "cp1251", "koi8_r", "koi8_u", "mac_cyrillic", "iso8859_5", "cp866", "cp1253", "iso8859_7",
    "cp1255", "iso8859_8", "cp1256", "iso8859_6", "cp874", "tis_620", "cp1254", "iso8859_9",
})


@dataclass(frozen=True)
class Decoded:
    text: str | None
    encoding: str | None
    reason: str | None  # skip reason when text is None

    @property
    def ok(self) -> bool:
        return self.text is not None


def _utf16_without_bom(data: bytes) -> str | None:
    """ASCII-heavy UTF-16 text has a NUL in every other byte; detect and pick the endianness."""
    if len(data) < 4 or len(data) % 2:
        return None
    even_nul = data[0::2].count(0) / (len(data) / 2)
    odd_nul = data[1::2].count(0) / (len(data) / 2)
    if odd_nul > 0.6 and even_nul < 0.05:
        return "utf-16-le"
    if even_nul > 0.6 and odd_nul < 0.05:
        return "utf-16-be"
    return None


def _looks_binary(text: str, c1: bool = False) -> bool:
    """NULs, or more than 1% control characters (C1 controls too for single-byte decodes)."""
    if "\x00" in text:
        return True
    sample = text[:65536]
    if not sample:
        return False
    bad = len((_CTRL_C1 if c1 else _CTRL).findall(sample))  # regex: C speed, matches are rare
    return bad / len(sample) > MAX_CONTROL_RATIO


def _bytes_look_binary(data: bytes) -> bool:
    """_looks_binary for valid UTF-8 (controls are single bytes): ``bytes.translate`` deletes
    every other byte value in C, ~20x faster than a regex over the decoded text."""
    sample = data[:65536]
    return bool(sample) and len(sample.translate(None, _NOT_CONTROL_BYTES)) / len(sample) > MAX_CONTROL_RATIO


def _detect_legacy(data: bytes) -> str | None:
    """charset-normalizer's guess, trusted only where it is reliable on code.

    Multi-byte East-Asian encodings and confident non-Latin single-byte ones (Cyrillic,
    Greek, ...) are kept; for Latin-script text the detector often picks a wrong sibling
    (cp1250, mac_roman) on short files, so those fall through to cp1252/latin-1.
    """
    best = from_bytes(data[: 1 << 20]).best()
    if best is None or not best.encoding:
        return None
    enc = best.encoding
    if enc.startswith(_MULTIBYTE_PREFIXES):
        return enc
    if enc in _NON_LATIN_SINGLE_BYTE and best.coherence >= 0.2:
        return enc
    return None


def decode_source(data: bytes) -> Decoded:
    """Decode a source file; NUL bytes or many control characters mean binary."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom):].decode(enc)
            except UnicodeDecodeError:
                return Decoded(None, None, "undecodable")
            return Decoded(None, None, "binary") if _looks_binary(text) else Decoded(text, enc, None)
    if b"\x00" in data:
        enc16 = _utf16_without_bom(data)
        if enc16:
            try:
                text = data.decode(enc16)
            except UnicodeDecodeError:
                return Decoded(None, None, "undecodable")
            if not _looks_binary(text):
                return Decoded(text, enc16, None)
        return Decoded(None, None, "binary")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return Decoded(None, None, "binary") if _bytes_look_binary(data) else Decoded(text, "utf-8", None)
    enc = _detect_legacy(data)
    if enc is not None:
        try:
            text = data.decode(enc)
        except (UnicodeDecodeError, LookupError):
            text = None
        if text is not None and not _looks_binary(text, c1=True):
            return Decoded(text, enc, None)
    # Detection unsure (typical for short files): Windows-1252 / Latin-1 are the usual
    # legacy encodings of source code; accept them only if the result looks like text.
    for enc in _LEGACY_FALLBACK:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if not _looks_binary(text, c1=True):
            return Decoded(text, enc, None)
    return Decoded(None, None, "undecodable")


def is_minified(text: str, path: str) -> bool:
    """Minified JS/CSS: very long average lines (linguist's ``minified_files?`` rule)."""
    if not path.endswith((".js", ".mjs", ".cjs", ".css")) or len(text) < 1000:
        return False
    lines = text.count("\n") + 1
    return len(text) / lines > 110 or max(len(x) for x in text.splitlines() or [""]) > 5000

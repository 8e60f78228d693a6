"""URL normalization and exact (normalized-text) deduplication for web text.

Near-duplicate removal of web text is left to the MinHash stage of the code path's
library when wanted; here the cheap exact passes run on every batch: the same URL
fetched twice, and the same page text served under different URLs (mirrors, http/https,
tracking parameters).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import xxhash

_TRACKING = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid|ref|ref_src|_ga)$", re.I)
_WS = re.compile(r"\s+")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_url(url: str) -> str:
    """Canonical form: lowercase scheme/host, no default port, no fragment, no tracking
    query parameters, sorted query, ``http`` and ``https`` merged, trailing slash dropped."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        scheme = "http"
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, _DEFAULT_PORTS.get(parts.scheme.lower())) else f"{host}:{port}"
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)))
    path = parts.path if parts.path not in ("", "/") else ""
    path = path.rstrip("/") if path.endswith("/") and len(path) > 1 else path
    # file:// URLs of local sources address documents inside a file by fragment (#L12, #func).
    fragment = parts.fragment if scheme == "file" else ""
    return urlunsplit((scheme, netloc, path, query, fragment))


def url_group(url: str, depth: int = 1) -> str:
    """The "site section" a page belongs to, for domain-level recall statistics: host plus
    the first ``depth`` path segments (``file://`` URLs: the first 4, i.e. the Debian
    package folder ``/usr/share/doc/<pkg>``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    segs = [s for s in parts.path.split("/") if s]
    if parts.scheme == "file":
        return "file:///" + "/".join(segs[: max(depth, 4)])
    host = (parts.hostname or "").lower().removeprefix("www.")
    return host + ("/" + "/".join(segs[:depth]) if depth and len(segs) > depth else "")


def text_fingerprint(text: str) -> str:
    """128-bit hash of the case- and whitespace-normalized text (exact-duplicate key)."""
    norm = _WS.sub(" ", text).strip().lower()
    return xxhash.xxh3_128_hexdigest(norm.encode("utf-8", "surrogatepass"))


def _url_key(url: str) -> int:
    return xxhash.xxh3_64_intdigest(normalize_url(url).encode("utf-8", "surrogatepass"))


class ExactDedup:
    """Remembers normalized URLs and text fingerprints seen so far as integers (64-bit URL
    hash, 128-bit text hash), so millions of documents fit in a few hundred MB."""

    def __init__(self) -> None:
        self.urls: set[int] = set()
        self.texts: set[int] = set()

    def seed(self, urls: list[str | None], fingerprints: list[str | None]) -> None:
        """Pre-load keys of documents kept elsewhere (e.g. earlier batches)."""
        self.urls.update(_url_key(u) for u in urls if u)
        self.texts.update(int(f, 16) for f in fingerprints if f)

    def check(self, url: str, fingerprint: str) -> str | None:
        """None if new (and remember it), else the skip reason."""
        ukey = _url_key(url) if url else None
        if ukey is not None and ukey in self.urls:
            return "duplicate_url"
        fkey = int(fingerprint, 16)
        if fkey in self.texts:
            return "duplicate_text"
        if ukey is not None:
            self.urls.add(ukey)
        self.texts.add(fkey)
        return None

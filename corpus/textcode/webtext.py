"""Web-text ingest: documents -> length, language and exact-dedup filters -> text rows.

Used by ``web_text`` (one input batch per partition) and by ``math_text`` /
``general_text`` (configured sources). Rows follow TEXT_SCHEMA plus ``lang``,
``lang_score`` and ``text_hash`` (the exact-dedup key, so later batches can dedup against
earlier ones by reading one narrow column).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from corpus.schemas import TEXT_SCHEMA, extend_schema, text_row_id
from corpus.textcode.dedup import ExactDedup, text_fingerprint
from corpus.textcode.ingest import Doc
from corpus.textcode.langid import LanguageIdentifier, make_language_identifier
from corpus.textcode.skips import SkipCounter

WEB_TEXT_SCHEMA = extend_schema(
    TEXT_SCHEMA,
    pa.field("lang", pa.string()),
    pa.field("lang_score", pa.float32()),
    pa.field("text_hash", pa.string()),
)
WRITE_BATCH_ROWS = 1000


@dataclass(frozen=True)
class IngestConfig:
    """Filters applied to every ingested document (all recorded in the config hash)."""

    min_chars: int = 200
    max_chars: int = 500_000
    languages: tuple[str, ...] = ("en",)
    min_lang_score: float = 0.15
    lid_model_path: str | None = None
    max_docs: int | None = None


@dataclass
class IngestStats:
    docs_seen: int = 0
    kept: int = 0
    chars: int = 0
    languages: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)


def filter_docs(
    docs: Iterable[Doc],
    cfg: IngestConfig,
    skips: SkipCounter,
    dedup: ExactDedup | None = None,
    lid: LanguageIdentifier | None = None,
    stats: IngestStats | None = None,
) -> Iterator[dict]:
    """Yield text rows (dicts in WEB_TEXT_SCHEMA order) for the documents that pass."""
    lid = lid or make_language_identifier(cfg.lid_model_path)
    dedup = dedup if dedup is not None else ExactDedup()
    stats = stats if stats is not None else IngestStats()
    wanted = set(cfg.languages)
    for doc in docs:
        if cfg.max_docs is not None and stats.kept >= cfg.max_docs:
            break
        stats.docs_seen += 1
        text = doc.text
        if len(text) < cfg.min_chars:
            skips.add("too_short", doc.url)
            continue
        if len(text) > cfg.max_chars:
            skips.add("too_long", doc.url)
            continue
        lang, score = lid.predict(text)
        stats.languages[lang] += 1
        if wanted and (lang not in wanted or score < cfg.min_lang_score):
            skips.add("language" if lang not in wanted else "low_language_score", doc.url)
            continue
        fp = text_fingerprint(text)
        reason = dedup.check(doc.url, fp)
        if reason:
            skips.add(reason, doc.url)
            continue
        stats.kept += 1
        stats.chars += len(text)
        stats.sources[doc.source] += 1
        yield {
            "id": text_row_id(doc.url, text),
            "url": doc.url,
            "text": text,
            "source": doc.source,
            "lang": lang,
            "lang_score": float(score),
            "text_hash": fp,
        }


def write_rows(rows: Iterable[dict], writer, batch_rows: int = WRITE_BATCH_ROWS) -> int:
    """Stream row dicts into a ShardSetWriter in bounded batches; returns the row count."""
    buf: list[dict] = []
    n = 0
    for row in rows:
        buf.append(row)
        if len(buf) >= batch_rows:
            writer.write_rows(buf)
            n += len(buf)
            buf = []
    if buf:
        writer.write_rows(buf)
        n += len(buf)
    return n

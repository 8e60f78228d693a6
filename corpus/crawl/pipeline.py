"""Crawl into shard sets: the one entry point the asset and the CLI share.

``write_crawl`` resolves the sources, fingerprints them, returns early when every target
set is already up to date, and otherwise streams rows into one ``code_files``-style set per
language plus a ``*_repos`` outcome table per language, committed atomically.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from corpus import shards
from corpus.crawl.config import CrawlConfig
from corpus.crawl.crawler import REPOS_SCHEMA, Crawler, CrawlStats, RepoOutcome, fingerprint
from corpus.crawl.github import GitHubClient
from corpus.crawl.languages import LanguageTable, default_table
from corpus.crawl.sources import RepoRef, resolve
from corpus.schemas import CODE_SCHEMA

FLUSH_ROWS = 256
FLUSH_BYTES = 16 * 1024 * 1024  # bounded memory even when every file is near max_file_bytes


@dataclass
class CrawlResult:
    stats: CrawlStats
    outcomes: list[RepoOutcome]
    manifests: dict[str, shards.Manifest] = field(default_factory=dict)  # language -> files set
    repo_manifests: dict[str, shards.Manifest] = field(default_factory=dict)
    reused: bool = False
    input_hash: str = ""

    def status_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.outcomes:
            out[o.status] = out.get(o.status, 0) + 1
        return out


def _config(cfg: CrawlConfig, lang: str, table: LanguageTable) -> dict[str, str]:
    """What decides a language's output: crawl settings, the language table, the language."""
    return {"crawl": cfg.content_hash(), "language": lang, "table": table.digest}


class SourcesFailedError(RuntimeError):
    """Every repository that was asked for failed: nothing is committed, the previous sets stay."""


def _refuse_if_sources_failed(outcomes) -> None:
    """A crawl whose sources all failed must not replace a good set with an empty one."""
    failed = [o for o in outcomes if o.status == "failed"]
    if failed and not any(o.status == "fetched" for o in outcomes):
        listed = "; ".join(f"{o.repo.name}: {o.reason}" for o in failed[:5])
        more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
        raise SourcesFailedError(
            f"no repository could be fetched ({len(failed)} failed: {listed}{more}); the previous "
            "code_files sets are kept. Fix the sources (network, URLs, token) and re-run"
        )


def write_crawl(
    cfg: CrawlConfig,
    *,
    languages: list[str] | None,
    files_path: Callable[[str], str],
    repos_path: Callable[[str], str],
    cache_dir: str,
    force: bool = False,
    github_client: Callable[[], GitHubClient] | None = None,
    table: LanguageTable | None = None,
    repos: list[RepoRef] | None = None,
) -> CrawlResult:
    """Crawl ``cfg.sources`` for ``languages`` (None = every language found) into shard sets."""
    table = table or default_table()
    if languages:
        unknown = [x for x in languages if x not in table.languages]
        if unknown:
            raise ValueError(f"unknown language id(s) {unknown}; see corpus/crawl/languages.yaml for the ids")
    repos = repos if repos is not None else resolve(cfg, cache_dir, github_client)
    fp = fingerprint(repos, table)
    if languages and not force:
        found = {lang: shards.up_to_date(files_path(lang), shards.stable_hash(_config(cfg, lang, table)), [fp])
                 for lang in languages}
        repo_sets = {lang: shards.read_manifest(repos_path(lang)) for lang in languages}
        if all(found.values()) and all(repo_sets.values()):
            return CrawlResult(CrawlStats(), [], {k: v for k, v in found.items() if v},
                               {k: v for k, v in repo_sets.items() if v}, reused=True, input_hash=fp)
    crawler = Crawler(cfg, table)
    result = CrawlResult(crawler.stats, crawler.outcomes, input_hash=fp)
    writers: dict[str, shards.ShardSetWriter] = {}
    try:
        buffers: dict[str, list[dict]] = {}
        buffered: dict[str, int] = {}  # content bytes waiting per language
        # Local source folders are inputs: an output inside one (or holding one) is refused.
        local_inputs = [sp.location for sp in cfg.sources
                        if sp.location and sp.kind in ("local", "git") and "://" not in sp.location]

        def writer(lang: str) -> shards.ShardSetWriter:
            if lang not in writers:
                writers[lang] = shards.ShardSetWriter(
                    files_path(lang), CODE_SCHEMA, config=_config(cfg, lang, table), input_hashes=[fp],
                    extra={"stage": "crawl", "language": lang}, inputs=local_inputs,
                ).open()
                buffers[lang] = []
            return writers[lang]

        for lang in languages or []:
            writer(lang)
        for row in crawler.run(repos, languages):
            lang = row["language"]
            writer(lang)
            buf = buffers[lang]
            buf.append(row)
            buffered[lang] = buffered.get(lang, 0) + row["size_bytes"]
            if len(buf) >= FLUSH_ROWS or buffered[lang] >= FLUSH_BYTES:
                writers[lang].write_rows(buf)
                buf.clear()
                buffered[lang] = 0
        for lang, buf in buffers.items():
            writers[lang].write_rows(buf)
            buf.clear()
        _refuse_if_sources_failed(crawler.outcomes)
        empty = not any(o.status == "fetched" for o in crawler.outcomes)
        # Each language's files and its repository outcomes are one unit.
        for lang in sorted(writers):
            files_w = writers[lang]
            files_w.extra["empty_input"] = empty
            rows = [r for o in crawler.outcomes for r in o.rows([lang])]
            repos_w = shards.ShardSetWriter(repos_path(lang), REPOS_SCHEMA, config=_config(cfg, lang, table),
                                            input_hashes=[fp], inputs=local_inputs,
                                            extra={"stage": "crawl_repos", "language": lang, "empty_input": empty})
            with shards.commit_together(files_w, repos_w):
                repos_w.write_rows(rows)
            result.manifests[lang] = shards.read_manifest(files_path(lang))  # type: ignore[assignment]
            result.repo_manifests[lang] = shards.read_manifest(repos_path(lang))  # type: ignore[assignment]
    except BaseException:
        for w in writers.values():
            w.abort()  # no-op for the languages already committed
        raise
    return result

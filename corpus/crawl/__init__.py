"""Crawl stage: code files from GitHub, git URLs, local directories and the machine's own
sources (Python stdlib, site-packages, JDK src.zip) into language-partitioned code rows.

Entry points: :class:`CrawlConfig` / :func:`parse_source` (configuration),
:func:`write_crawl` (sources -> shard sets), :class:`Crawler` (rows, for custom sinks),
:func:`mine_commits` (commit messages + diffs).
"""

from corpus.crawl.commits import COMMIT_SCHEMA, CommitStats, mine_commits
from corpus.crawl.config import CrawlConfig, SourceSpec, default_sources, parse_source
from corpus.crawl.crawler import REPOS_SCHEMA, Crawler, CrawlStats, RepoOutcome
from corpus.crawl.languages import LanguageTable, default_table
from corpus.crawl.pipeline import CrawlResult, SourcesFailedError, write_crawl
from corpus.crawl.sources import RepoRef, resolve

__all__ = [
    "COMMIT_SCHEMA", "REPOS_SCHEMA", "CommitStats", "CrawlConfig", "CrawlResult", "CrawlStats", "Crawler",
    "LanguageTable", "RepoOutcome", "RepoRef", "SourceSpec", "default_sources", "default_table", "mine_commits",
    "SourcesFailedError", "parse_source", "resolve", "write_crawl",
]

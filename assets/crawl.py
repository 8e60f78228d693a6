"""Crawl assets: ``code_files`` (per language), its ``code_files_repos`` outcome table, and
``code_commits`` (commit messages + diffs). The work is in corpus.crawl; this module maps
Dagster config and resources onto it and reports what happened."""


import os
import subprocess
import warnings
from collections import Counter
from datetime import timedelta

import dagster as dg
import pyarrow.compute as pc
from pydantic import Field

from assets.common import counts_table, manifest_metadata, md_table
from assets.partitions import language_partitions
from assets.resources import CorpusResource
from corpus import shards
from corpus.crawl import (
    CrawlConfig,
    CrawlResult,
    SourcesFailedError,
    default_sources,
    parse_source,
    write_crawl,
)
from corpus.crawl.commits import COMMIT_SCHEMA, CommitStats, mine_commits
from corpus.crawl.gitfetch import (
    GitError,
    deepen,
    head_info,
    normalize_url,
    repo_name_from_url,
    run_git,
    shallow_clone,
)
from corpus.crawl.licenses import DEFAULT_ALLOWED, is_allowed
from corpus.crawl.sources import license_from_dir
from corpus.schemas import CODE_SCHEMA

# Caps per profile: (files per language, files per repo). None in the Config = these.
PROFILE_CAPS = {"default": (3000, 300), "tiny": (150, 40)}
COMMIT_CAPS = {"default": 50, "tiny": 10}
MAX_OUTCOME_ROWS = 40


class CrawlAssetConfig(dg.Config):
    sources: list[str] = Field(
        default=[],
        description="source strings (stdlib, site-packages, jdk-src, local:PATH, git:URL, github:OWNER/NAME, "
        "github:language=python,min_stars=100,...); empty = the embedded default (stdlib, site-packages, jdk-src)",
    )
    max_file_bytes: int = Field(default=1_000_000, description="files larger than this are skipped unread")
    license_allow: list[str] = Field(default=list(DEFAULT_ALLOWED), description="SPDX ids kept")
    allow_unknown_license: bool = Field(default=False, description="keep repos whose license cannot be detected")
    max_files_per_language: int | None = Field(default=None, description="None = profile cap (default 3000, tiny 150)")
    max_files_per_repo: int | None = Field(default=None, description="None = profile cap (default 300, tiny 40)")
    seed: int = Field(default=0, description="order in which repos are visited (caps keep a seeded sample)")
    include_notebooks: bool = True
    github_api_url: str = "https://api.github.com"
    github_token_env: str = Field(default="GITHUB_TOKEN", description="env var holding the GitHub token")
    github_max_wait_s: float = Field(default=900.0, description="longest rate-limit wait before failing a source")
    git_timeout_s: float = 600.0
    cache_max_age_s: float = Field(default=6 * 3600.0, description="reuse clones and GitHub listings this young")
    force: bool = Field(default=False, description="re-crawl even if the shard set is up to date")


def crawl_config(config: CrawlAssetConfig, corpus: CorpusResource) -> CrawlConfig:
    """The library config for this asset config + profile (bad source strings fail clearly)."""
    try:
        sources = [parse_source(s) for s in config.sources] or default_sources()
    except ValueError as exc:
        raise dg.Failure(description=f"code_files config 'sources': {exc}") from exc
    lang_cap, repo_cap = PROFILE_CAPS["tiny" if corpus.tiny else "default"]
    return CrawlConfig(
        sources=sources,
        max_file_bytes=config.max_file_bytes,
        license_allow=config.license_allow,
        allow_unknown_license=config.allow_unknown_license,
        max_files_per_language=config.max_files_per_language or lang_cap,
        max_files_per_repo=config.max_files_per_repo or repo_cap,
        seed=config.seed,
        include_notebooks=config.include_notebooks,
        github_api_url=config.github_api_url,
        github_token_env=config.github_token_env,
        github_max_wait_s=config.github_max_wait_s,
        git_timeout_s=config.git_timeout_s,
        clone_max_age_s=config.cache_max_age_s,
    )


def git_cache_dir(corpus: CorpusResource) -> str:
    """Clones are local even when shard sets live on an object store."""
    if "://" in corpus.data_root:
        return os.path.join(os.path.expanduser("~"), ".cache", "codecorpus", "git")
    return os.path.join(corpus.data_root, "_cache", "git")


def _outcome_table(result: CrawlResult, lang: str) -> dg.MetadataValue:
    """Repositories that supplied files first (most files first), then failures, then skips: the
    table answers "where did this partition come from" before "what was left out"."""
    rank = {"fetched": 0, "failed": 1, "skipped": 2}
    outs = sorted(result.outcomes, key=lambda o: (o.files[lang] == 0, rank.get(o.status, 3), -o.files[lang],
                                                  o.repo.name))
    rows = [(o.repo.name, o.status, o.reason or "", o.files[lang], o.repo.license or "") for o in outs]
    if len(rows) > MAX_OUTCOME_ROWS:
        rows = rows[:MAX_OUTCOME_ROWS] + [(f"... {len(rows) - MAX_OUTCOME_ROWS} more in code_files_repos", "", "", None,
                                           "")]
    return md_table(["repo", "status", "reason", "files", "license"], rows)


def _contract_check(path: str, lang: str) -> dg.AssetCheckResult:
    ids: set[str] = set()
    dup = wrong_lang = 0
    for batch in shards.iter_batches(path, columns=["id", "language"]):
        wrong_lang += int(pc.sum(pc.not_equal(batch.column("language"), lang)).as_py() or 0)
        for i in batch.column("id").to_pylist():
            dup += i in ids
            ids.add(i)
    ok_schema = shards.read_schema(path).names[: len(CODE_SCHEMA.names)] == CODE_SCHEMA.names
    return dg.AssetCheckResult(
        check_name="rows_match_contract",
        passed=bool(dup == 0 and wrong_lang == 0 and ok_schema),
        metadata={"duplicate_ids": dup, "rows_of_other_language": wrong_lang, "schema_ok": ok_schema},
    )


@dg.asset(
    partitions_def=language_partitions,
    group_name="code",
    check_specs=[dg.AssetCheckSpec("rows_match_contract", asset="code_files",
                                   description="unique ids, only this partition's language, CODE_SCHEMA columns")],
    description="Source files crawled from the configured sources, one partition per language "
    "(code-row contract), with per-repo outcomes in the code_files_repos table.",
)
def code_files(context: dg.AssetExecutionContext, config: CrawlAssetConfig, corpus: CorpusResource):
    lang = context.partition_key
    cfg = crawl_config(config, corpus)
    path = corpus.path("code_files", lang)
    repos_path = corpus.path("code_files_repos", lang)
    shards.clean_stale_temps(path)
    try:
        result = write_crawl(
            cfg,
            languages=[lang],
            files_path=lambda x: corpus.path("code_files", x),
            repos_path=lambda x: corpus.path("code_files_repos", x),
            cache_dir=git_cache_dir(corpus),
            force=config.force,
        )
    except (ValueError, SourcesFailedError) as exc:  # bad partition key; every source failed
        raise dg.Failure(description=f"code_files[{lang}]: {exc}") from exc
    manifest = result.manifests[lang]
    meta = manifest_metadata(path, manifest, reused=result.reused)
    meta["repos_table"] = dg.MetadataValue.path(repos_path)
    meta["input_fingerprint"] = result.input_hash[:16]
    if not result.reused:
        st = result.stats
        context.log.info(f"code_files[{lang}]: {st.files[lang]} files, repos {result.status_counts()}, "
                         f"skips {dict(st.skips)}")
        meta |= {
            "files": st.files[lang],
            "content_bytes": st.bytes[lang],
            "repos": counts_table(result.status_counts(), key="status", value="repos"),
            "repo_outcomes": _outcome_table(result, lang),
            "skip_reasons": counts_table(dict(st.skips)),
            "skip_examples": md_table(["reason", "example"], sorted(st.examples.items())),
            "licenses": counts_table(dict(Counter(o.repo.license or "unknown" for o in result.outcomes
                                                  if o.files[lang])), key="license", value="repos"),
            "encodings": counts_table(dict(st.encodings), key="encoding", value="files"),
            "notebooks": st.notebooks,
            "files_of_other_languages": st.not_selected,
            "vendored_dirs_pruned": st.vendored_dirs,
            "repos_at_file_cap": st.repos_capped,
        }
    return dg.MaterializeResult(metadata=meta, check_results=[_contract_check(path, lang)])


# --------------------------------------------------------------------------- commits


class CommitsConfig(dg.Config):
    repos: list[str] = Field(
        default=[],
        description="git URLs or paths to mine; empty = every clone in the crawl cache, or this checkout's own "
        "repository when the cache holds none (embedded default)",
    )
    max_commits_per_repo: int | None = Field(default=None, description="None = profile cap (default 50, tiny 10)")
    max_diff_bytes: int = Field(default=64_000, description="commits with a larger diff are skipped")
    license_allow: list[str] = Field(default=list(DEFAULT_ALLOWED))
    allow_unknown_license: bool = False
    git_timeout_s: float = 600.0


def _project_checkout() -> str | None:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=here, capture_output=True, timeout=30,
                             check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    top = out.stdout.decode().strip()
    return top if out.returncode == 0 and top else None


def _commit_repos(config: CommitsConfig, corpus: CorpusResource, depth: int) -> list[tuple[str, str | None, str]]:
    """(name, checkout dir or None, error) for each repo to mine."""
    cache = git_cache_dir(corpus)
    out: list[tuple[str, str | None, str]] = []
    if config.repos:
        for raw in config.repos:
            try:
                spec = parse_source(raw)
            except ValueError as exc:
                raise dg.Failure(description=f"code_commits config 'repos': {exc}") from exc
            if spec.kind not in ("git", "local") or not spec.location:
                raise dg.Failure(description=f"code_commits config 'repos': {raw!r} is not a git URL or path")
            url = normalize_url(spec.location)
            try:
                co = shallow_clone(url, cache, depth=depth, timeout=config.git_timeout_s)
                out.append((repo_name_from_url(url), co.path, ""))
            except GitError as exc:
                out.append((repo_name_from_url(url), None, str(exc)))
        return out
    if os.path.isdir(cache):
        for name in sorted(os.listdir(cache)):
            full = os.path.join(cache, name)
            if ".tmp-" in name or ".old-" in name or not os.path.isdir(os.path.join(full, ".git")):
                continue
            origin = run_git(["config", "--get", "remote.origin.url"], cwd=full, timeout=30, check=False).strip()
            out.append((repo_name_from_url(origin) if origin else name, full, ""))
    if not out:
        top = _project_checkout()
        if top:
            out.append((f"local/{os.path.basename(top)}", top, ""))
    return out


@dg.asset(
    deps=["code_files"],
    group_name="code",
    description="Recent non-merge commits (message + size-bounded unified diff) mined from the crawled git "
    "repositories, as code rows with source='commit' plus commit columns.",
)
def code_commits(context: dg.AssetExecutionContext, config: CommitsConfig, corpus: CorpusResource):
    per_repo = config.max_commits_per_repo or COMMIT_CAPS["tiny" if corpus.tiny else "default"]
    repos = _commit_repos(config, corpus, depth=per_repo + 1)
    heads = []
    cache = git_cache_dir(corpus)
    for name, path, _err in repos:
        if path and os.path.realpath(path).startswith(os.path.realpath(cache) + os.sep):
            # Only our own cached clones are deepened; a user's checkout is never fetched into.
            deepen(path, per_repo + 1, timeout=config.git_timeout_s)
        heads.append(f"{name}:{head_info(path)[0] if path else None}")
    path = corpus.path("code_commits")
    cfg = config.model_dump() | {"max_commits_per_repo": per_repo}
    existing = shards.up_to_date(path, shards.stable_hash(cfg), heads)
    if existing is not None:
        return dg.MaterializeResult(metadata=manifest_metadata(path, existing, reused=True))
    stats = CommitStats()
    outcomes: list[tuple[str, str, str, int]] = []
    with shards.ShardSetWriter(path, COMMIT_SCHEMA, config=cfg, input_hashes=heads,
                               extra={"stage": "code_commits"}) as w:
        for name, repo_dir, err in repos:
            if repo_dir is None:
                outcomes.append((name, "failed", err, 0))
                continue
            lic = license_from_dir(repo_dir)
            if not ((lic is None and config.allow_unknown_license) or is_allowed(lic, config.license_allow)):
                outcomes.append((name, "skipped", f"license {lic or 'unknown'} not allowed", 0))
                continue
            before = stats.commits
            rows = list(mine_commits(repo_dir, name, max_commits=per_repo, max_diff_bytes=config.max_diff_bytes,
                                     license=lic, stats=stats, timeout=config.git_timeout_s))
            w.write_rows(rows)
            outcomes.append((name, "fetched", "", stats.commits - before))
    manifest = shards.read_manifest(path)
    assert manifest is not None
    meta = manifest_metadata(path, manifest)
    meta |= {
        "commits": stats.commits,
        "repos": md_table(["repo", "status", "reason", "commits"], outcomes),
        "skip_reasons": counts_table(dict(stats.skips)),
        "languages": counts_table(dict(stats.languages), key="language", value="commits"),
    }
    return dg.MaterializeResult(metadata=meta)


CRAWL_CRON = "0 3 * * 0"

crawl_job = dg.define_asset_job(
    "crawl_code_files",
    selection=dg.AssetSelection.assets(code_files),
    description="Re-crawl every language partition of code_files (a no-op where the sources are unchanged).",
)


@dg.schedule(cron_schedule=CRAWL_CRON, job=crawl_job, default_status=dg.DefaultScheduleStatus.STOPPED,
             description="Weekly re-crawl, one run per language; unchanged sources make it a no-op.")
def weekly_crawl(context: dg.ScheduleEvaluationContext):
    day = context.scheduled_execution_time.strftime("%Y-%m-%d") if context.scheduled_execution_time else "manual"
    return [dg.RunRequest(partition_key=lang, run_key=f"crawl-{lang}-{day}")
            for lang in language_partitions.get_partition_keys()]


# Matches the schedule: at the latest Sunday 03:00 tick, some partition of code_files was
# crawled in the week (+2 h) before it. WARN: a stale crawl is worth a look, not a failed run.
# (Checks, not the newer FreshnessPolicy: their results sit on the Checks tab with a severity.)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.SupersessionWarning)
    crawl_freshness = dg.build_last_update_freshness_checks(
        assets=[code_files], deadline_cron=CRAWL_CRON, lower_bound_delta=timedelta(days=7, hours=2),
        severity=dg.AssetCheckSeverity.WARN,
    )

defs = dg.Definitions(assets=[code_files, code_commits], jobs=[crawl_job], schedules=[weekly_crawl],
                      asset_checks=crawl_freshness)

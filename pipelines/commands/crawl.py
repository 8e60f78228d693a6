"""``codecorpus crawl``: crawl sources into language-partitioned code shard sets, no Dagster."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter

MAX_LISTED = 20
NAME = "crawl"
HELP = "crawl code from local dirs, git repos, GitHub or this machine's own sources into shard sets"
DESCRIPTION = """\
Crawl source code into shard sets laid out like the code_files asset:
  OUTPUT/code_files/<language>/        code rows (id, repo, path, language, content, license, ...)
  OUTPUT/code_files_repos/<language>/  one row per repository: fetched / skipped: reason / failed: error
Git clones are cached under OUTPUT/_cache/git/ and reused by later runs.

SOURCE forms:
  /some/dir  or  local:/some/dir      a directory, crawled as one repository
  git:URL, https://..., file://..., /path/to/bare.git   a git repository (shallow clone)
  github:OWNER/NAME                   one GitHub repository (stars, forks, license from the API)
  github:language=python,min_stars=100,pushed_after=2024-01-01,max_repos=20
                                      GitHub search (token from $GITHUB_TOKEN; rate-limit aware)
  stdlib | site-packages | jdk-src    this machine's Python stdlib / installed packages / JDK src.zip

Files are skipped (and counted, with a reason) when vendored, generated or minified, binary,
undecodable, larger than --max-file-bytes (decided from the file size, never read), or
symlinks (never followed). Repositories whose license is not in the allow-list are skipped.

Examples:
  codecorpus crawl ~/src/myproject --output data
  codecorpus crawl https://github.com/pallets/click.git stdlib --output data --language python
  GITHUB_TOKEN=... codecorpus crawl github:language=rust,min_stars=500,max_repos=50 --output data --language rust
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="what to crawl (forms above)")
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="data root to write shard sets under")
    p.add_argument("--language", "-l", action="append", metavar="L",
                   help="only this language id (repeatable; ids from corpus/crawl/languages.yaml). "
                   "Default: every language found")
    p.add_argument("--max-file-bytes", type=int, default=1_000_000, metavar="N",
                   help="skip files larger than N bytes without reading them (default 1000000)")
    p.add_argument("--max-files-per-language", type=int, metavar="N", help="stop a language after N files")
    p.add_argument("--max-files-per-repo", type=int, metavar="N", help="take at most N files from one repository")
    p.add_argument("--license-allow", nargs="+", metavar="SPDX",
                   help="allowed licenses (default: MIT, Apache-2.0, BSD-2/3-Clause, ISC, Unlicense, MPL-2.0, ...)")
    p.add_argument("--allow-unknown-license", action="store_true",
                   help="keep repositories whose license cannot be detected (rows get license=null)")
    p.add_argument("--no-notebooks", action="store_true", help="skip Jupyter notebooks")
    p.add_argument("--seed", type=int, default=0, help="order in which repositories are visited (default 0)")
    p.add_argument("--github-api-url", default="https://api.github.com", metavar="URL",
                   help="GitHub REST API base (GitHub Enterprise: https://HOST/api/v3)")
    p.add_argument("--github-token-env", default="GITHUB_TOKEN", metavar="VAR",
                   help="environment variable holding the GitHub token (default GITHUB_TOKEN)")
    p.add_argument("--github-max-wait", type=float, default=900.0, metavar="SECONDS",
                   help="longest wait for a rate-limit reset before the source is recorded as failed")
    p.add_argument("--cache-max-age", type=float, default=6 * 3600.0, metavar="SECONDS",
                   help="reuse cached clones and GitHub listings younger than this (default 21600)")
    p.add_argument("--force", action="store_true", help="re-crawl even when the output is up to date")
    p.add_argument("--quiet", "-q", action="store_true", help="print only errors")


def main(args: argparse.Namespace) -> int:
    from corpus import shards
    from corpus.crawl import CrawlConfig, SourcesFailedError, parse_source, write_crawl
    from corpus.crawl.licenses import DEFAULT_ALLOWED

    try:
        specs = [parse_source(s) for s in args.sources]
        cfg = CrawlConfig(
            sources=specs,
            languages=args.language,
            max_file_bytes=args.max_file_bytes,
            license_allow=args.license_allow or list(DEFAULT_ALLOWED),
            allow_unknown_license=args.allow_unknown_license,
            max_files_per_language=args.max_files_per_language,
            max_files_per_repo=args.max_files_per_repo,
            seed=args.seed,
            include_notebooks=not args.no_notebooks,
            github_api_url=args.github_api_url,
            github_token_env=args.github_token_env,
            github_max_wait_s=args.github_max_wait,
            clone_max_age_s=args.cache_max_age,
        )
    except ValueError as exc:
        print(f"codecorpus crawl: {exc}", file=sys.stderr)
        return 2
    out = os.path.abspath(args.output)
    t0 = time.time()
    try:
        result = write_crawl(
            cfg,
            languages=cfg.languages,
            files_path=lambda lang: shards.shard_set_path(out, "code_files", lang),
            repos_path=lambda lang: shards.shard_set_path(out, "code_files_repos", lang),
            cache_dir=os.path.join(out, "_cache", "git"),
            force=args.force,
        )
    except (ValueError, shards.ShardSetError) as exc:
        print(f"codecorpus crawl: {exc}", file=sys.stderr)
        return 2
    except SourcesFailedError as exc:
        print(f"codecorpus crawl: {exc}", file=sys.stderr)
        return 1
    dt = time.time() - t0
    if result.reused:
        if not args.quiet:
            print(f"up to date: {', '.join(sorted(result.manifests))} under {out}/code_files (use --force to re-crawl)")
        return 0
    st = result.stats
    if not args.quiet:
        for lang in sorted(result.manifests):
            print(f"code_files/{lang}: {st.files[lang]} files, {st.bytes[lang]:,} bytes")
        print(f"repositories: {result.status_counts()}")
        failed = [o for o in result.outcomes if o.status == "failed"]
        for o in failed[:MAX_LISTED]:
            print(f"  failed: {o.repo.name}: {o.reason}")
        if len(failed) > MAX_LISTED:
            print(f"  ... {len(failed) - MAX_LISTED} more failures in code_files_repos")
        skipped = Counter(o.reason for o in result.outcomes if o.status == "skipped")
        for reason, n in skipped.most_common():
            print(f"  skipped ({n} repo{'s' if n > 1 else ''}): {reason}")
        if st.skips:
            print("skipped files: " + ", ".join(f"{k}={v}" for k, v in st.skips.most_common()))
        print(f"wrote {out}/code_files in {dt:.1f}s")
    return 0

"""Turn source specs into repositories to crawl (a file tree plus its metadata).

Every failure to reach a source becomes a :class:`RepoRef` with ``error`` (or ``skip``) set
rather than an exception, so one unreachable repository never stops a crawl and every
outcome ends up in the repos table.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import hashlib
import json
import os
import sys
import sysconfig
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from corpus import safety
from corpus.crawl import licenses
from corpus.crawl.config import CrawlConfig, SourceSpec
from corpus.crawl.gitfetch import GitError, normalize_url, repo_name_from_url, shallow_clone
from corpus.crawl.github import GitHubClient, GitHubError, RepoInfo
from corpus.crawl.trees import DirTree, Tree, ZipTree

STDLIB_EXCLUDE = frozenset({"site-packages", "dist-packages", "__pycache__", "lib-dynload", "LICENSE.txt"})
LICENSE_PEEK_BYTES = 200_000


@dataclass
class RepoRef:
    """One repository (or repository-like unit) of a source."""

    name: str
    kind: str  # the SourceSpec kind it came from
    source: str  # row `source`: github | git | local
    tree: Tree | None = None
    url: str | None = None
    license: str | None = None
    stars: int | None = None
    forks: int | None = None
    revision_date: datetime | None = None
    version: str | None = None  # commit sha / listing id; None = fingerprint the tree
    extra_allowed: tuple[str, ...] = ()
    error: str | None = None  # failed: why
    skip: str | None = None  # skipped before crawling: why
    info: dict[str, str] = field(default_factory=dict)


def _utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(int(ts), tz=timezone.utc)


def _parse_iso(s: str | None) -> datetime | None:
    if not s:
        return None
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(timezone.utc).replace(microsecond=0)
    except ValueError:
        return None


def license_from_dir(path: str) -> str | None:
    """SPDX id from LICENSE / COPYING files at the top of ``path`` (first match, sorted)."""
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return None
    for name in names:
        full = os.path.join(path, name)
        if licenses.is_license_file(name) and os.path.isfile(full) and not os.path.islink(full):
            with open(full, "rb") as fh:
                spdx = licenses.from_text(fh.read(LICENSE_PEEK_BYTES).decode("utf-8", "replace"))
            if spdx:
                return spdx
    return None


# --------------------------------------------------------------------------- local kinds


def stdlib_repos(spec: SourceSpec) -> list[RepoRef]:
    root = spec.location or sysconfig.get_paths()["stdlib"]
    if not os.path.isdir(root):
        return [RepoRef(name=f"python-stdlib:{root}", kind="stdlib", source="local", skip=f"not found: {root}")]
    lic = license_from_dir(root)
    # The running interpreter's own stdlib only changes with the interpreter: identify it by
    # version and install time instead of walking it (a given path is always walked).
    own = spec.location is None
    stamp = f"python-{sys.version}-{os.stat(root).st_mtime_ns}" if own else None
    packages, modules = [], []
    for name in sorted(os.listdir(root)):
        full = os.path.join(root, name)
        if name in STDLIB_EXCLUDE or name.startswith(".") or os.path.islink(full):
            continue
        if os.path.isdir(full):
            packages.append(name)
        elif os.path.isfile(full):
            modules.append(name)
    out = [
        RepoRef(name=f"python-stdlib/{p}", kind="stdlib", source="local", tree=DirTree(root, only=[p]),
                license=lic, revision_date=_utc(os.stat(os.path.join(root, p)).st_mtime),
                extra_allowed=tuple(spec.extra_allowed_licenses),
                version=f"{stamp}-{os.stat(os.path.join(root, p)).st_mtime_ns}" if stamp else None)
        for p in packages
    ]
    if modules:
        out.append(RepoRef(name="python-stdlib/_modules", kind="stdlib", source="local",
                           tree=DirTree(root, only=modules), license=lic, revision_date=_utc(os.stat(root).st_mtime),
                           extra_allowed=tuple(spec.extra_allowed_licenses), version=stamp))
    return out


def _site_dirs(spec: SourceSpec) -> list[str]:
    if spec.location:
        return [spec.location]
    dirs = [sysconfig.get_paths()["purelib"],
            sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})["purelib"]]
    return list(dict.fromkeys(os.path.realpath(d) for d in dirs if os.path.isdir(d)))


def _dist_top_levels(dist_info: str) -> list[str]:
    top = os.path.join(dist_info, "top_level.txt")
    if os.path.isfile(top):
        with open(top, encoding="utf-8", errors="replace") as fh:
            return [x.strip() for x in fh if x.strip() and "/" not in x]
    names: list[str] = []
    record = os.path.join(dist_info, "RECORD")
    if os.path.isfile(record):
        with open(record, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                first = line.split(",", 1)[0].split("/", 1)[0]
                if first and not first.endswith((".dist-info", ".data", ".pth")) and first != "..":
                    names.append(first[:-3] if first.endswith(".py") else first)
    return list(dict.fromkeys(names))


def _dist_license(dist_info: str, metadata: str) -> str | None:
    spdx = licenses.from_package_metadata(metadata)
    if spdx:
        return spdx
    for cand in [dist_info, os.path.join(dist_info, "licenses")]:
        spdx = license_from_dir(cand)
        if spdx:
            return spdx
    return None


def _record_hash(dist_info: str) -> str | None:
    """The installer's RECORD lists every installed file with its sha256: hashing it identifies
    the distribution's content without walking it. None (walk instead) when absent."""
    try:
        with open(os.path.join(dist_info, "RECORD"), "rb") as fh:
            return "record:" + hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return None


def site_packages_repos(spec: SourceSpec) -> list[RepoRef]:
    """One repo per installed distribution (its top-level packages), named ``pypi/<name>-<version>``."""
    out: list[RepoRef] = []
    for root in _site_dirs(spec):
        entries = {n for n in os.listdir(root) if not n.startswith((".", "__"))}
        claimed: set[str] = set()
        for di in sorted(glob.glob(os.path.join(root, "*.dist-info"))):
            try:
                with open(os.path.join(di, "METADATA"), encoding="utf-8", errors="replace") as fh:
                    meta_text = fh.read()
            except OSError:
                continue
            msg = licenses.parse_headers(meta_text)
            dist = f"{msg.get('Name', [os.path.basename(di)])[0]}-{msg.get('Version', ['0'])[0]}"
            tops = []
            for t in _dist_top_levels(di):
                for cand in (t, t + ".py"):
                    if cand in entries and cand not in claimed:
                        tops.append(cand)
            if not tops:
                continue
            claimed.update(tops)
            out.append(RepoRef(
                name=f"pypi/{dist}", kind="site-packages", source="local", tree=DirTree(root, only=sorted(tops)),
                license=_dist_license(di, meta_text), revision_date=_utc(os.stat(di).st_mtime),
                extra_allowed=tuple(spec.extra_allowed_licenses), info={"root": root},
                version=_record_hash(di),
            ))
        for name in sorted(entries - claimed):
            full = os.path.join(root, name)
            if name.endswith((".dist-info", ".egg-info", ".pth", ".libs")) or os.path.islink(full):
                continue
            if os.path.isdir(full) or name.endswith(".py"):
                out.append(RepoRef(
                    name=f"site-packages/{name.removesuffix('.py')}", kind="site-packages", source="local",
                    tree=DirTree(root, only=[name]), license=license_from_dir(full) if os.path.isdir(full) else None,
                    revision_date=_utc(os.stat(full).st_mtime), extra_allowed=tuple(spec.extra_allowed_licenses),
                    info={"root": root},
                ))
    return out


def find_jdk_src_zip() -> str | None:
    cands = []
    if os.environ.get("JAVA_HOME"):
        cands.append(os.path.join(os.environ["JAVA_HOME"], "lib", "src.zip"))
    cands += sorted(glob.glob("/usr/lib/jvm/*/lib/src.zip"))
    return next((c for c in cands if os.path.isfile(c)), None)


def _jdk_license(zip_path: str, module: str) -> str | None:
    home = os.path.dirname(os.path.dirname(os.path.realpath(zip_path)))
    spdx = license_from_dir(os.path.join(home, "legal", module))
    return spdx or _jdk_default_license(home)


@functools.lru_cache(maxsize=8)
def _jdk_default_license(home: str) -> str | None:
    for cand in (os.path.join(home, "legal", "java.base"), home):
        spdx = license_from_dir(cand)
        if spdx:
            return spdx
    for copyright_file in sorted(glob.glob("/usr/share/doc/openjdk-*/copyright")):
        with open(copyright_file, encoding="utf-8", errors="replace") as fh:
            spdx = licenses.from_text(fh.read())
        if spdx:
            return spdx
    return None


def jdk_repos(spec: SourceSpec) -> list[RepoRef]:
    zip_path = spec.location or find_jdk_src_zip()
    if not zip_path or not os.path.isfile(zip_path):
        return [RepoRef(name="jdk-src", kind="jdk-src", source="local",
                        skip=f"no JDK src.zip found ({zip_path or 'searched $JAVA_HOME and /usr/lib/jvm'}); "
                             "install the openjdk source package or pass jdk-src:PATH")]
    try:
        with zipfile.ZipFile(zip_path) as zf:
            modules = sorted({n.split("/", 1)[0] for n in zf.namelist() if "/" in n})
    except (zipfile.BadZipFile, OSError) as exc:
        return [RepoRef(name="jdk-src", kind="jdk-src", source="local", error=f"{zip_path}: unreadable zip ({exc})")]
    mtime = _utc(os.stat(zip_path).st_mtime)
    lic_cache: dict[str, str | None] = {}
    out = []
    for m in modules:
        if m not in lic_cache:
            lic_cache[m] = _jdk_license(zip_path, m)
        out.append(RepoRef(name=f"jdk-src/{m}", kind="jdk-src", source="local", tree=ZipTree(zip_path, m + "/"),
                           license=lic_cache[m], revision_date=mtime, extra_allowed=tuple(spec.extra_allowed_licenses)))
    return out


def local_repos(spec: SourceSpec) -> list[RepoRef]:
    path = os.path.abspath(spec.location or ".")
    name = f"local/{os.path.basename(path.rstrip('/')) or 'root'}"
    if not os.path.isdir(path):
        return [RepoRef(name=name, kind="local", source="local", error=f"{path}: no such directory")]
    return [RepoRef(name=name, kind="local", source="local", tree=DirTree(path, exclude=frozenset({".git"})),
                    license=license_from_dir(path), revision_date=_utc(os.stat(path).st_mtime), url=path,
                    extra_allowed=tuple(spec.extra_allowed_licenses))]


# --------------------------------------------------------------------------- git kinds


def _git_repo(name: str, kind: str, source: str, url: str, cache_dir: str, cfg: CrawlConfig,
              branch: str | None, spec: SourceSpec, meta: RepoInfo | None = None) -> RepoRef:
    ref = RepoRef(name=name, kind=kind, source=source, url=url, extra_allowed=tuple(spec.extra_allowed_licenses))
    if meta is not None:
        ref.stars, ref.forks, ref.license = meta.stars, meta.forks, meta.license
        ref.revision_date = _parse_iso(meta.pushed_at)
    try:
        co = shallow_clone(url, cache_dir, branch=branch, timeout=cfg.git_timeout_s, max_age_s=cfg.clone_max_age_s)
    except (GitError, OSError) as exc:  # OSError: cache disk full, permissions
        ref.error = str(exc)
        return ref
    ref.info["checkout"] = co.path
    if co.commit is None:
        ref.skip = "empty repository (no commits)"
        return ref
    ref.tree = DirTree(co.path, exclude=frozenset({".git"}))
    ref.version = co.commit
    ref.info["commit"] = co.commit
    if ref.revision_date is None:
        ref.revision_date = _utc(co.commit_time)
    if ref.license is None:
        ref.license = license_from_dir(co.path)
    return ref


def git_repos(spec: SourceSpec, cfg: CrawlConfig, cache_dir: str) -> list[RepoRef]:
    url = normalize_url(spec.location or "")
    return [_git_repo(repo_name_from_url(url), "git", "git", url, cache_dir, cfg, spec.branch, spec)]


def _listing_cache(cache_dir: str, cfg: CrawlConfig, spec: SourceSpec) -> str:
    key = hashlib.sha256(f"{cfg.github_api_url}\0{spec.model_dump_json()}".encode()).hexdigest()[:16]
    return os.path.join(os.path.dirname(cache_dir.rstrip("/")), "github", f"{key}.json")


def github_listing(spec: SourceSpec, cfg: CrawlConfig, cache_dir: str,
                   client_factory: Callable[[], GitHubClient] | None = None) -> list[RepoInfo]:
    """The repositories a GitHub source names, from the API or from a listing cached for
    ``clone_max_age_s``: the per-language partitions of one crawl then see the same repos
    and spend one search, not one per partition, of the rate limit."""
    path = _listing_cache(cache_dir, cfg, spec)
    try:
        if time.time() - os.path.getmtime(path) < cfg.clone_max_age_s:
            with open(path, encoding="utf-8") as fh:
                return [RepoInfo(**d) for d in json.load(fh)]
    except (OSError, ValueError, TypeError):
        pass  # absent, stale or unreadable: ask the API
    client = client_factory() if client_factory else GitHubClient(
        cfg.github_api_url, os.environ.get(cfg.github_token_env) or None, max_wait_s=cfg.github_max_wait_s
    )
    if spec.location:
        infos = [client.repo(spec.location)]
    else:
        infos = client.search_repositories(language=spec.language, min_stars=spec.min_stars,
                                           pushed_after=spec.pushed_after, query=spec.query,
                                           max_repos=spec.max_repos)
    with safety.atomic_file(path, "w") as fh:
        json.dump([dataclasses.asdict(i) for i in infos], fh)
    return infos


def github_repos(spec: SourceSpec, cfg: CrawlConfig, cache_dir: str,
                 client_factory: Callable[[], GitHubClient] | None = None) -> list[RepoRef]:
    try:
        infos = github_listing(spec, cfg, cache_dir, client_factory)
    except GitHubError as exc:
        return [RepoRef(name=spec.location or spec.label(), kind="github", source="github", error=str(exc))]
    return [
        _git_repo(i.full_name, "github", "github", i.clone_url, cache_dir, cfg, spec.branch or i.default_branch, spec, i)
        for i in infos
    ]


def resolve(cfg: CrawlConfig, cache_dir: str,
            github_client: Callable[[], GitHubClient] | None = None) -> list[RepoRef]:
    """All repositories of all sources, fetched (git/github) into ``cache_dir``."""
    out: list[RepoRef] = []
    for spec in cfg.sources:
        if spec.kind == "stdlib":
            out += stdlib_repos(spec)
        elif spec.kind == "site-packages":
            out += site_packages_repos(spec)
        elif spec.kind == "jdk-src":
            out += jdk_repos(spec)
        elif spec.kind == "local":
            out += local_repos(spec)
        elif spec.kind == "git":
            out += git_repos(spec, cfg, cache_dir)
        elif spec.kind == "github":
            out += github_repos(spec, cfg, cache_dir, github_client)
    # One name per repo: a second source yielding the same name gets a numeric suffix.
    seen: dict[str, int] = {}
    for r in out:
        n = seen.get(r.name, 0)
        seen[r.name] = n + 1
        if n:
            r.name = f"{r.name}~{n + 1}"
    return out

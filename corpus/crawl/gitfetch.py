"""Shallow git clones into a shared cache, through the ``git`` CLI with timeouts.

Clones live under ``<data_root>/_cache/git/<name>-<hash>`` so the per-language partitions
of one crawl reuse a single clone. A clone is made in a temporary folder and renamed into
place, so a killed clone never leaves a half-written cache entry that looks valid.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass

_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",  # never wait for credentials on a private/404 repo
    "GIT_ASKPASS": "true",
    "GIT_CONFIG_NOSYSTEM": "1",
    "LC_ALL": "C",
}


class GitError(RuntimeError):
    """A git command failed; the message carries the command and git's stderr."""


@dataclass(frozen=True)
class Checkout:
    path: str
    url: str
    commit: str | None  # None for an empty repository
    commit_time: int | None


def run_git(args: list[str], cwd: str | None = None, timeout: float = 600.0, check: bool = True) -> str:
    env = dict(os.environ) | _GIT_ENV
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, env=env, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"git {' '.join(args[:3])}: timed out after {timeout:.0f}s") from exc
    if check and proc.returncode != 0:
        err = [x.strip() for x in proc.stderr.decode("utf-8", "replace").splitlines() if x.strip()]
        err = [x for x in err if not x.startswith(("Cloning into", "warning: redirecting"))] or err
        raise GitError(f"git {' '.join(args[:3])} failed ({proc.returncode}): {' / '.join(err[:3])[:500]}")
    return proc.stdout.decode("utf-8", "replace")


def normalize_url(url: str) -> str:
    """Local paths become file:// URLs (git ignores --depth for plain local paths)."""
    if url.startswith(("https://", "http://", "ssh://", "git://", "file://", "git@")):
        return url
    return "file://" + os.path.abspath(url)


def repo_name_from_url(url: str) -> str:
    """``host/owner/name`` for remote URLs, ``local/<name>`` for file URLs."""
    u = url.rstrip("/")
    u = re.sub(r"\.git$", "", u)
    if u.startswith("file://"):
        return "local/" + os.path.basename(u)
    if u.startswith("git@"):
        host, _, path = u[4:].partition(":")
        return f"{host}/{path}"
    m = re.match(r"^[a-z]+://(?:[^@/]+@)?([^/]+)/(.+)$", u)
    return f"{m.group(1)}/{m.group(2)}" if m else os.path.basename(u)


def cache_path(cache_dir: str, url: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", repo_name_from_url(url))[-60:]
    return os.path.join(cache_dir, f"{slug}-{hashlib.sha1(url.encode()).hexdigest()[:12]}")


def head_info(path: str, timeout: float = 60.0) -> tuple[str | None, int | None]:
    """(commit sha, committer unix time) of HEAD, or (None, None) for an empty repository."""
    out = run_git(["log", "-1", "--format=%H %ct"], cwd=path, timeout=timeout, check=False).strip()
    if not out:
        return None, None
    sha, ts = out.split()
    return sha, int(ts)


def shallow_clone(
    url: str,
    cache_dir: str,
    *,
    branch: str | None = None,
    depth: int = 1,
    timeout: float = 600.0,
    max_age_s: float = 6 * 3600.0,
) -> Checkout:
    """A checkout of ``url`` in the cache, cloned if absent or older than ``max_age_s``."""
    url = normalize_url(url)
    dest = cache_path(cache_dir, url)
    marker = os.path.join(dest, ".git", "codecorpus-fetched")
    if os.path.isfile(marker) and time.time() - os.path.getmtime(marker) < max_age_s:
        with open(marker) as fh:
            if fh.read().strip() == f"{branch or ''} {depth}".strip():
                sha, ts = head_info(dest)
                return Checkout(dest, url, sha, ts)
    os.makedirs(cache_dir, exist_ok=True)
    tmp = f"{dest}.tmp-{uuid.uuid4().hex[:8]}"
    args = ["clone", "--no-tags", "--single-branch", f"--depth={depth}", "-c", "core.symlinks=true"]
    if branch:
        args += ["--branch", branch]
    try:
        run_git([*args, "--", url, tmp], timeout=timeout)
        with open(os.path.join(tmp, ".git", "codecorpus-fetched"), "w") as fh:
            fh.write(f"{branch or ''} {depth}")
        if os.path.exists(dest):
            old = f"{dest}.old-{uuid.uuid4().hex[:8]}"
            try:
                os.rename(dest, old)
                shutil.rmtree(old, ignore_errors=True)
            except FileNotFoundError:
                pass  # a concurrent partition moved it first
        try:
            os.rename(tmp, dest)
        except OSError:
            # Another process (a sibling partition) committed its clone in between: use that one.
            if not os.path.isfile(os.path.join(dest, ".git", "codecorpus-fetched")):
                raise GitError(f"{url}: could not move the clone into {dest}") from None
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    sha, ts = head_info(dest)
    return Checkout(dest, url, sha, ts)


def deepen(path: str, depth: int, timeout: float = 600.0) -> None:
    """Fetch more history into a shallow clone (commit mining needs parents)."""
    if run_git(["rev-parse", "--is-shallow-repository"], cwd=path, timeout=60).strip() == "true":
        run_git(["fetch", "--no-tags", f"--depth={depth}", "origin"], cwd=path, timeout=timeout, check=False)

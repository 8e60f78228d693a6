"""A small GitHub REST client: repository search and metadata, rate-limit aware.

It honours ``X-RateLimit-Remaining`` / ``X-RateLimit-Reset`` and ``Retry-After``: when the
budget is spent it sleeps until the reset (up to ``max_wait_s``), and raises
:class:`RateLimitError` when the reset is further away than that, so the caller can record the
repo as failed instead of hanging. The base URL is configurable (GitHub Enterprise, tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

USER_AGENT = "codecorpus-crawler"


class GitHubError(RuntimeError):
    """A GitHub API call failed; the message names the URL and status."""


class NotFoundError(GitHubError):
    pass


class RateLimitError(GitHubError):
    pass


@dataclass
class RepoInfo:
    full_name: str
    clone_url: str
    default_branch: str | None
    stars: int
    forks: int
    license: str | None
    pushed_at: str | None
    archived: bool = False
    fork: bool = False

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> RepoInfo:
        lic = d.get("license") or {}
        spdx = lic.get("spdx_id") if isinstance(lic, dict) else None
        return cls(
            full_name=d["full_name"],
            clone_url=d.get("clone_url") or f"https://github.com/{d['full_name']}.git",
            default_branch=d.get("default_branch"),
            stars=int(d.get("stargazers_count") or 0),
            forks=int(d.get("forks_count") or 0),
            license=None if spdx in (None, "NOASSERTION") else spdx,
            pushed_at=d.get("pushed_at"),
            archived=bool(d.get("archived")),
            fork=bool(d.get("fork")),
        )


class GitHubClient:
    def __init__(
        self,
        api_url: str = "https://api.github.com",
        token: str | None = None,
        *,
        max_wait_s: float = 900.0,
        timeout_s: float = 30.0,
        retries: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        session: requests.Session | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.max_wait_s = max_wait_s
        self.timeout_s = timeout_s
        self.retries = retries
        self.sleep = sleep
        self.clock = clock
        self.session = session or requests.Session()
        self.session.headers.update({"Accept": "application/vnd.github+json", "User-Agent": USER_AGENT,
                                     "X-GitHub-Api-Version": "2022-11-28"})
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self._blocked_until = 0.0
        self.waited_s = 0.0
        self.requests = 0

    # -- transport
    def _wait(self, until: float, url: str) -> None:
        delay = max(0.0, until - self.clock())
        if delay > self.max_wait_s:
            raise RateLimitError(
                f"{url}: rate limit exhausted; resets in {delay:.0f}s (> max wait {self.max_wait_s:.0f}s). "
                "Set a token (github_token_env) or raise github_max_wait_s."
            )
        if delay > 0:
            self.sleep(delay)
            self.waited_s += delay

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        url = f"{self.api_url}/{path.lstrip('/')}"
        last = ""
        for attempt in range(self.retries + 1):
            if self._blocked_until:
                self._wait(self._blocked_until, url)
                self._blocked_until = 0.0
            try:
                resp = self.session.get(url, params=params, timeout=self.timeout_s)
            except requests.RequestException as exc:
                last = f"{url}: {type(exc).__name__}: {exc}"
                self.sleep(min(2 ** attempt, 30))
                continue
            self.requests += 1
            remaining = resp.headers.get("X-RateLimit-Remaining")
            reset = resp.headers.get("X-RateLimit-Reset")
            if resp.status_code in (403, 429) and (remaining == "0" or "Retry-After" in resp.headers):
                if "Retry-After" in resp.headers:
                    until = self.clock() + float(resp.headers["Retry-After"])
                else:
                    until = float(reset) + 1 if reset else self.clock() + 60
                self._wait(until, url)
                last = f"{url}: rate limited ({resp.status_code})"
                continue
            if resp.status_code == 404:
                raise NotFoundError(f"{url}: 404 not found (repository missing, private, or wrong API URL)")
            if resp.status_code >= 500:
                last = f"{url}: server error {resp.status_code}"
                self.sleep(min(2 ** attempt, 30))
                continue
            if resp.status_code >= 400:
                raise GitHubError(f"{url}: HTTP {resp.status_code}: {resp.text[:300]}")
            if remaining == "0" and reset:
                self._blocked_until = float(reset) + 1  # budget spent: wait before the next call
            try:
                return resp.json()
            except ValueError as exc:
                raise GitHubError(f"{url}: response is not JSON ({exc})") from exc
        raise GitHubError(f"giving up after {self.retries + 1} attempts: {last}")

    # -- API
    def repo(self, full_name: str) -> RepoInfo:
        return RepoInfo.from_api(self.get(f"repos/{full_name}"))

    def search_repositories(
        self,
        *,
        language: str | None = None,
        min_stars: int = 0,
        pushed_after: str | None = None,
        query: str | None = None,
        max_repos: int = 20,
    ) -> list[RepoInfo]:
        """Repositories matching the qualifiers, most-starred first (search caps at 1000)."""
        quals = []
        if query:
            quals.append(query)
        if language:
            quals.append(f"language:{language}")
        if min_stars:
            quals.append(f"stars:>={min_stars}")
        if pushed_after:
            quals.append(f"pushed:>={pushed_after}")
        q = " ".join(quals) or "stars:>=1"
        per_page = max(1, min(100, max_repos))
        out: list[RepoInfo] = []
        page = 1
        while len(out) < max_repos and page <= 10:
            data = self.get("search/repositories", {"q": q, "sort": "stars", "order": "desc",
                                                    "per_page": per_page, "page": page})
            items = data.get("items") or []
            out.extend(RepoInfo.from_api(i) for i in items)
            if len(items) < per_page:
                break
            page += 1
        return out[:max_repos]

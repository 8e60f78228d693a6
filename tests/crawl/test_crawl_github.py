"""The GitHub path against a local HTTP server that speaks the same REST API, with the real
clone path exercised against local git repositories (their file:// URLs as clone_url)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from crawl_helpers import make_git_repo

from corpus import shards
from corpus.crawl import CrawlConfig, Crawler, parse_source, resolve, write_crawl
from corpus.crawl.github import GitHubClient, GitHubError, NotFoundError, RateLimitError


class FakeGitHub:
    """State of the fake API: repos by full name, a queue of forced rate-limit replies, a log."""

    def __init__(self) -> None:
        self.repos: dict[str, dict] = {}
        self.rate_limited: list[float] = []  # reset times (epoch) for the next replies
        self.log: list[tuple[str, str | None]] = []
        self.last_remaining: tuple[int, float] | None = None  # (remaining, reset) for the next 200 reply

    def repo_json(self, full_name: str, clone_url: str, stars: int, license_id: str | None) -> dict:
        return {"full_name": full_name, "clone_url": clone_url, "default_branch": "main", "stargazers_count": stars,
                "forks_count": stars // 10, "pushed_at": "2024-05-06T07:08:09Z", "archived": False, "fork": False,
                "license": {"spdx_id": license_id} if license_id else None}


def _handler(state: FakeGitHub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def _send(self, code: int, body: object, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            state.log.append((url.path, self.headers.get("Authorization")))
            if state.rate_limited:
                reset = state.rate_limited.pop(0)
                self._send(403, {"message": "API rate limit exceeded"},
                           {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(reset))})
                return
            limits = {"X-RateLimit-Remaining": "4999", "X-RateLimit-Reset": str(int(time.time()) + 3600)}
            if state.last_remaining is not None:
                remaining, reset_at = state.last_remaining
                state.last_remaining = None
                limits = {"X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": str(int(reset_at))}
            if url.path == "/search/repositories":
                q = parse_qs(url.query)
                per_page, page = int(q["per_page"][0]), int(q["page"][0])
                lang = next((t.split(":", 1)[1] for t in q["q"][0].split() if t.startswith("language:")), None)
                items = [r for r in state.repos.values() if lang is None or r.get("_language") == lang]
                items.sort(key=lambda r: -r["stargazers_count"])
                chunk = items[(page - 1) * per_page: page * per_page]
                self._send(200, {"total_count": len(items), "items": chunk}, limits)
            elif url.path.startswith("/repos/"):
                name = url.path[len("/repos/"):]
                if name in state.repos:
                    self._send(200, state.repos[name], limits)
                else:
                    self._send(404, {"message": "Not Found"}, limits)
            else:
                self._send(404, {"message": "Not Found"})

    return Handler


@pytest.fixture
def fake_github(tmp_path: Path) -> Iterator[tuple[str, FakeGitHub]]:
    state = FakeGitHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def _add_repos(state: FakeGitHub, tmp_path: Path) -> None:
    alpha = make_git_repo(tmp_path / "gh" / "alpha", {"a.py": "A = 1\n", "b.py": "B = 2\n"})
    beta = make_git_repo(tmp_path / "gh" / "beta", {"main.py": "print('beta')\n"}, license_text=None)
    gpl = make_git_repo(tmp_path / "gh" / "gpl", {"g.py": "G = 1\n"}, license_text=None)
    state.repos["octo/alpha"] = state.repo_json("octo/alpha", f"file://{alpha}", 500, "MIT") | {"_language": "python"}
    state.repos["octo/beta"] = state.repo_json("octo/beta", f"file://{beta}", 90, "Apache-2.0") | {"_language": "python"}
    state.repos["octo/gpl"] = state.repo_json("octo/gpl", f"file://{gpl}", 50, "GPL-3.0") | {"_language": "python"}
    state.repos["octo/gone"] = state.repo_json("octo/gone", f"file://{tmp_path / 'gh' / 'missing'}", 10, "MIT") | {
        "_language": "python"}


def test_search_clone_and_crawl_through_the_api(fake_github, tmp_path: Path, monkeypatch) -> None:
    api, state = fake_github
    _add_repos(state, tmp_path)
    monkeypatch.setenv("TEST_GH_TOKEN", "s3cret")
    state.rate_limited.append(time.time() + 1)  # the first call hits an exhausted rate limit
    cfg = CrawlConfig(sources=[parse_source("github:language=python,min_stars=5,max_repos=3")],
                      github_api_url=api, github_token_env="TEST_GH_TOKEN", github_max_wait_s=30)
    out = tmp_path / "data"
    t0 = time.time()
    result = write_crawl(cfg, languages=["python"],
                         files_path=lambda x: shards.shard_set_path(str(out), "code_files", x),
                         repos_path=lambda x: shards.shard_set_path(str(out), "code_files_repos", x),
                         cache_dir=str(out / "_cache" / "git"))
    assert time.time() - t0 >= 0.5  # it waited for the reset instead of failing
    assert state.log[0][0] == "/search/repositories" and state.log[1][0] == "/search/repositories"
    assert all(auth == "Bearer s3cret" for _, auth in state.log)
    status = {o.repo.name: (o.status, o.reason) for o in result.outcomes}
    assert status["octo/alpha"] == ("fetched", "") and status["octo/beta"] == ("fetched", "")
    assert status["octo/gpl"] == ("skipped", "license GPL-3.0 not in allow-list")
    assert "octo/gone" not in status  # max_repos=3, most-starred first
    rows = [r for b in shards.iter_batches(str(out / "code_files" / "python")) for r in b.to_pylist()]
    by_path = {(r["repo"], r["path"]): r for r in rows}
    a = by_path[("octo/alpha", "a.py")]
    assert (a["stars"], a["forks"], a["license"], a["source"]) == (500, 50, "MIT", "github")
    assert a["revision_date"].isoformat() == "2024-05-06T07:08:09+00:00"
    assert by_path[("octo/beta", "main.py")]["license"] == "Apache-2.0"  # from the API, no LICENSE file
    table = [r for b in shards.iter_batches(str(out / "code_files_repos" / "python")) for r in b.to_pylist()]
    assert {r["repo"]: r["status"] for r in table} == {"octo/alpha": "fetched", "octo/beta": "fetched",
                                                        "octo/gpl": "skipped"}
    # Another partition of the same crawl reuses the cached listing: no new API call.
    calls = len(state.log)
    java = write_crawl(cfg, languages=["java"],
                       files_path=lambda x: shards.shard_set_path(str(out), "code_files", x),
                       repos_path=lambda x: shards.shard_set_path(str(out), "code_files_repos", x),
                       cache_dir=str(out / "_cache" / "git"))
    assert len(state.log) == calls and java.status_counts() == {"fetched": 2, "skipped": 1}
    assert (out / "_cache" / "github").is_dir()


def test_single_repo_404_and_unreachable_clone(fake_github, tmp_path: Path) -> None:
    api, state = fake_github
    _add_repos(state, tmp_path)
    cfg = CrawlConfig(sources=[parse_source("github:octo/nope"), parse_source("github:octo/gone"),
                               parse_source("github:octo/alpha")], github_api_url=api, git_timeout_s=30)
    crawler = Crawler(cfg)
    rows = list(crawler.run(resolve(cfg, str(tmp_path / "cache"))))
    status = {o.repo.name: (o.status, o.reason) for o in crawler.outcomes}
    assert status["octo/nope"][0] == "failed" and "404" in status["octo/nope"][1]
    assert status["octo/gone"][0] == "failed" and "git clone" in status["octo/gone"][1]
    assert status["octo/alpha"][0] == "fetched" and {r["path"] for r in rows} == {"a.py", "b.py"}


def test_rate_limit_longer_than_max_wait_fails_the_source_not_the_run(fake_github, tmp_path: Path) -> None:
    api, state = fake_github
    _add_repos(state, tmp_path)
    state.rate_limited.append(time.time() + 3600)
    local = make_git_repo(tmp_path / "other", {"x.py": "X = 1\n"})
    cfg = CrawlConfig(sources=[parse_source("github:language=python"), parse_source(f"git:{local}")],
                      github_api_url=api, github_max_wait_s=2)
    crawler = Crawler(cfg)
    t0 = time.time()
    rows = list(crawler.run(resolve(cfg, str(tmp_path / "cache"))))
    assert time.time() - t0 < 20
    failed = [o for o in crawler.outcomes if o.status == "failed"]
    assert len(failed) == 1 and "rate limit exhausted" in failed[0].reason
    assert [r["path"] for r in rows] == ["x.py"]  # the other source still crawled


def test_client_rate_limit_logic_with_fake_clock(fake_github) -> None:
    api, state = fake_github
    state.repos["o/r"] = state.repo_json("o/r", "file:///x", 1, None)
    now = [1_000_000.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    client = GitHubClient(api, max_wait_s=100, sleep=sleep, clock=lambda: now[0])
    state.rate_limited.append(now[0] + 30)
    info = client.repo("o/r")
    assert info.full_name == "o/r" and info.license is None
    assert slept == [pytest.approx(31)] and client.waited_s == pytest.approx(31)
    # A successful reply that spends the last request makes the next call wait for the reset.
    state.last_remaining = (0, now[0] + 20)
    client.repo("o/r")
    assert len(slept) == 1
    client.repo("o/r")
    assert slept[1] == pytest.approx(21)
    state.rate_limited.append(now[0] + 500)
    with pytest.raises(RateLimitError, match="max wait 100s"):
        client.repo("o/r")
    with pytest.raises(NotFoundError):
        client.repo("o/missing")
    dead = GitHubClient("http://127.0.0.1:9", retries=1, sleep=lambda s: None, timeout_s=2)
    with pytest.raises(GitHubError, match="giving up after 2 attempts"):
        dead.repo("o/r")

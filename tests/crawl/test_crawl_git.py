"""Git sources against real local repositories (work tree, bare, empty, missing) and commit mining."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from crawl_helpers import git

from corpus.crawl import CrawlConfig, Crawler, parse_source, resolve
from corpus.crawl.commits import CommitStats, mine_commits
from corpus.crawl.gitfetch import cache_path, deepen, repo_name_from_url, shallow_clone


def _run(sources: list[str], cache: Path, **kw):
    cfg = CrawlConfig(sources=[parse_source(s) for s in sources], **kw)
    repos = resolve(cfg, str(cache))
    crawler = Crawler(cfg)
    return list(crawler.run(repos)), crawler, repos


def test_clone_local_repo_and_crawl(git_repo: Path, tmp_path: Path) -> None:
    rows, crawler, repos = _run([f"git:{git_repo}"], tmp_path / "cache")
    [repo] = repos
    assert repo.name == "local/demo" and repo.source == "git" and repo.license == "MIT"
    assert repo.revision_date == datetime(2024, 2, 2, tzinfo=timezone.utc)  # HEAD commit time
    by_path = {r["path"]: r for r in rows}
    assert set(by_path) == {"pkg/__init__.py", "pkg/core.py", "pkg/util.py", "pkg/mul.py", "tools/run", "web/app.js",
                            "README.md"} - {"pkg/__init__.py"}
    assert by_path["tools/run"]["language"] == "shell" and by_path["web/app.js"]["language"] == "javascript"
    assert '"""Sum."""' in by_path["pkg/core.py"]["content"]  # the latest revision
    assert all(r["source"] == "git" for r in rows)
    assert crawler.stats.skips["empty_file"] == 1
    # The clone is shallow and cached; .git is never crawled.
    checkout = repo.info["checkout"]
    assert checkout.startswith(str(tmp_path / "cache"))
    assert git(checkout, "rev-parse", "--is-shallow-repository").strip() == "true"
    assert not any(r["path"].startswith(".git/") for r in rows)


def test_clone_cache_is_reused_across_partitions(git_repo: Path, tmp_path: Path) -> None:
    first = shallow_clone(str(git_repo), str(tmp_path / "c"))
    sentinel = Path(first.path) / ".git" / "sentinel"
    sentinel.write_text("a re-clone would drop this file")
    second = shallow_clone(str(git_repo), str(tmp_path / "c"))
    assert second.path == first.path and second.commit == first.commit
    assert sentinel.exists()  # reused, not re-cloned
    # Too old: re-cloned, and a new upstream commit shows up.
    (git_repo / "pkg" / "new.py").write_text("Z = 3\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "new")
    third = shallow_clone(str(git_repo), str(tmp_path / "c"), max_age_s=0)
    assert third.commit != first.commit and (Path(third.path) / "pkg" / "new.py").exists()
    assert not sentinel.exists()
    assert not [n for n in os.listdir(tmp_path / "c") if ".tmp-" in n or ".old-" in n]


def test_bare_repo_empty_repo_and_missing_repo(git_repo: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(git_repo), str(bare))
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    rows, crawler, _ = _run([str(bare), f"git:{empty}", f"git:{tmp_path / 'does-not-exist'}",
                             "git:http://127.0.0.1:9/nothing.git"], tmp_path / "cache", git_timeout_s=30)
    assert parse_source(str(bare)).kind == "git"
    status = {o.repo.name: (o.status, o.reason) for o in crawler.outcomes}
    assert status["local/bare"][0] == "fetched" and len(rows) == 6
    assert status["local/empty"] == ("skipped", "empty repository (no commits)")
    assert status["local/does-not-exist"][0] == "failed" and "git clone" in status["local/does-not-exist"][1]
    assert status["127.0.0.1:9/nothing"][0] == "failed"


def test_repo_names_from_urls() -> None:
    assert repo_name_from_url("https://github.com/pallets/click.git") == "github.com/pallets/click"
    assert repo_name_from_url("git@github.com:pallets/click.git") == "github.com/pallets/click"
    assert repo_name_from_url("file:///tmp/x/demo") == "local/demo"
    assert cache_path("/c", "https://a/b.git") != cache_path("/c", "https://a/c.git")


def test_mine_commits_from_a_history(git_repo: Path, tmp_path: Path) -> None:
    co = shallow_clone(str(git_repo), str(tmp_path / "c"), depth=1)
    stats = CommitStats()
    assert list(mine_commits(co.path, "local/demo", stats=stats)) == []  # shallow: only a boundary commit
    assert stats.skips["root_or_shallow_boundary"] == 1
    deepen(co.path, 10)
    stats = CommitStats()
    rows = list(mine_commits(co.path, "local/demo", stats=stats, license="MIT"))
    assert [r["message"] for r in rows] == ["Add mul", "Document add"]
    add_mul = rows[0]
    assert add_mul["files_changed"] == ["pkg/mul.py"] and add_mul["language"] == "python"
    assert add_mul["insertions"] == 2 and add_mul["deletions"] == 0
    assert add_mul["content"].startswith("Add mul\n\ndiff --git a/pkg/mul.py b/pkg/mul.py")
    assert add_mul["source"] == "commit" and add_mul["license"] == "MIT"
    assert add_mul["revision_date"] == datetime(2024, 2, 2, tzinfo=timezone.utc)
    assert stats.skips["root_or_shallow_boundary"] == 1  # the initial import (whole tree) is not a commit diff
    stats = CommitStats()
    rows = list(mine_commits(co.path, "local/demo", stats=stats, max_diff_bytes=100))
    assert rows == [] and stats.skips["diff_too_large"] == 2


def test_sibling_partition_committing_the_same_clone_first_is_tolerated(git_repo: Path, tmp_path: Path,
                                                                         monkeypatch) -> None:
    import shutil

    first = shallow_clone(str(git_repo), str(tmp_path / "c"))
    spare = tmp_path / "spare"
    shutil.copytree(first.path, spare, symlinks=True)
    real_rename = os.rename

    def racing_rename(src, dst):
        if ".tmp-" in str(src) and str(dst) == first.path:  # a sibling wins the race just before us
            real_rename(spare, dst)
            raise OSError(39, "Directory not empty")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", racing_rename)
    co = shallow_clone(str(git_repo), str(tmp_path / "c"), max_age_s=0)
    assert co.path == first.path and co.commit == first.commit
    assert not [n for n in os.listdir(tmp_path / "c") if ".tmp-" in n]

"""Crawling a local directory full of bad input: every case recorded, none stops the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corpus import shards
from corpus.crawl import CrawlConfig, Crawler, parse_source, resolve, write_crawl
from corpus.crawl.trees import DirTree
from corpus.schemas import CODE_SCHEMA, code_row_id, content_sha256


def _crawl(root: Path, languages=None, **kw):
    cfg = CrawlConfig(sources=[parse_source(f"local:{root}")], **kw)
    repos = resolve(cfg, str(root.parent / "_cache"))
    crawler = Crawler(cfg)
    rows = list(crawler.run(repos, languages))
    return rows, crawler


def test_bad_input_is_recorded_and_good_files_survive(bad_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    read_paths: list[str] = []
    real_read = DirTree.read

    def spy(self, entry, limit):
        read_paths.append(entry.path)
        return real_read(self, entry, limit)

    monkeypatch.setattr(DirTree, "read", spy)
    rows, crawler = _crawl(bad_repo)
    by_path = {r["path"]: r for r in rows}
    skips = crawler.stats.skips

    assert by_path["good.py"]["content"] == "def ok():\n    return 1\n"
    assert "café naïve" in by_path["latin1.py"]["content"] and "Müller" in by_path["latin1.py"]["content"]
    assert by_path["utf16.py"]["content"] == "# utf-16 with BOM\nGREETING = 'héllo'\n"
    assert by_path["utf16le.py"]["content"] == "# utf-16 without BOM\nX = 'wörld'\n"
    assert by_path["script"]["language"] == "python"
    assert by_path["Main.java"]["language"] == "java"
    assert by_path["header.h"]["language"] == "cpp" and by_path["plain.h"]["language"] == "c"
    nb = by_path["analysis.ipynb"]
    assert nb["source"] == "notebook" and nb["language"] == "python"
    assert nb["content"] == "# # Title\n# Some text\n\nimport math\nprint(math.pi)\n"
    assert by_path["good.py"]["license"] == "MIT"

    for path in ("pipe.py", "nul.py", "empty.py", "gen.py", "app.min.js", "bundle.js", "huge.py", "escape.py", "broken.ipynb",
                 "notes", "inside_link.py", "loopdir/again.py", "node_modules/lib/index.js", "vendor/dep.py"):
        assert path not in by_path, path
    assert skips["binary"] == 1
    assert skips["empty_file"] == 1
    assert skips["generated"] == 2  # gen.py (marker) + app.min.js (name)
    assert skips["minified"] == 1
    assert skips["too_large"] == 1
    assert skips["malformed_notebook"] == 1
    assert skips["symlink_outside_repo"] == 1
    assert skips["symlink_loop"] == 1
    assert skips["symlink"] == 1
    assert skips["special_file"] == 1 and "pipe.py" not in read_paths
    assert crawler.stats.vendored_dirs == 2
    # The 2 GB file and the outside target were never opened; symlinks are never read.
    assert "huge.py" not in read_paths
    assert not any("escape" in p or "again" in p for p in read_paths)
    assert all("SECRET" not in r["content"] for r in rows)
    [outcome] = crawler.outcomes
    assert outcome.status == "fetched" and outcome.skipped == sum(skips.values())


def test_rows_follow_the_code_contract(bad_repo: Path) -> None:
    rows, _ = _crawl(bad_repo)
    for r in rows:
        assert set(r) == set(CODE_SCHEMA.names)
        assert r["sha256"] == content_sha256(r["content"])
        assert r["id"] == code_row_id(r["repo"], r["path"], r["sha256"])
        assert r["size_bytes"] == len(r["content"].encode())
        assert r["repo"] == "local/bad" and r["source"] in ("local", "notebook")


def test_language_filter_reads_only_that_language(bad_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    read_paths: list[str] = []
    real_read = DirTree.read
    monkeypatch.setattr(DirTree, "read", lambda self, e, n: read_paths.append(e.path) or real_read(self, e, n))
    rows, crawler = _crawl(bad_repo, languages=["java"])
    assert [r["path"] for r in rows] == ["Main.java"]
    # .py/.js files are decided by name; only Java, notebooks and extensionless peeks are read.
    assert not [p for p in read_paths if p.endswith((".py", ".js", ".h"))]
    assert "too_large" not in crawler.stats.skips  # huge.py is not a Java file: not this partition's skip


def test_caps_and_unknown_license(tmp_path: Path) -> None:
    root = tmp_path / "nolicense"
    root.mkdir()
    for i in range(5):
        (root / f"m{i}.py").write_text(f"X = {i}\n")
    rows, crawler = _crawl(root)
    assert rows == [] and crawler.outcomes[0].status == "skipped"
    assert "license unknown" in crawler.outcomes[0].reason
    rows, crawler = _crawl(root, allow_unknown_license=True, max_files_per_repo=3)
    assert [r["path"] for r in rows] == ["m0.py", "m1.py", "m2.py"]
    assert rows[0]["license"] is None and crawler.stats.repos_capped == 1
    assert crawler.outcomes[0].reason == "per-repo cap reached (3 files)"
    rows, _ = _crawl(root, license_allow=["GPL-3.0"], allow_unknown_license=False)
    assert rows == []


def test_empty_and_missing_directories_are_outcomes(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    cfg = CrawlConfig(sources=[parse_source(f"local:{empty}"), parse_source(f"local:{tmp_path / 'nope'}")],
                      allow_unknown_license=True)
    crawler = Crawler(cfg)
    assert list(crawler.run(resolve(cfg, str(tmp_path / "_c")))) == []
    status = {o.repo.name: (o.status, o.reason) for o in crawler.outcomes}
    assert status["local/empty"] == ("skipped", "empty repository (no files)")
    assert status["local/nope"][0] == "failed" and "no such directory" in status["local/nope"][1]


def test_write_crawl_is_atomic_deterministic_and_idempotent(bad_repo: Path, tmp_path: Path) -> None:
    cfg = CrawlConfig(sources=[parse_source(f"local:{bad_repo}")])

    def run(root: Path, force=False):
        return write_crawl(cfg, languages=["python", "java"],
                           files_path=lambda x: shards.shard_set_path(str(root), "code_files", x),
                           repos_path=lambda x: shards.shard_set_path(str(root), "code_files_repos", x),
                           cache_dir=str(root / "_cache"), force=force)

    a = run(tmp_path / "a")
    assert not a.reused and a.manifests["python"].rows == a.stats.files["python"] > 0
    assert a.manifests["java"].rows == 1
    run(tmp_path / "b")
    for lang in ("python", "java"):
        fa = shards.shard_files(str(tmp_path / "a" / "code_files" / lang))
        fb = shards.shard_files(str(tmp_path / "b" / "code_files" / lang))
        assert [Path(f).read_bytes() for f in fa] == [Path(f).read_bytes() for f in fb]
    again = run(tmp_path / "a")
    assert again.reused
    # An input change invalidates the set.
    (bad_repo / "new.py").write_text("Y = 2\n")
    os.utime(bad_repo / "new.py", (1, 1))
    changed = run(tmp_path / "a")
    assert not changed.reused and changed.manifests["python"].rows == a.manifests["python"].rows + 1
    repos = [r for b_ in shards.iter_batches(str(tmp_path / "a" / "code_files_repos" / "python"))
             for r in b_.to_pylist()]
    assert repos[0]["repo"] == "local/bad" and repos[0]["status"] == "fetched" and repos[0]["license"] == "MIT"


def test_unknown_language_is_a_clear_error(bad_repo: Path, tmp_path: Path) -> None:
    cfg = CrawlConfig(sources=[parse_source(f"local:{bad_repo}")])
    with pytest.raises(ValueError, match="unknown language id"):
        write_crawl(cfg, languages=["klingon"], files_path=lambda x: str(tmp_path / x),
                    repos_path=lambda x: str(tmp_path / "r" / x), cache_dir=str(tmp_path / "c"))


def test_unreadable_directory_is_recorded(bad_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_scandir = os.scandir

    def scandir(path):
        if str(path).endswith("loopdir"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    rows, crawler = _crawl(bad_repo)
    assert crawler.stats.skips["unreadable_dir"] == 1 and "good.py" in {r["path"] for r in rows}
    assert "Permission denied" in crawler.stats.examples["unreadable_dir"]

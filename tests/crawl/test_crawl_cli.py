"""``codecorpus crawl`` through pipelines.cli.main on a local directory and a local git repo."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus import shards
from pipelines.cli import main


def _rows(path: Path) -> list[dict]:
    return [r for b in shards.iter_batches(str(path)) for r in b.to_pylist()]


def test_help_is_useful(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["crawl", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for needle in ("--output", "--language", "--max-file-bytes", "github:language=", "code_files_repos", "jdk-src"):
        assert needle in out


def test_crawl_local_dir_and_git_repo(bad_repo: Path, git_repo: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    rc = main(["crawl", str(bad_repo), f"git:{git_repo}", "--output", str(out), "--language", "python",
               "--language", "shell", "--max-file-bytes", "100000"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "code_files/python:" in printed and "repositories: {'fetched': 2}" in printed
    py = _rows(out / "code_files" / "python")
    assert {r["repo"] for r in py} == {"local/bad", "local/demo"}
    assert shards.is_committed(str(out / "code_files" / "shell"))
    assert [r["path"] for r in _rows(out / "code_files" / "shell")] == ["tools/run"]
    table = _rows(out / "code_files_repos" / "python")
    assert {(r["repo"], r["status"]) for r in table} == {("local/bad", "fetched"), ("local/demo", "fetched")}
    assert (out / "_cache" / "git").is_dir()
    # A second run with the same inputs is a no-op.
    assert main(["crawl", str(bad_repo), f"git:{git_repo}", "--output", str(out), "--language", "python",
                 "--language", "shell", "--max-file-bytes", "100000"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_crawl_all_languages_found(git_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["crawl", f"git:{git_repo}", "-o", str(out), "-q"]) == 0
    assert shards.committed_partitions(str(out), "code_files") == ["javascript", "markdown", "python", "shell"]


def test_bad_arguments_fail_clearly(tmp_path: Path, capsys) -> None:
    assert main(["crawl", "nowhere-xyz", "--output", str(tmp_path)]) == 2
    assert "not a known kind" in capsys.readouterr().err
    assert main(["crawl", str(tmp_path), "--output", str(tmp_path / "o"), "--language", "klingon"]) == 2
    assert "unknown language id" in capsys.readouterr().err
    assert main(["crawl", f"git:{tmp_path / 'missing'}", "--output", str(tmp_path / "o")]) == 1
    assert "no repository could be fetched" in capsys.readouterr().err

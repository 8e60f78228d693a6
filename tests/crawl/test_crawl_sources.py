"""Embedded-default source kinds (stdlib, site-packages, jdk-src) on laid-out directories and
zips, plus the real ones on this machine where present."""

from __future__ import annotations

import os
import stat
import sysconfig
import zipfile
from pathlib import Path

import pytest
from crawl_helpers import MIT_TEXT

from corpus.crawl import CrawlConfig, Crawler, parse_source, resolve
from corpus.crawl.sources import find_jdk_src_zip
from corpus.crawl.trees import ZipTree


def _crawl(sources: list[str], tmp_path: Path, languages=None, **kw):
    cfg = CrawlConfig(sources=[parse_source(s) for s in sources], **kw)
    repos = resolve(cfg, str(tmp_path / "_cache"))
    crawler = Crawler(cfg)
    return list(crawler.run(repos, languages)), crawler, repos


def test_site_packages_one_repo_per_distribution(tmp_path: Path) -> None:
    sp = tmp_path / "site-packages"
    (sp / "alpha").mkdir(parents=True)
    (sp / "alpha" / "__init__.py").write_text("A = 1\n")
    (sp / "alpha_helpers.py").write_text("H = 1\n")
    di = sp / "alpha-1.2.dist-info"
    di.mkdir()
    (di / "METADATA").write_text("Metadata-Version: 2.4\nName: alpha\nVersion: 1.2\nLicense-Expression: MIT\n\n"
                                 "Long description mentioning GPL\n")
    (di / "RECORD").write_text("alpha/__init__.py,sha256=x,6\nalpha_helpers.py,sha256=y,6\nalpha-1.2.dist-info/RECORD,,\n")
    (sp / "beta").mkdir()
    (sp / "beta" / "b.py").write_text("B = 2\n")
    bdi = sp / "beta-0.1.dist-info"
    bdi.mkdir()
    (bdi / "METADATA").write_text("Metadata-Version: 2.1\nName: beta\nVersion: 0.1\nLicense: UNKNOWN\n")
    (bdi / "top_level.txt").write_text("beta\n")
    (bdi / "LICENSE").write_text(MIT_TEXT)  # license from the file when metadata says nothing
    (sp / "orphan").mkdir()
    (sp / "orphan" / "o.py").write_text("O = 3\n")
    (sp / "__pycache__").mkdir()
    rows, crawler, repos = _crawl([f"site-packages:{sp}"], tmp_path)
    names = {r.name: r for r in repos}
    assert set(names) == {"pypi/alpha-1.2", "pypi/beta-0.1", "site-packages/orphan"}
    assert names["pypi/alpha-1.2"].license == "MIT" and names["pypi/beta-0.1"].license == "MIT"
    assert names["pypi/alpha-1.2"].version.startswith("record:")  # fingerprint without a walk
    assert {(r["repo"], r["path"]) for r in rows} == {("pypi/alpha-1.2", "alpha/__init__.py"),
                                                       ("pypi/alpha-1.2", "alpha_helpers.py"),
                                                       ("pypi/beta-0.1", "beta/b.py")}
    orphan = next(o for o in crawler.outcomes if o.repo.name == "site-packages/orphan")
    assert orphan.status == "skipped" and "license unknown" in orphan.reason


def test_stdlib_layout(tmp_path: Path) -> None:
    lib = tmp_path / "python3.x"
    (lib / "json").mkdir(parents=True)
    (lib / "json" / "__init__.py").write_text("def loads(s): ...\n")
    (lib / "os.py").write_text("sep = '/'\n")
    (lib / "site-packages" / "x").mkdir(parents=True)
    (lib / "site-packages" / "x" / "x.py").write_text("X = 1\n")
    (lib / "LICENSE.txt").write_text("PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2\n...")
    rows, _, repos = _crawl([f"stdlib:{lib}"], tmp_path)
    assert sorted(r.name for r in repos) == ["python-stdlib/_modules", "python-stdlib/json"]
    assert {(r["repo"], r["path"], r["license"]) for r in rows} == {
        ("python-stdlib/json", "json/__init__.py", "PSF-2.0"), ("python-stdlib/_modules", "os.py", "PSF-2.0")}


def test_jdk_zip_modules_and_zip_symlinks(tmp_path: Path) -> None:
    home = tmp_path / "jdk"
    (home / "lib").mkdir(parents=True)
    (home / "legal" / "java.base").mkdir(parents=True)
    (home / "legal" / "java.base" / "LICENSE").write_text(
        "GNU General Public License, version 2, with the Classpath Exception\n")
    zpath = home / "lib" / "src.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("java.base/java/lang/Object.java", "package java.lang;\npublic class Object {}\n")
        zf.writestr("java.base/java/lang/Big.java", "x" * 5000)
        zf.writestr("java.sql/java/sql/Driver.java", "package java.sql;\npublic interface Driver {}\n")
        link = zipfile.ZipInfo("java.sql/java/sql/Link.java")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "../../../../etc/passwd")
    spec = f"jdk-src:{zpath}"
    strict = CrawlConfig(sources=[parse_source(spec).model_copy(update={"extra_allowed_licenses": []})])
    crawler = Crawler(strict)
    repos = resolve(strict, str(tmp_path / "c"))
    assert list(crawler.run(repos)) == [] and "not in allow-list" in crawler.outcomes[0].reason  # not permissive
    assert [r.name for r in repos] == ["jdk-src/java.base", "jdk-src/java.sql"]
    assert all(r.license == "GPL-2.0-only WITH Classpath-exception-2.0" for r in repos)
    # Naming the jdk-src source allows its license for that source only.
    rows, crawler, _ = _crawl([spec], tmp_path, max_file_bytes=4000)
    assert sorted((r["repo"], r["path"]) for r in rows) == [("jdk-src/java.base", "java/lang/Object.java"),
                                                             ("jdk-src/java.sql", "java/sql/Driver.java")]
    assert crawler.stats.skips["too_large"] == 1 and crawler.stats.skips["symlink"] == 1
    assert ZipTree(str(zpath), "java.sql/").read(next(iter(ZipTree(str(zpath), "java.sql/").entries(
        lambda p: False))), 10) == b"package ja"


def test_missing_and_corrupt_jdk_zip_are_outcomes(tmp_path: Path) -> None:
    bad = tmp_path / "src.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    _, crawler, _ = _crawl([f"jdk-src:{tmp_path / 'none.zip'}", f"jdk-src:{bad}"], tmp_path)
    got = sorted((o.status, o.reason.split(":")[0]) for o in crawler.outcomes)
    assert got[0][0] == "failed" and "unreadable zip" in crawler.outcomes[1].reason
    assert got[1][0] == "skipped" and "no JDK src.zip" in crawler.outcomes[0].reason


@pytest.mark.skipif(find_jdk_src_zip() is None, reason="no JDK src.zip on this machine")
def test_real_jdk_src_zip_java_partition(tmp_path: Path) -> None:
    rows, _, repos = _crawl(["jdk-src"], tmp_path, languages=["java"], max_files_per_language=20)
    assert len(rows) == 20 and all(r["language"] == "java" for r in rows)
    assert all("package " in r["content"] or r["path"] == "module-info.java" for r in rows)


def test_real_stdlib_python_partition(tmp_path: Path) -> None:
    rows, crawler, _ = _crawl(["stdlib"], tmp_path, languages=["python"], max_files_per_language=30,
                              max_files_per_repo=5)
    assert len(rows) == 30 and len({r["repo"] for r in rows}) >= 6
    assert all(r["license"] == "PSF-2.0" for r in rows)
    assert os.path.isdir(sysconfig.get_paths()["stdlib"])

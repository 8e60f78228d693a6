"""Real upstream shard sets for mixture / tokenizer tests, built from files on this machine.

code_clean (stdlib Python + C headers, language partitions), text_code_clean and general_clean
(Python HTML docs, tags stripped), math_clean (MATH-500 + GSM8K problems/solutions).
"""

from __future__ import annotations

import glob
import html
import json
import os
import re
from pathlib import Path

from corpus import shards
from corpus.schemas import CODE_SCHEMA, TEXT_SCHEMA, code_row_id, content_sha256, text_row_id

STDLIB = Path("/root/.pyenv/versions/3.11.7/lib/python3.11")
DOCS = Path("/usr/share/doc/python3-doc/html")
# The benchmark sets ship with the project as package data (corpus/decontam/data).
BENCH = Path(__file__).resolve().parents[2] / "corpus" / "decontam" / "data"


def code_rows(files: list[Path], repo_root: Path, repo: str, language: str) -> list[dict]:
    rows = []
    for f in files:
        content = f.read_bytes().decode("utf-8", errors="replace")
        rel = str(f.relative_to(repo_root))
        sha = content_sha256(content)
        rows.append({
            "id": code_row_id(repo, rel, sha), "repo": repo, "path": rel, "language": language,
            "content": content, "size_bytes": len(content.encode()), "sha256": sha, "license": "PSF-2.0",
            "stars": 1, "forks": 0, "revision_date": None, "source": "local",
        })
    return rows


def html_texts(limit: int, offset: int = 0) -> list[dict]:
    files = sorted(glob.glob(str(DOCS / "library" / "*.html")))[offset : offset + limit]
    rows = []
    for f in files:
        raw = Path(f).read_text(errors="replace")
        text = html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"(?s)<(script|style).*?</\1>", " ", raw)))
        text = re.sub(r"[ \t]+", " ", re.sub(r"\n\s*\n+", "\n\n", text)).strip()
        url = "file://" + f
        rows.append({"id": text_row_id(url, text), "url": url, "text": text, "source": "docs"})
    return rows


def math_texts(limit: int) -> list[dict]:
    rows = []
    with open(BENCH / "math500_test.jsonl") as fh:
        for i, line in enumerate(fh):
            if i >= limit:
                break
            r = json.loads(line)
            text = f"Problem: {r['problem']}\nSolution: {r['solution']}"
            url = f"math500:{i}"
            rows.append({"id": text_row_id(url, text), "url": url, "text": text, "source": "math"})
    return rows


def write_set(path: str, schema, rows: list[dict]) -> None:
    with shards.ShardSetWriter(path, schema, shard_rows=max(1, len(rows) // 2 + 1)) as w:
        w.write_rows(rows)


def build_upstreams(root: str, *, py_pkgs=("json", "email", "http", "urllib", "logging", "xml/dom", "asyncio"),
                    n_html: int = 60, n_math: int = 200, with_general: bool = True, with_math: bool = True,
                    with_c: bool = True) -> None:
    """Write real upstream shard sets under ``root`` (as the upstream assets would)."""
    py = []
    for pkg in py_pkgs:
        files = sorted((STDLIB / pkg).glob("*.py"))
        py += code_rows(files, STDLIB, f"cpython/{pkg.replace('/', '.')}", "python")
    write_set(shards.shard_set_path(root, "code_clean", "python"), CODE_SCHEMA, py)
    if with_c:
        hdrs = sorted(Path("/usr/include").glob("*.h"))[:60]
        write_set(shards.shard_set_path(root, "code_clean", "c"), CODE_SCHEMA,
                  code_rows(hdrs, Path("/usr/include"), "glibc/include", "c"))
    docs = html_texts(n_html * 2)
    write_set(shards.shard_set_path(root, "text_code_clean", "batch-0"), TEXT_SCHEMA, docs[:n_html])
    if with_general:
        write_set(shards.shard_set_path(root, "general_clean"), TEXT_SCHEMA, docs[n_html:])
    if with_math:
        write_set(shards.shard_set_path(root, "math_clean"), TEXT_SCHEMA, math_texts(n_math))


if __name__ == "__main__":  # pragma: no cover - manual inspection helper
    import sys

    build_upstreams(sys.argv[1])
    print(os.listdir(sys.argv[1]))

"""Commit mining: recent non-merge commits (message + unified diff) from git repositories.

This is the report's commit data: each row is a code row (``source = "commit"``) whose
``content`` is the message, a blank line and the diff, plus commit-specific columns. Diffs
are size-bounded: a commit whose diff exceeds ``max_diff_bytes`` is skipped with a reason,
never truncated into something that no longer applies.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from corpus.crawl.gitfetch import _GIT_ENV, GitError, run_git
from corpus.crawl.languages import LanguageTable, default_table
from corpus.schemas import CODE_SCHEMA, code_row_id, content_sha256, extend_schema

COMMIT_SCHEMA = extend_schema(
    CODE_SCHEMA,
    pa.field("commit_sha", pa.string()),
    pa.field("parent_sha", pa.string()),
    pa.field("message", pa.large_string()),
    pa.field("diff", pa.large_string()),
    pa.field("files_changed", pa.list_(pa.string())),
    pa.field("insertions", pa.int64()),
    pa.field("deletions", pa.int64()),
)
_SEP = "\x1e"


@dataclass
class CommitStats:
    commits: int = 0
    skips: Counter[str] = field(default_factory=Counter)
    languages: Counter[str] = field(default_factory=Counter)


def _bounded_output(args: list[str], cwd: str, limit: int, timeout: float) -> tuple[bytes, bool]:
    """stdout of a git command, reading at most ``limit`` + 1 bytes; (data, exceeded)."""
    proc = subprocess.Popen(["git", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=dict(os.environ) | _GIT_ENV)
    try:
        assert proc.stdout is not None
        data = proc.stdout.read(limit + 1)
        exceeded = len(data) > limit
    finally:
        proc.kill() if proc.poll() is None else None
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return data, exceeded


def mine_commits(
    repo_dir: str,
    repo_name: str,
    *,
    max_commits: int = 50,
    max_diff_bytes: int = 64_000,
    license: str | None = None,
    stars: int | None = None,
    forks: int | None = None,
    table: LanguageTable | None = None,
    stats: CommitStats | None = None,
    timeout: float = 120.0,
) -> Iterator[dict[str, Any]]:
    """Yield commit rows, newest first; merge and root/shallow-boundary commits are skipped."""
    table = table or default_table()
    stats = stats if stats is not None else CommitStats()
    try:
        log = run_git(["log", f"-n{max_commits}", "--no-merges", f"--format=%H{_SEP}%P{_SEP}%ct{_SEP}%B%x00"],
                      cwd=repo_dir, timeout=timeout, check=False)
        git_dir = run_git(["rev-parse", "--absolute-git-dir"], cwd=repo_dir, timeout=30).strip()
    except GitError:
        stats.skips["git_error"] += 1
        return
    grafts: set[str] = set()
    try:
        with open(os.path.join(git_dir, "shallow")) as fh:
            grafts = {x.strip() for x in fh if x.strip()}
    except OSError:
        pass
    for rec in log.split("\x00"):
        rec = rec.strip("\n")
        if not rec:
            continue
        try:
            sha, parents, ts, message = rec.split(_SEP, 3)
        except ValueError:
            stats.skips["unparsable_log_entry"] += 1
            continue
        parent = parents.split()[0] if parents.split() else ""
        if not parent or sha in grafts:
            stats.skips["root_or_shallow_boundary"] += 1  # its diff would be the whole tree
            continue
        message = message.strip()
        if not message:
            stats.skips["empty_message"] += 1
            continue
        raw, exceeded = _bounded_output(
            ["show", "--format=", "--no-color", "--no-ext-diff", "--unified=3", sha], repo_dir, max_diff_bytes, timeout
        )
        if exceeded:
            stats.skips["diff_too_large"] += 1
            continue
        if b"\x00" in raw:
            stats.skips["binary_diff"] += 1
            continue
        diff = raw.decode("utf-8", "replace")
        if not diff.strip():
            stats.skips["empty_diff"] += 1
            continue
        files = [line[6:] for line in diff.splitlines() if line.startswith("+++ b/")]
        files += [line[6:] for line in diff.splitlines() if line.startswith("--- a/") and line[6:] not in files]
        ins = sum(1 for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++"))
        dels = sum(1 for line in diff.splitlines() if line.startswith("-") and not line.startswith("---"))
        langs = Counter(c[0] for f in files if (c := table.candidates(f)))
        lang = langs.most_common(1)[0][0] if langs else "diff"
        content = f"{message}\n\n{diff}"
        csha = content_sha256(content)
        stats.commits += 1
        stats.languages[lang] += 1
        yield {
            "id": code_row_id(repo_name, sha, csha),
            "repo": repo_name,
            "path": files[0] if files else "",
            "language": lang,
            "content": content,
            "size_bytes": len(content.encode("utf-8")),
            "sha256": csha,
            "license": license,
            "stars": stars,
            "forks": forks,
            "revision_date": datetime.fromtimestamp(int(ts), tz=timezone.utc),
            "source": "commit",
            "commit_sha": sha,
            "parent_sha": parent,
            "message": message,
            "diff": diff,
            "files_changed": files,
            "insertions": ins,
            "deletions": dels,
        }

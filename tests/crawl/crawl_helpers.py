"""Helpers for the crawl tests: real git repositories made with the git CLI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

MIT_TEXT = """MIT License

Copyright (c) 2024 Example

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.
"""
GIT_ID = ["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]


def git(cwd: str | Path, *args: str, env: dict | None = None) -> str:
    return subprocess.run(["git", *GIT_ID, *args], cwd=cwd, check=True, capture_output=True, timeout=60,
                          env=(dict(os.environ) | (env or {}))).stdout.decode()


def make_git_repo(path: Path, files: dict[str, str], *, commits: list[dict[str, str]] | None = None,
                  license_text: str | None = MIT_TEXT) -> Path:
    """A real git work tree: one commit with ``files`` (+ LICENSE), then one commit per dict."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    if license_text:
        (path / "LICENSE").write_text(license_text)
    for rel, text in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial import", env={"GIT_COMMITTER_DATE": "2024-01-02T03:04:05Z",
                                                          "GIT_AUTHOR_DATE": "2024-01-02T03:04:05Z"})
    for i, change in enumerate(commits or []):
        msg = change.pop("_message", f"change {i}")
        for rel, text in change.items():
            (path / rel).parent.mkdir(parents=True, exist_ok=True)
            (path / rel).write_text(text)
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", msg, env={"GIT_COMMITTER_DATE": f"2024-02-0{i + 1}T00:00:00Z",
                                                  "GIT_AUTHOR_DATE": f"2024-02-0{i + 1}T00:00:00Z"})
    return path

"""Real inputs for the instruct tests: code_clean shard sets built from files on this machine."""

from __future__ import annotations

import glob
import gzip
import json
import os
import re
import threading
import zipfile

from corpus import shards
from corpus.instruct.candidates import ANSWER_SYSTEM, INSTRUCTION_SYSTEM
from corpus.instruct.scoring import CRITERIA, JUDGE_SYSTEM
from corpus.llm.local_server import Reply
from corpus.schemas import CODE_SCHEMA, code_row_id, content_sha256

STDLIB = "/root/.pyenv/versions/3.11.7/lib/python3.11"
JDK_SRCS = ["/usr/lib/jvm/java-17-openjdk-amd64/lib/src.zip", *sorted(glob.glob("/usr/lib/jvm/*/lib/src.zip"))]
PY_FILES = ["statistics.py", "textwrap.py", "colorsys.py", "fractions.py", "heapq.py", "bisect.py", "shlex.py",
            "_strptime.py", "calendar.py", "difflib.py", "fnmatch.py", "base64.py"]
JAVA_FILES = ["java.base/java/lang/Integer.java", "java.base/java/lang/Math.java",
              "java.base/java/util/ArrayList.java", "java.base/java/lang/Character.java"]


def row(language: str, repo: str, path: str, content: str) -> dict:
    sha = content_sha256(content)
    return {"id": code_row_id(repo, path, sha), "repo": repo, "path": path, "language": language,
            "content": content, "size_bytes": len(content.encode()), "sha256": sha, "license": "PSF-2.0",
            "stars": 0, "forks": 0, "revision_date": None, "source": "local"}


def python_rows(names=PY_FILES) -> list[dict]:
    out = []
    for name in names:
        with open(os.path.join(STDLIB, name), encoding="utf-8") as fh:
            out.append(row("python", "cpython", f"Lib/{name}", fh.read()))
    return out


def jdk_src() -> str:
    for p in JDK_SRCS:
        if os.path.isfile(p):
            return p
    raise FileNotFoundError(f"no JDK src.zip among {JDK_SRCS}")


def java_rows() -> list[dict]:
    with zipfile.ZipFile(jdk_src()) as z:
        return [row("java", "openjdk", n, z.read(n).decode("utf-8")) for n in JAVA_FILES]


def js_rows(limit: int = 8) -> list[dict]:
    files = sorted(glob.glob(f"{STDLIB}/site-packages/**/*.js", recursive=True))
    files = [f for f in files if 2_000 < os.path.getsize(f) < 200_000 and ".min." not in f][:limit]
    out = []
    for f in files:
        with open(f, encoding="utf-8", errors="replace") as fh:
            out.append(row("javascript", "site-packages", os.path.relpath(f, STDLIB), fh.read()))
    return out


def write_code_clean(root: str, parts: dict[str, list[dict]]) -> None:
    for lang, rows in parts.items():
        with shards.ShardSetWriter(shards.shard_set_path(root, "code_clean", lang), CODE_SCHEMA,
                                   config={"fixture": lang}) as w:
            w.write_rows(rows)


class FakeModel:
    """Scripted model: names the function in the instruction, answers with the original code
    (every third answer is wrong on purpose), judges with fixed numbers, and misbehaves once
    at the HTTP level (429) to exercise retries."""

    def __init__(self, leak: bool = False):
        self.code: dict[str, str] = {}
        self.n = 0
        self.first = True
        self.lock = threading.Lock()  # the server answers from several threads
        self.leak = leak  # the first answer is a benchmark solution (must be decontaminated)

    def __call__(self, body):
        with self.lock:
            first, self.first = self.first, False
        if first:
            return Reply(status=429, headers={"Retry-After": "0"})
        system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
        if system == INSTRUCTION_SYSTEM:
            code = re.search(r"```python\n(.*?)```", user, re.S).group(1)
            name = re.search(r"def (\w+)", code).group(1)
            self.code[name] = code
            return f"Write a Python function `{name}` that does what its name says."
        if system == ANSWER_SYSTEM and body.get("temperature", 0) > 0:  # a sampled second answer: wrong
            return "Another way:\n\n```python\ndef unrelated():\n    return None\n```"
        if system == ANSWER_SYSTEM:
            name = re.search(r"`(\w+)`", user).group(1)
            with self.lock:
                self.n += 1
                n = self.n
            tests = f"assert callable({name})" if n % 3 else "assert False, 'wrong on purpose'"
            if self.leak and n == 1:
                return f"```python\n{humaneval_solution(0)}```\n\n```python\nassert True\n```"
            return f"Sure.\n\n```python\n{self.code[name]}```\n\nTests:\n```python\n{tests}\n```"
        if system == JUDGE_SYSTEM:
            return "Scores: " + json.dumps({k: 8 for k in CRITERIA})
        return Reply(status=400)


DECONTAM_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "corpus", "decontam", "data")


def humaneval_solution(i: int) -> str:
    with gzip.open(os.path.join(DECONTAM_DATA, "humaneval.jsonl.gz"), "rt") as fh:
        item = [json.loads(line) for line in fh][i]
    return item["prompt"] + item["canonical_solution"]

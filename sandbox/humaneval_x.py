"""HumanEval-X (packaged in sandbox/data/humaneval_x): tasks and the program each one runs.

Why here: the benchmark is the sandbox's multilingual acceptance test (every canonical solution
must pass), and the same assembly serves evaluation of generated completions.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from dataclasses import dataclass

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "humaneval_x")
LANGUAGES = {"cpp": "cpp", "java": "java", "js": "javascript", "go": "go", "rust": "rust"}  # file -> sandbox


@dataclass(frozen=True)
class Task:
    task_id: str
    language: str  # sandbox language name
    code: str  # prompt (Rust: declaration) + completion
    tests: str


def load(lang: str) -> list[dict]:
    """Rows of ``<lang>.jsonl.gz`` (lang: cpp, java, js, go, rust)."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown HumanEval-X language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    with gzip.open(os.path.join(DATA_DIR, f"{lang}.jsonl.gz"), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def task(row: dict, completion: str | None = None) -> Task:
    """The (code, tests) pair the sandbox runs for one row; ``completion`` defaults to the
    canonical solution. As in CodeGeeX's evaluation: Rust programs start from ``declaration``
    (its ``prompt`` is only the doc comment); Go code is its own file of package main beside a
    ``_test.go`` file made of ``test_setup`` + ``test``."""
    lang = row["task_id"].split("/")[0].lower()
    lang = {"javascript": "js", "c++": "cpp"}.get(lang, lang)
    body = row["canonical_solution"] if completion is None else completion
    if lang == "rust":
        code = row["declaration"] + body
    elif lang == "go":
        return Task(row["task_id"], "go", *_go_files(row, body))
    else:
        code = row["prompt"] + body
    return Task(row["task_id"], LANGUAGES[lang], code, row["test"])


# CodeGeeX's IMPORT_HELPER["go"]: packages a Go completion may use without importing them.
GO_PACKAGES = ("math", "strings", "fmt", "strconv", "time", "bytes", "regexp", "sort", "math/rand", "crypto/md5")


def _go_imports(text: str, candidates: list[str]) -> str:
    """An import block of the candidates that ``text`` (comments stripped) uses: Go rejects
    unused imports, and the dataset's import lists are not exact for either file."""
    bare = re.sub(r"//[^\n]*", "", text)
    used = [p for p in dict.fromkeys(candidates) if re.search(rf"\b{re.escape(p.rsplit('/', 1)[-1])}\.", bare)]
    return "import (\n" + "".join(f'    "{p}"\n' for p in used) + ")\n" if used else ""


def _go_files(row: dict, body: str) -> tuple[str, str]:
    """(code, tests) as two files of package main: the prompt (minus its import block) plus the
    completion, and ``test_setup``'s package clause + ``test``, each importing what it uses, as
    CodeGeeX's one-file evaluation does."""
    import_block = row.get("import") or ""
    prompt = row["prompt"].replace(import_block, "", 1) if import_block else row["prompt"]
    code_body = prompt + body
    cands = [*re.findall(r'"([\w./-]+)"', import_block), *GO_PACKAGES]
    code = "package main\n\n" + _go_imports(code_body, cands) + "\n" + code_body
    setup_pkgs = re.findall(r'"([\w./-]+)"', row["test_setup"])
    tests = "package main\n\n" + _go_imports(row["test"], [*setup_pkgs, *cands]) + "\n" + row["test"]
    return code, tests

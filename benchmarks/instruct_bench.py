"""Instruction-synthesis throughput: project vs straightforward baselines, same real data, one run.

A. Snippet mining on Python stdlib files.
   project : corpus.instruct.snippets.mine_file (tree-sitter; the same code mines 8 languages)
   baseline: the usual Python-only script: ``ast.parse`` + ``ast.get_docstring`` +
             ``ast.get_source_segment`` over FunctionDef/ClassDef nodes.
C. LLM client against a local OpenAI-compatible server answering with 50 ms latency.
   project : corpus.llm.OpenAICompatBackend (8 concurrent requests, response cache) on the
             instruction prompts of the mined snippets, then the same prompts again (cache)
   baseline: a plain ``requests.post`` loop, one prompt after another, no cache
B. Verification of generated unit tests (offline candidates from the same files).
   project : corpus.instruct.execution.sandbox_executor (bwrap sandbox, 2 workers)
   baseline: ``subprocess.run([python, file])`` one after another, no isolation at all
             (what a one-off script does; unsafe for untrusted code, shown for cost only).

    .venv/bin/python benchmarks/instruct_bench.py [--files 200] [--verify 60] [--prompts 80]
"""

from __future__ import annotations

import argparse
import ast
import glob
import os
import subprocess
import sys
import tempfile
import time

from corpus.instruct.candidates import OfflineGenerator
from corpus.instruct.execution import ExecRequest, sandbox_executor
from corpus.instruct.snippets import mine_file

STDLIB = os.path.dirname(os.__file__)


def load(n: int) -> list[tuple[str, str]]:
    out = []
    for p in sorted(glob.glob(os.path.join(STDLIB, "**", "*.py"), recursive=True)):
        if "site-packages" in p or "/test" in p:
            continue
        try:
            with open(p, encoding="utf-8") as fh:
                out.append((p, fh.read()))
        except (UnicodeDecodeError, OSError):
            continue
        if len(out) >= n:
            break
    return out


def baseline_mine(files: list[tuple[str, str]]) -> int:
    n = 0
    for _, src in files:
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc.split()) >= 3:
                    seg = ast.get_source_segment(src, node)
                    if seg and 3 <= seg.count("\n") + 1 <= 120:
                        n += 1
    return n


def project_mine(files: list[tuple[str, str]]) -> tuple[int, list[dict]]:
    rows = []
    for path, src in files:
        rows.extend(s.row() for s in mine_file(src, "python", source_id=path, path=path))
    return len(rows), rows


def baseline_run(reqs: list[ExecRequest]) -> int:
    passed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, r in enumerate(reqs):
            path = os.path.join(tmp, f"t{i}.py")
            with open(path, "w") as fh:
                fh.write(r.code + "\n\n" + (r.tests or ""))
            try:
                p = subprocess.run([sys.executable, path], capture_output=True, timeout=r.timeout_s)
                passed += p.returncode == 0
            except subprocess.TimeoutExpired:
                pass
    return passed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--verify", type=int, default=60, help="candidates to verify in part B")
    ap.add_argument("--prompts", type=int, default=80, help="LLM prompts in part C")
    args = ap.parse_args()
    files = load(args.files)
    mb = sum(len(s) for _, s in files) / 1e6
    print(f"data: {len(files)} stdlib files, {mb:.1f} MB")

    t = time.perf_counter()
    nb = baseline_mine(files)
    tb = time.perf_counter() - t
    t = time.perf_counter()
    npj, rows = project_mine(files)
    tp = time.perf_counter() - t
    print(f"A mining  baseline(ast): {len(files) / tb:8.1f} files/s {mb / tb:6.2f} MB/s  {nb} snippets")
    print(f"A mining  project(t-s) : {len(files) / tp:8.1f} files/s {mb / tp:6.2f} MB/s  {npj} snippets")
    print(f"A ratio project/baseline throughput: {tb / tp:.2f}x")

    gen = OfflineGenerator(sandbox_executor(workers=2))
    skips: dict[str, int] = {}
    fns = [r for r in rows if r["kind"] == "function"][: args.verify * 4]
    cands = [c for c in gen.generate(fns, skips) if c.tests][: args.verify]
    reqs = [ExecRequest(c.answer, "python", c.tests) for c in cands]
    t = time.perf_counter()
    pb = baseline_run(reqs)
    tb = time.perf_counter() - t
    t = time.perf_counter()
    res = sandbox_executor(workers=2)(reqs)
    tp = time.perf_counter() - t
    pp = sum(r.passed for r in res)
    print(f"B verify  baseline(subprocess, no isolation): {len(reqs) / tb:6.1f} samples/s  passed {pb}/{len(reqs)}")
    print(f"B verify  project(sandbox, 2 workers)       : {len(reqs) / tp:6.1f} samples/s  passed {pp}/{len(reqs)}")
    print(f"B ratio project/baseline throughput: {tb / tp:.2f}x")


    llm_part(rows[: args.prompts])


def llm_part(snippets: list[dict]) -> None:
    import requests

    from corpus.instruct.candidates import instruction_prompt
    from corpus.llm import OpenAICompatBackend
    from corpus.llm.local_server import LocalChatServer, Reply

    convs = [instruction_prompt(s) for s in snippets]
    with LocalChatServer(lambda body: Reply(text="Write the function.", delay_s=0.05)) as srv, \
            tempfile.TemporaryDirectory() as cache:
        t = time.perf_counter()
        for c in convs:
            r = requests.post(srv.base_url + "/chat/completions", json={"model": "m", "messages": c}, timeout=30)
            r.json()["choices"][0]["message"]["content"]
        tb = time.perf_counter() - t
        b = OpenAICompatBackend(srv.base_url, "m", max_concurrency=8, cache_dir=cache)
        t = time.perf_counter()
        b.chat_many(convs)
        tp = time.perf_counter() - t
        t = time.perf_counter()
        b.chat_many(convs)
        tc = time.perf_counter() - t
    n = len(convs)
    print(f"C llm     baseline(sequential requests) : {n / tb:7.1f} prompts/s")
    print(f"C llm     project(8 concurrent)         : {n / tp:7.1f} prompts/s  (ratio {tb / tp:.2f}x)")
    print(f"C llm     project re-run (cache hits)   : {n / tc:7.1f} prompts/s  (ratio {tb / tc:.2f}x), "
          f"usage {b.usage.as_dict()['requests']} requests / {b.usage.as_dict()['cache_hits']} cache hits")


if __name__ == "__main__":
    main()

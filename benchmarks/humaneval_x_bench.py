"""HumanEval-X canonical solutions through the sandbox: pass rate and runs/s per language.

Every task's canonical solution (164 x C++, Java, JavaScript, Go, Rust) runs with its tests on
one backend via ``execute_many``. The goal (issue 13) is >= 97% passed per language; every
non-passing task is listed with its status and the tail of its message/stderr. Toolchain set-up
done once per machine (Rust crates, Go's warm cache) happens before the clock starts.

    PYTHONPATH=. .venv/bin/python benchmarks/humaneval_x_bench.py [--workers 2] [--backend bwrap]
        [--languages cpp,java,js,go,rust] [--limit N]
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sandbox  # noqa: E402
from sandbox import humaneval_x as hx  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--backend", default="bwrap")
    ap.add_argument("--languages", default=",".join(hx.LANGUAGES))
    ap.add_argument("--limit", type=int, default=None, help="first N tasks per language (default all 164)")
    ap.add_argument("--timeout-s", type=float, default=20.0)
    args = ap.parse_args()
    rows_out, failures = [], []
    for lang in args.languages.split(","):
        tasks = [hx.task(r) for r in hx.load(lang)[: args.limit]]
        avail = sandbox.available_languages(args.backend)  # detects (and sets up) the toolchain
        if not avail.get(tasks[0].language):
            print(f"{lang}: no {tasks[0].language} toolchain in {args.backend}; skipped", file=sys.stderr)
            continue
        reqs = [sandbox.Request(code=t.code, language=t.language, tests=t.tests, timeout_s=args.timeout_s,
                                memory_mb=1024, backend=args.backend) for t in tasks]
        t0 = time.perf_counter()
        results = sandbox.execute_many(reqs, workers=args.workers)
        wall = time.perf_counter() - t0
        counts = collections.Counter(r.status for r in results)
        passed = counts.get("passed", 0)
        mean_compile = sum(r.phases.get("compile", 0.0) for r in results) / len(results)
        mean_run = sum(r.phases.get("run", 0.0) for r in results) / len(results)
        rows_out.append((lang, len(tasks), passed, 100.0 * passed / len(tasks), len(tasks) / wall, wall,
                         mean_compile, mean_run))
        for t, r in zip(tasks, results, strict=True):
            if r.status != "passed":
                failures.append((t.task_id, r.status, (r.message + " " + r.stderr[-200:]).strip().replace("\n", " ")))
        print(f"{lang}: {dict(counts)} in {wall:.1f} s", file=sys.stderr, flush=True)
    print(f"\nbackend {args.backend}, {args.workers} workers, {os.cpu_count()} cores\n")
    print("| language | tasks | passed | pass rate | runs/s | wall s | mean compile s | mean run s |")
    print("|---|---|---|---|---|---|---|---|")
    for lang, n, p, rate, rps, wall, mc, mr in rows_out:
        print(f"| {lang} | {n} | {p} | {rate:.1f}% | {rps:.2f} | {wall:.1f} | {mc:.3f} | {mr:.3f} |")
    for tid, status, why in failures:
        print(f"- {tid}: {status}: {why[:300]}")
    return 0 if all(row[3] >= 97.0 for row in rows_out) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Sandbox speed, side by side with a bare subprocess (the baseline), in one run.

For each backend (bwrap with its per-slot spawn servers, bwrap without them, docker pool):
  * per-run overhead over a bare ``subprocess.run`` of the same program: a Python
    hello-world, a C++ hello-world (compile + run) and the C++ run step alone; bare and
    sandboxed runs are interleaved so load from other jobs hits both alike;
  * trivial Python runs/s with ``execute_many`` on a worker pool, against bare subprocesses
    on a same-sized thread pool.
Goals (issue 5): <= 30 ms overhead per run, >= 40 runs/s with bwrap on 2 cores, docker pool
within 3x of bwrap.

    PYTHONPATH=. .venv/bin/python benchmarks/sandbox_bench.py [--runs 30] [--batch 200] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sandbox  # noqa: E402
from sandbox.languages import host_toolchain  # noqa: E402

PY_HELLO = "print('hello')\n"
CPP_HELLO = '#include <cstdio>\nint main() { std::puts("hello"); return 0; }\n'
VARIANTS = {"bwrap": ("bwrap", "1"), "bwrap-direct": ("bwrap", "0"), "docker": ("docker", "1")}


class Bare:
    """The baseline: the same programs with a plain subprocess, no isolation."""

    def __init__(self, tmp: str):
        self.py = host_toolchain("python").tools["python"]
        self.cxx = host_toolchain("cpp").tools["cc"]
        self.src, self.exe = os.path.join(tmp, "h.cpp"), os.path.join(tmp, "h")
        with open(self.src, "w") as f:
            f.write(CPP_HELLO)

    def python(self) -> float:
        t = time.perf_counter()
        p = subprocess.run([self.py, "-I", "-S", "-c", PY_HELLO], capture_output=True, timeout=30)
        assert p.stdout == b"hello\n"
        return time.perf_counter() - t

    def cpp_run(self) -> float:
        t = time.perf_counter()
        assert subprocess.run([self.exe], capture_output=True, timeout=30).stdout == b"hello\n"
        return time.perf_counter() - t

    def cpp_full(self) -> float:
        t = time.perf_counter()
        subprocess.run([self.cxx, "-std=gnu++17", "-O2", "-pipe", "-o", self.exe, self.src, "-lm"], check=True,
                       timeout=60)
        self.cpp_run()
        return time.perf_counter() - t


def sandboxed(code: str, language: str, backend: str) -> sandbox.Result:
    r = sandbox.execute(code, language, backend=backend)
    assert r.status == "passed" and r.stdout == "hello\n", r
    return r


def measure(variant: str, bare: Bare, runs: int, batch: int, workers: int) -> tuple[list[tuple], float]:
    backend, server = VARIANTS[variant]
    os.environ["CODECORPUS_SANDBOX_ZYGOTE"] = server
    if backend == "docker":
        from sandbox.backends import docker

        docker.pool().warm(workers)
    sandboxed(PY_HELLO, "python", backend)  # warm slots, servers, caches
    sandboxed(CPP_HELLO, "cpp", backend)
    b_py, s_py, b_full, s_full, b_run, s_run = [], [], [], [], [], []
    for i in range(runs):
        b_py.append(bare.python())
        t = time.perf_counter()
        sandboxed(PY_HELLO, "python", backend)
        s_py.append(time.perf_counter() - t)
        if i % 4 == 0:
            b_full.append(bare.cpp_full())
            t = time.perf_counter()
            r = sandboxed(CPP_HELLO, "cpp", backend)
            s_full.append(time.perf_counter() - t)
            s_run.append(r.phases["run"])
            b_run.append(bare.cpp_run())
    med = statistics.median
    rows = [(variant, "python hello", med(b_py), med(s_py)), (variant, "cpp compile+run", med(b_full), med(s_full)),
            (variant, "cpp run step", med(b_run), med(s_run))]
    reqs = [sandbox.Request(code=PY_HELLO, language="python", backend=backend)] * batch
    t = time.perf_counter()
    res = sandbox.execute_many(reqs, workers=workers)
    rps = batch / (time.perf_counter() - t)
    bad = [r for r in res if r.status != "passed"]
    assert not bad, f"{variant}: {len(bad)}/{len(res)} not passed, e.g. {bad[0]}"
    return rows, rps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=30, help="interleaved runs per latency figure (median)")
    ap.add_argument("--batch", type=int, default=200, help="requests in the throughput batch")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"subset of {','.join(VARIANTS)}")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="sandbox-bench-")
    bare = Bare(tmp)
    bare.cpp_full()
    t = time.perf_counter()
    with ThreadPoolExecutor(a.workers) as pool:
        list(pool.map(lambda _: bare.python(), range(a.batch)))
    bare_rps = a.batch / (time.perf_counter() - t)

    rows, rps = [], {}
    for variant in a.variants.split(","):
        ok, why = sandbox.api.backend_available(VARIANTS[variant][0])
        if not ok:
            print(f"# {variant}: unavailable ({why})")
            continue
        r, rps[variant] = measure(variant, bare, a.runs, a.batch, a.workers)
        rows += r

    print(f"machine: {os.cpu_count()} CPUs, shared with other jobs (load average "
          f"{os.getloadavg()[0]:.1f}); workers={a.workers}; runs={a.runs}; batch={a.batch}")
    print(f"{'backend':<13} {'program':<16} {'bare ms':>8} {'sandbox ms':>11} {'overhead ms':>12}")
    for variant, prog, b, s in rows:
        print(f"{variant:<13} {prog:<16} {b * 1000:>8.1f} {s * 1000:>11.1f} {(s - b) * 1000:>12.1f}")
    print(f"\nthroughput, trivial Python hello-world, {a.workers} workers:")
    print(f"  {'bare subprocess':<15}: {bare_rps:7.1f} runs/s")
    for variant, v in rps.items():
        print(f"  {variant:<15}: {v:7.1f} runs/s   ({v / bare_rps:.2f}x of bare)")
    if "bwrap" in rps and "docker" in rps:
        print(f"  docker / bwrap : {rps['docker'] / rps['bwrap']:.2f}x")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Scale-out: the sharded stages on 1 and 2 workers, in-process, on a process pool and on Ray.

Corpus: real code nobody here wrote (the Python standard library and this interpreter's
site-packages, .py files, found through ``sysconfig``; the JDK's ``lib/src.zip`` .java files
when a JDK is installed), written once as a CODE_SCHEMA shard set of many input shards. For each
stage (near dedup, decontamination, quality filters) and each executor, one run on the same
input; every run's output must have the same sha256s as the local single-process run.

Reported: MB/s (wall), speed-up of 2 workers over 1 (scaling efficiency = speed-up / 2),
Ray with 1 worker against the local single process, Ray's per-task overhead (no-op tasks), and
the peak RSS of the busiest worker process.

    .venv/bin/python benchmarks/scale_bench.py [--mb 200] [--stages dedup,decontam,quality]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import sysconfig
import threading
import time
import zipfile
from collections.abc import Iterator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from corpus import shards  # noqa: E402
from corpus.executor import ExecutorSpec, make_executor  # noqa: E402
from corpus.schemas import CODE_SCHEMA, code_row_id, content_sha256  # noqa: E402

CONFIGS = [
    ("local x1", ExecutorSpec("local")),
    ("process x2", ExecutorSpec("process", workers=2)),
    ("ray x1", ExecutorSpec("ray", workers=1)),
    ("ray x2", ExecutorSpec("ray", workers=2)),
]


def _sources() -> Iterator[tuple[str, str, bytes]]:
    """(repo, path, bytes) of real code found on this machine, in a fixed order, streamed."""
    for base in sorted({sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]}):
        for f in sorted(glob.glob(os.path.join(base, "**", "*.py"), recursive=True)):
            try:
                with open(f, "rb") as fh:
                    yield "python", os.path.relpath(f, base), fh.read()
            except OSError:
                continue
    for z in sorted(glob.glob("/usr/lib/jvm/*/lib/src.zip")):
        try:
            zf = zipfile.ZipFile(z)
        except (OSError, zipfile.BadZipFile):
            continue  # a dangling link (JDK without its sources package)
        with zf:
            for name in sorted(n for n in zf.namelist() if n.endswith(".java")):
                yield "java", name, zf.read(name)
        return


def build_corpus(path: str, mb: int) -> float:
    if shards.is_committed(path):
        return shards.read_manifest(path).bytes / 1e6
    rows, total, seen = [], 0, set()
    for lang, rel, data in _sources():
        text = data.decode("utf-8", "replace")
        key = content_sha256(text)
        if total >= mb * 1_000_000:
            break
        rows.append({"id": code_row_id(lang, rel + str(len(seen)), key), "repo": lang, "path": rel,
                     "language": "python" if lang == "python" else "java", "content": text,
                     "size_bytes": len(data), "sha256": key, "license": "MIT", "stars": 0, "forks": 0,
                     "revision_date": None, "source": "local"})
        seen.add(key)
        total += len(data)
    with shards.ShardSetWriter(path, CODE_SCHEMA, shard_rows=1_000) as w:
        for i in range(0, len(rows), 1_000):
            w.write_rows(rows[i:i + 1_000])
    return total / 1e6


def _proc_table() -> dict[int, tuple[int, str, int]]:
    """pid -> (ppid, cmdline, rss bytes) from /proc (no psutil needed)."""
    out = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as fh:
                ppid = int(fh.read().decode(errors="replace").rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{d}/statm", "rb") as fh:
                rss = int(fh.read().split()[1]) * page
            with open(f"/proc/{d}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        out[int(d)] = (ppid, cmd, rss)
    return out


class PeakRSS:
    """Largest RSS of any one worker process (this process's descendants, Ray's ``ray::``
    workers), sampled every 0.2 s while a run goes."""

    def __init__(self) -> None:
        self.peak, self._stop = 0, threading.Event()

    def __enter__(self) -> PeakRSS:
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            table = _proc_table()
            for pid, (_ppid, cmd, rss) in table.items():
                p, hops = pid, 0
                while p in table and p != me and hops < 8:
                    p, hops = table[p][0], hops + 1
                if (p == me and pid != me) or "ray::" in cmd:
                    self.peak = max(self.peak, rss)
            self._stop.wait(0.2)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def run_stage(stage: str, src: str, out: str, spec: ExecutorSpec) -> tuple[float, list[tuple[str, str]], int]:
    from corpus.decontam import Decontaminator
    from corpus.dedup import DedupConfig, run_dedup
    from corpus.quality import QualityFilter, load_rules

    ex = make_executor(spec)
    try:
        with PeakRSS() as rss:
            t0 = time.perf_counter()
            if stage == "dedup":
                run_dedup(shards.shard_files(src), out, out + "_clusters", DedupConfig(), executor=ex)
            elif stage == "decontam":
                Decontaminator.from_config().filter_shard_set(src, out, out + "_removed", executor=ex)
            else:
                QualityFilter(load_rules()).filter_shard_set(src, out, out + "_dropped", "python", executor=ex)
            dt = time.perf_counter() - t0
    finally:
        ex.close()
    m = shards.read_manifest(out)
    return dt, [(f["name"], f["sha256"]) for f in m.files], rss.peak


def _noop(item: int, shared: object) -> int:
    return item


def task_overhead(n: int = 200) -> dict[str, float]:
    """Seconds per no-op task: what the executor itself costs a shard."""
    out = {}
    for name, spec in (("local", ExecutorSpec("local")), ("process x2", ExecutorSpec("process", workers=2)),
                       ("ray x2", ExecutorSpec("ray", workers=2))):
        ex = make_executor(spec)
        try:
            list(ex.map(_noop, range(4)))  # warm up (worker start)
            t0 = time.perf_counter()
            list(ex.map(_noop, range(n)))
            out[name] = (time.perf_counter() - t0) / n
        finally:
            ex.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--stages", default="dedup,decontam,quality")
    ap.add_argument("--work", default=os.path.join(ROOT, ".bench", "scale"))
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    src = os.path.join(args.work, f"corpus-{args.mb}mb-1k")
    mb = build_corpus(src, args.mb)
    print(f"corpus: {mb:.1f} MB of real code in {len(shards.shard_files(src))} input shards ({src})")
    results: dict[str, dict[str, dict]] = {}
    for stage in args.stages.split(","):
        results[stage] = {}
        ref = None
        for name, spec in CONFIGS:
            out = os.path.join(args.work, f"{stage}-{name.replace(' ', '')}")
            dt, digest, peak = run_stage(stage, src, out, spec)
            ref = ref or digest
            same = digest == ref
            results[stage][name] = {"s": round(dt, 2), "MB/s": round(mb / dt, 2), "peak_rss_MB": round(peak / 1e6),
                                    "same_bytes": same}
            print(f"{stage:<9} {name:<11} {dt:7.1f} s {mb / dt:7.1f} MB/s  peak worker RSS {peak / 1e6:6.0f} MB  "
                  f"same bytes as local x1: {same}", flush=True)
            if not same:
                print(f"  MISMATCH: {name} output differs from local x1", file=sys.stderr)
        r = results[stage]
        for kind, one, two in (("process", "local x1", "process x2"), ("ray", "ray x1", "ray x2")):
            speed = r[one]["s"] / r[two]["s"]
            print(f"{stage:<9} {kind}: 2 workers = {speed:.2f}x one worker (efficiency {speed / 2:.0%})")
        print(f"{stage:<9} ray x1 / local x1 time: {r['ray x1']['s'] / r['local x1']['s']:.2f} (goal <= 1.15)")
    ov = task_overhead()
    print("per-task overhead (no-op task): " + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in ov.items()))
    print(json.dumps({"corpus_mb": round(mb, 1), "results": results,
                      "task_overhead_ms": {k: round(v * 1e3, 3) for k, v in ov.items()}}, sort_keys=True))
    return 0 if all(v["same_bytes"] for r in results.values() for v in r.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Near-dedup throughput: codecorpus vs datasketch (MinHash.update_batch + MinHashLSH), one run.

Corpus: real Python files of this machine (stdlib + both site-packages trees, vendored copies
included), written once as a CODE_SCHEMA shard set. Each side runs in its own fresh single-
process child (1 torch / DuckDB thread) so peak RSS is its own:

  codecorpus: run_dedup end to end: read Parquet, normalize+hash, shingle, sign, LSH spill,
              DuckDB grouping, union-find, keep-policy, write kept rows + clusters table.
  datasketch: read the same Parquet, same tokens and 5-gram shingle sets, MinHash(256) with
              update_batch, MinHashLSH(threshold=0.7, 256) insert + query, union-find. (No
              normalization, no exact dedup and no output writing: it is given the easier job.)

datasketch runs at ~2 MB/s, so by default it gets --limit files (every k-th file of the corpus); codecorpus runs on
the same subset (the ratio) and on the whole corpus. Usage:

  .venv/bin/python benchmarks/dedup_bench.py [--files 20000] [--limit 3000]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SOURCES = (
    "/root/.pyenv/versions/3.11.7/lib/python3.11",  # stdlib + its site-packages
    os.path.join(ROOT, ".venv", "lib", "python3.11", "site-packages"),
)
NON_ALPHA = re.compile(r"[^A-Za-z_0-9]")


def build_corpus(path: str, n_files: int) -> None:
    """The first n_files .py files (sorted paths, 1 MB cap) as a CODE_SCHEMA shard set."""
    from corpus import shards
    from corpus.schemas import CODE_SCHEMA, code_row_id, content_sha256

    if shards.read_manifest(path) is not None and shards.read_manifest(path).extra.get("n_files") == n_files:
        return
    files: list[str] = []
    for src in SOURCES:
        files += sorted(glob.glob(os.path.join(src, "**", "*.py"), recursive=True))
    files = [f for f in files if os.path.isfile(f) and os.path.getsize(f) <= 1_000_000][:n_files]
    with shards.ShardSetWriter(path, CODE_SCHEMA, extra={"n_files": n_files}, shard_rows=5000) as w:
        batch = []
        for f in files:
            with open(f, "rb") as fh:
                text = fh.read().decode("utf-8", "replace")
            sha = content_sha256(text)
            batch.append(dict(id=code_row_id("local", f, sha), repo="local", path=f, language="python",
                              content=text, size_bytes=len(text), sha256=sha, license=None, stars=None,
                              forks=None, revision_date=None, source="local"))
            if len(batch) == 2000:
                w.write_rows(batch)
                batch = []
        w.write_rows(batch)


def subset(src: str, dst: str, limit: int) -> None:
    """Every k-th row of the corpus (k = rows // limit): a spread-out, deterministic sample."""
    import pyarrow as pa

    from corpus import shards

    m = shards.read_manifest(dst)
    if m is not None and m.extra.get("limit") == limit and m.extra.get("sample") == "every-kth" and m.extra.get("src") == shards.read_manifest(src).content_hash:
        return
    step = max(1, shards.count_rows(src) // limit)
    with shards.ShardSetWriter(dst, shards.read_schema(src),
                               extra={"limit": limit, "sample": "every-kth",
                                      "src": shards.read_manifest(src).content_hash}) as w:
        row = taken = 0
        for b in shards.iter_batches(src):
            idx = [i for i in range(b.num_rows) if (row + i) % step == 0][: limit - taken]
            row += b.num_rows
            if idx:
                w.write_batch(b.take(pa.array(idx)))
                taken += len(idx)


def side_codecorpus(path: str, work: str) -> dict:
    import numpy as np

    from corpus import shards
    from corpus.dedup import DedupConfig, MinHasher, run_dedup
    from corpus.dedup.normalize import normalized_hashes

    # Process start-up, like imports for both sides, is not timed: loading the numba kernels
    # from their cache (compiling them on the very first run) is reported on its own.
    t, cpu = time.perf_counter(), time.process_time()
    MinHasher().sign(["warm up the kernels please"])
    normalized_hashes(np.frombuffer(b"x \n", np.uint8), np.array([0, 3]))
    startup = time.process_time() - cpu
    t, cpu = time.perf_counter(), time.process_time()
    st = run_dedup(shards.shard_files(path), os.path.join(work, "out"), os.path.join(work, "clusters"),
                   DedupConfig(threads=1))
    dt, cpu = time.perf_counter() - t, time.process_time() - cpu
    # Rows in a multi-row cluster whose content has >= 10 tokens (what datasketch is given).
    members: dict[str, list[str]] = {}
    for b in shards.iter_batches(os.path.join(work, "clusters"), columns=["id", "cluster_id"]):
        for i, c in zip(b.column("id").to_pylist(), b.column("cluster_id").to_pylist()):
            members.setdefault(c, []).append(i)
    long_ids = set()
    for b in shards.iter_batches(path, columns=["id", "content"]):
        for i, text in zip(b.column("id").to_pylist(), b.column("content").to_pylist()):
            if sum(1 for x in NON_ALPHA.split(text) if x) >= 10:
                long_ids.add(i)
    ids = sorted(i for m in members.values() if len(m) > 1 for i in m if i in long_ids)
    return {"seconds": dt, "cpu_seconds": cpu, "startup_cpu_seconds": startup, "bytes": st.input_bytes,
            "rows": st.input_rows, "near": st.near_duplicates,
            "exact": st.exact_duplicates, "phases": st.phase_seconds, "phases_cpu": st.phase_cpu_seconds,
            "clustered_ids": ids}


def side_datasketch(path: str) -> dict:
    from datasketch import MinHash, MinHashLSH

    from corpus import shards

    t, cpu = time.perf_counter(), time.process_time()
    lsh = MinHashLSH(threshold=0.7, num_perm=256)
    sigs: dict[str, MinHash] = {}
    order: list[str] = []
    nbytes = 0
    for b in shards.iter_batches(path, columns=["id", "content"]):
        for i, text in zip(b.column("id").to_pylist(), b.column("content").to_pylist()):
            nbytes += len(text.encode("utf-8", "surrogatepass"))
            toks = [x for x in NON_ALPHA.split(text) if x]
            shingles = {" ".join(toks[k : k + 5]) for k in range(len(toks) - 4)}
            if len(toks) < 10:  # same short-document rule as codecorpus' default
                continue
            m = MinHash(num_perm=256)
            m.update_batch([s.encode("utf-8", "surrogatepass") for s in shingles])
            lsh.insert(i, m)
            sigs[i] = m
            order.append(i)
    parent = {i: i for i in order}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i in order:
        for j in lsh.query(sigs[i]):
            a, b2 = find(i), find(j)
            if a != b2:
                parent[max(a, b2)] = min(a, b2)
    roots = {find(i) for i in order}
    dt, cpu = time.perf_counter() - t, time.process_time() - cpu
    sizes: dict[str, int] = {}
    for i in order:
        sizes[find(i)] = sizes.get(find(i), 0) + 1
    clustered = sorted(i for i in order if sizes[find(i)] > 1)
    return {"seconds": dt, "cpu_seconds": cpu, "bytes": nbytes, "rows": len(order),
            "near_and_exact": len(order) - len(roots), "clustered_ids": clustered}


def child(args: argparse.Namespace) -> None:
    import pyarrow as pa

    pa.set_cpu_count(1)  # one core per side: Parquet decoding threads too
    pa.set_io_thread_count(1)
    if args.side == "codecorpus":
        out = side_codecorpus(args.path, args.work)
    else:
        out = side_datasketch(args.path)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))


def run_child(side: str, path: str, work: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", POLARS_MAX_THREADS="1")
    p = subprocess.run([sys.executable, __file__, "--side", side, "--path", path, "--work", work],
                       capture_output=True, text=True, env=env, check=False)
    line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
    if p.returncode or not line:
        raise SystemExit(f"{side} failed:\n{p.stderr[-3000:]}")
    return json.loads(line[-1][7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=20_000, help="corpus size in files")
    ap.add_argument("--limit", type=int, default=3_000, help="files given to datasketch (and to the same-files ratio)")
    ap.add_argument("--work", default="/tmp/codecorpus-dedup-bench", help="scratch folder (kept for re-runs)")
    ap.add_argument("--side", choices=["codecorpus", "datasketch"], help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        child(args)
        return
    full, sub = os.path.join(args.work, "corpus"), os.path.join(args.work, "subset")
    t = time.perf_counter()
    build_corpus(full, args.files)
    subset(full, sub, args.limit)
    print(f"corpus ready in {time.perf_counter() - t:.1f}s: {full}")

    def mbps(r: dict) -> float:
        return r["bytes"] / 1e6 / r["seconds"]

    def mbps_cpu(r: dict) -> float:
        return r["bytes"] / 1e6 / r["cpu_seconds"]

    ds = run_child("datasketch", sub, os.path.join(args.work, "ds"))
    cc_sub = run_child("codecorpus", sub, os.path.join(args.work, "cc_sub"))
    cc = run_child("codecorpus", full, os.path.join(args.work, "cc_full"))
    rows = [
        ("datasketch (subset)", ds), ("codecorpus (subset)", cc_sub), ("codecorpus (full corpus)", cc),
    ]
    print(f"\n{'side':26s} {'files':>6s} {'MB':>7s} {'wall s':>7s} {'cpu s':>7s} {'MB/s wall':>9s} "
          f"{'MB/s cpu':>9s} {'peak RSS MB':>11s}")
    for name, r in rows:
        n = r.get("rows") if "near_and_exact" not in r else args.limit
        print(f"{name:26s} {n:6d} {r['bytes'] / 1e6:7.1f} {r['seconds']:7.2f} {r['cpu_seconds']:7.2f} "
              f"{mbps(r):9.2f} {mbps_cpu(r):9.2f} {r['peak_rss_mb']:11.0f}")
    print(f"\nspeed-up on the same {args.limit} files, one core each: {mbps(cc_sub) / mbps(ds):.1f}x wall, "
          f"{mbps_cpu(cc_sub) / mbps_cpu(ds):.1f}x per CPU-second "
          f"(full corpus vs datasketch subset: {mbps_cpu(cc) / mbps_cpu(ds):.1f}x per CPU-second)")
    print(f"duplicates removed on the subset: datasketch {ds['near_and_exact']} (near+exact, no exact pass), "
          f"codecorpus {cc_sub['near']} near + {cc_sub['exact']} exact")
    a, b = set(ds["clustered_ids"]), set(cc_sub["clustered_ids"])
    print(f"files in a duplicate cluster (>= 10 tokens), subset: datasketch {len(a)}, codecorpus {len(b)}, "
          f"both {len(a & b)} (agreement {len(a & b) / max(1, len(a | b)):.3f})")
    print("codecorpus phases (full corpus, wall s): " + json.dumps(cc["phases"]))
    print("codecorpus phases (full corpus, cpu s):  " + json.dumps(cc["phases_cpu"]))
    print(f"codecorpus one-time start-up (numba kernel load or lazy torch import), not in the figures: "
          f"{cc['startup_cpu_seconds']:.2f} cpu s")


if __name__ == "__main__":
    main()

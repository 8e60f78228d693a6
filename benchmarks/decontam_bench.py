"""Decontamination throughput: vectorized n-gram hashing vs a plain Python set, same data, one run.

Real code nobody here wrote: the Python standard library + site-packages (.py) and the JDK
sources (.java from src.zip), all four bundled benchmarks loaded (HumanEval, MBPP, GSM8K,
MATH-500), 10-grams. Throughput is reported per core from process CPU time (the machine is
shared, so wall time is noisy; both code paths are single-threaded) and from wall time.

    .venv/bin/python benchmarks/decontam_bench.py [--mb 48] [--baseline-mb 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import zipfile

import pyarrow as pa

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from corpus import shards  # noqa: E402
from corpus.decontam import Decontaminator, SetDecontaminator  # noqa: E402

PY_ROOTS = ["/root/.pyenv/versions/3.11.7/lib/python3.11"]
JDK_SRC = [p for p in ("/usr/lib/jvm/java-17-openjdk-amd64/lib/src.zip",
                       "/usr/lib/jvm/temurin-25-jdk-amd64/lib/src.zip") if os.path.isfile(p)]


def load_corpus(limit_bytes: int) -> list[str]:
    """Alternate Python and Java files until ``limit_bytes`` of UTF-8 text (deterministic order)."""
    py, java = [], []
    for root in PY_ROOTS:
        for dp, dns, fns in os.walk(root):
            dns.sort()
            for fn in sorted(fns):
                if fn.endswith(".py"):
                    py.append(os.path.join(dp, fn))
    for zpath in JDK_SRC[:1]:
        with zipfile.ZipFile(zpath) as z:
            java = [(zpath, n) for n in sorted(z.namelist()) if n.endswith(".java")]
    out, total = [], 0
    zf = zipfile.ZipFile(JDK_SRC[0]) if JDK_SRC else None
    for i in range(max(len(py), len(java))):
        for src in (py, java):
            if i >= len(src):
                continue
            try:
                if src is py:
                    with open(src[i], encoding="utf-8") as fh:
                        text = fh.read()
                else:
                    text = zf.read(src[i][1]).decode("utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            out.append(text)
            total += len(text.encode())
            if total >= limit_bytes:
                return out
    return out


def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    r = fn()
    return r, time.perf_counter() - w0, time.process_time() - c0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=48, help="MB of code for the project (default 48)")
    ap.add_argument("--baseline-mb", type=float, default=16, help="MB (prefix of the same data) for the baseline")
    args = ap.parse_args()

    texts = load_corpus(int(args.mb * 1e6))
    mb = sum(len(t.encode()) for t in texts) / 1e6
    print(f"corpus: {len(texts)} real files (.py + .java), {mb:.1f} MB")
    d, wb, cb = timed(lambda: Decontaminator.from_config())
    print(f"project index: {d.n_ngrams:,} benchmark 10-grams from {len(d.items)} items in {wb:.2f}s")
    ref, wr, cr = timed(lambda: SetDecontaminator(d.items, ngram=d.n, min_informative=d.min_informative))
    print(f"baseline index: {len(ref.index):,} tuples in {wr:.2f}s")

    arr = pa.array(texts, type=pa.large_string())
    hits, w1, c1 = timed(lambda: d.find_array(arr))
    print(f"project (in-memory find_array): {mb / c1:7.1f} MB/s/core (cpu {c1:.2f}s, wall {w1:.2f}s), "
          f"{len(hits)} files flagged")

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in")
        with shards.ShardSetWriter(src, pa.schema([("id", pa.string()), ("content", pa.large_string())])) as w:
            w.write_batch(pa.table({"id": [str(i) for i in range(len(texts))], "content": arr}))
        stats, w2, c2 = timed(lambda: d.filter_shard_set(src, os.path.join(tmp, "o"), os.path.join(tmp, "r")))
        print(f"project (shard set -> shard sets, Parquet read+write): {mb / c2:7.1f} MB/s/core "
              f"(cpu {c2:.2f}s, wall {w2:.2f}s), removed {stats.rows_removed}")

    base, base_mb = [], 0.0
    for t in texts:
        base.append(t)
        base_mb += len(t.encode()) / 1e6
        if base_mb >= args.baseline_mb:
            break
    flagged, w3, c3 = timed(lambda: {i for i, t in enumerate(base) if not ref.is_clean(t)})
    print(f"baseline (plain Python set, first {base_mb:.1f} MB): {base_mb / c3:7.1f} MB/s/core "
          f"(cpu {c3:.2f}s, wall {w3:.2f}s), {len(flagged)} files flagged")
    dirty = pa.array([it.text for it in d.items] * 4, type=pa.large_string())
    dmb = sum(len(t.encode()) for t in dirty.to_pylist()) / 1e6
    dhits, w4, c4 = timed(lambda: d.find_array(dirty))
    print(f"project, worst case (every row is a benchmark item, {dmb:.1f} MB): {dmb / c4:7.1f} MB/s/core "
          f"(cpu {c4:.2f}s), {len(dhits)}/{len(dirty)} rows flagged")
    same = flagged == {i for i in hits if i < len(base)}
    print(f"same files flagged on the shared prefix: {same}")
    print(f"ratio project/baseline (in-memory, per core): {(mb / c1) / (base_mb / c3):.1f}x; "
          f"goal >= 50 MB/s/core: {'met' if mb / c1 >= 50 else 'NOT met'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

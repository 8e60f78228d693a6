"""Crawl throughput: codecorpus's crawler vs a straightforward baseline, same real data, one run.

Baseline (what a typical one-off crawl script does, e.g. the per-repo loops in BigCode's
data scripts): ``os.walk``, read every file whole, language by extension (same table, to be
fair), UTF-8 or charset-normalizer decoding, size and NUL checks after reading.

Two scenarios on the same tree:
  all       every language (both read everything they keep);
  partition one language partition (python), as the code_files asset runs it: the project
            decides by name and ``lstat`` before any read; the baseline must read to filter.

    .venv/bin/python benchmarks/crawl_bench.py [--source stdlib] [--source site-packages:PATH] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import time

from charset_normalizer import from_bytes

from corpus.crawl import CrawlConfig, Crawler, default_table, parse_source, resolve

MAX_BYTES = 1_000_000


def baseline(roots: list[str], language: str | None) -> tuple[int, int]:
    table = default_table()
    files = nbytes = 0
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in table.vendored_dirs)
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if os.path.islink(path):
                    continue
                try:
                    with open(path, "rb") as fh:
                        data = fh.read()
                except OSError:
                    continue
                if len(data) > MAX_BYTES or b"\x00" in data:
                    continue
                ext = os.path.splitext(name)[1].lower()
                lang = table.by_extension.get(ext)
                if lang is None or (language and lang != language):
                    continue
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError:
                    best = from_bytes(data).best()
                    if best is None:
                        continue
                    text = str(best)
                files += 1
                nbytes += len(text.encode("utf-8", "surrogatepass"))
    return files, nbytes


def project(sources: list[str], language: str | None) -> tuple[int, int]:
    cfg = CrawlConfig(sources=[parse_source(s) for s in sources], allow_unknown_license=True,
                      include_notebooks=False)
    repos = resolve(cfg, "/tmp/codecorpus-bench-cache")
    for r in repos:
        r.license = None  # benchmark measures crawling, not license policy: keep every repo
    crawler = Crawler(cfg)
    files = nbytes = 0
    for row in crawler.run(repos, [language] if language else None):
        files += 1
        nbytes += row["size_bytes"]
    return files, nbytes


def roots_of(sources: list[str]) -> list[str]:
    cfg = CrawlConfig(sources=[parse_source(s) for s in sources])
    out = []
    for r in resolve(cfg, "/tmp/codecorpus-bench-cache"):
        tree = r.tree
        if tree is not None and hasattr(tree, "root"):
            for name in tree.only or sorted(os.listdir(tree.root)):
                if name not in tree.exclude:
                    out.append(os.path.join(tree.root, name))
    return sorted(set(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", action="append", help="crawl source strings (default: stdlib)")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    sources = args.source or ["stdlib"]
    roots = roots_of(sources)
    print(f"sources: {sources} ({len(roots)} top-level entries)")
    for scenario, lang in (("all", None), ("partition", "python")):
        best: dict[str, tuple[float, int, int]] = {}
        for _ in range(args.repeat):
            for name in ("baseline", "codecorpus"):
                t0 = time.perf_counter()
                files, nbytes = baseline(roots, lang) if name == "baseline" else project(sources, lang)
                dt = time.perf_counter() - t0
                if name not in best or dt < best[name][0]:
                    best[name] = (dt, files, nbytes)
        for name, (dt, files, nbytes) in best.items():
            print(f"{scenario:9s} {name:10s} {files:7d} files {nbytes / 1e6:8.1f} MB  {dt:6.2f} s  "
                  f"{files / dt:8.0f} files/s  {nbytes / 1e6 / dt:6.1f} MB/s")
        ratio = best["baseline"][0] / best["codecorpus"][0]
        print(f"{scenario:9s} speedup codecorpus/baseline: {ratio:.2f}x")


if __name__ == "__main__":
    main()

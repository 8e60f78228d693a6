"""Definition load time: what every run worker and the code server pay before doing anything.

Loads ``pipelines.definitions`` (and resolves the repository) in a fresh interpreter, for this
checkout and for a baseline git ref (exported with ``git archive``), interleaved, ``--repeat``
times each; prints the median wall time, peak RSS and which heavy modules got imported.

    python benchmarks/defload_bench.py --baseline-ref 19039c9 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("torch", "training", "transformers", "matplotlib", "tokenizers", "fasttext", "numba", "hypothesis")
PROBE = f"""
import json, resource, sys, time
t = time.perf_counter()
import pipelines.definitions as d
d.defs.get_repository_def()
dt = time.perf_counter() - t
print(json.dumps({{"seconds": dt, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""


def load_once(tree: str) -> dict:
    env = dict(os.environ, PYTHONPATH=tree)
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=tree, env=env, capture_output=True, text=True,
                         timeout=600, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def export(ref: str, dest: str) -> str:
    """The tree of ``ref`` (a commit of this repository) unpacked under ``dest``."""
    archive = subprocess.run(["git", "-C", REPO, "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    return dest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-ref", help="git ref to compare against (e.g. the commit before lazy imports)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    trees = {"this checkout": REPO}
    with tempfile.TemporaryDirectory() as tmp:
        if args.baseline_ref:
            trees = {f"baseline {args.baseline_ref}": export(args.baseline_ref, tmp)} | trees
        results: dict[str, list[dict]] = {k: [] for k in trees}
        for _ in range(args.repeat):
            for name, tree in trees.items():  # interleaved: both see the same machine load
                results[name].append(load_once(tree))
    print(f"load average {os.getloadavg()[0]:.1f}, {args.repeat} loads each")
    for name, runs in results.items():
        secs = [r["seconds"] for r in runs]
        print(f"{name}: median {statistics.median(secs):.2f} s (min {min(secs):.2f}, max {max(secs):.2f}), "
              f"peak RSS {statistics.median(r['rss_mb'] for r in runs):.0f} MB, heavy modules: {runs[-1]['heavy']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Tokenizer throughput: the project's fast encoder vs Hugging Face ``tokenizers`` encode_batch.

Same vocabulary (a byte-level BPE trained here with corpus.tokenize.train_bpe on a sample of
the corpus), same real corpus (the CPython stdlib .py files plus the Python HTML docs, as
text), one process, one run. Both sides encode documents as ordinary text (HF:
``encode_special_tokens = True``) and the ids are compared document by document.

    .venv/bin/python benchmarks/tokenize_bench.py [--mb 24] [--vocab 16384] [--threads 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from corpus.tokenize.encoder import FastEncoder  # noqa: E402
from corpus.tokenize.tokenizer import sample_texts, train_bpe  # noqa: E402

STDLIB = "/root/.pyenv/versions/3.11.7/lib/python3.11"
DOCS = "/usr/share/doc/python3-doc/html"


def corpus(max_bytes: int) -> list[str]:
    files = sorted(glob.glob(f"{STDLIB}/**/*.py", recursive=True))
    files = [f for f in files if "site-packages" not in f]
    html_files = sorted(glob.glob(f"{DOCS}/**/*.html", recursive=True))
    out, total = [], 0
    for f in [x for pair in zip(files, html_files + [None] * len(files)) for x in pair if x]:
        try:
            raw = open(f, encoding="utf-8", errors="replace").read()
        except OSError:
            continue
        if f.endswith(".html"):
            raw = re.sub(r"<[^>]+>", " ", raw)
        out.append(raw)
        total += len(raw.encode())
        if total >= max_bytes:
            break
    return out


def timed(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=24, help="corpus size in MB (default 24)")
    ap.add_argument("--vocab", type=int, default=16384)
    ap.add_argument("--threads", type=int, default=2, help="encoder threads for the project side")
    ap.add_argument("--repeat", type=int, default=3, help="best of N timings per side")
    args = ap.parse_args()

    texts = corpus(int(args.mb * 1e6))
    nbytes = sum(len(t.encode()) for t in texts)
    print(f"corpus: {len(texts)} documents, {nbytes / 1e6:.1f} MB (stdlib .py + Python HTML docs)")
    t = time.perf_counter()
    tok = train_bpe(sample_texts(texts[::4], 4_000_000), args.vocab)
    print(f"trained vocab {tok.get_vocab_size()} in {time.perf_counter() - t:.1f}s")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "tokenizer.json")
        tok.save(path)
        enc = FastEncoder.from_file(path, threads=args.threads)
    hf = enc.hf
    hf.encode_special_tokens = True

    t_hf, hf_out = timed(lambda: [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)], args.repeat)
    t_fast, fast_out = timed(lambda: enc.encode_batch(texts), args.repeat)
    ntok = sum(len(x) for x in fast_out)
    same = sum(a == b for a, b in zip(hf_out, fast_out))
    print(f"identical ids: {same}/{len(texts)} documents")
    print(f"{'encoder':<42} {'seconds':>8} {'MB/s':>8} {'Mtok/s':>8}")
    for name, dt in ((f"HF tokenizers encode_batch (rayon, {os.cpu_count()} cpus)", t_hf),
                     (f"codecorpus FastEncoder (tiktoken, {args.threads} threads)", t_fast)):
        print(f"{name:<42} {dt:8.2f} {nbytes / dt / 1e6:8.2f} {ntok / dt / 1e6:8.2f}")
    print(f"speedup: {t_hf / t_fast:.2f}x")
    return 0 if same == len(texts) else 1


if __name__ == "__main__":
    raise SystemExit(main())

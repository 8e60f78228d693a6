"""Calibrate the regex proxy for the chars-per-token rule against a real BPE code tokenizer.

The published minimums (Python 2.5, Java 2.9, JavaScript 2.6 characters per token) are for a
BPE code tokenizer. No such tokenizer ships offline here (tiktoken downloads its encodings on
first use), so this script trains a byte-level BPE (Hugging Face ``tokenizers``, vocab 49,152 as
StarCoder's) on real local code, then measures per language the ratio between BPE tokens and
proxy tokens (``\\w+|[^\\w\\s]``). A file at the BPE threshold T has proxy chars/token ~= T * ratio,
so the proxy threshold is T * median(ratio). Prints a table for BENCHMARKS.md.

    .venv/bin/python benchmarks/quality_calibrate_cpt.py [--mb-per-language 3]
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import statistics
import zipfile

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

PROXY = re.compile(r"\w+|[^\w\s]")
BPE_MIN = {"python": 2.5, "java": 2.9, "javascript": 2.6, "c": 2.5}  # c: generic default, no published value
JDK = [p for p in ("/usr/lib/jvm/java-17-openjdk-amd64/lib/src.zip", "/usr/lib/jvm/temurin-25-jdk-amd64/lib/src.zip")
       if os.path.isfile(p)]


def _take(texts, limit):
    out, n = [], 0
    for t in texts:
        if t and len(t) < 500_000:
            out.append(t)
            n += len(t)
            if n >= limit:
                break
    return out


def _files(pattern):
    for p in sorted(glob.glob(pattern, recursive=True)):
        try:
            with open(p, encoding="utf-8") as fh:
                yield fh.read()
        except (OSError, UnicodeDecodeError):
            continue


def _java():
    if not JDK:
        return
    with zipfile.ZipFile(JDK[0]) as z:
        for n in sorted(z.namelist()):
            if n.endswith(".java"):
                yield z.read(n).decode("utf-8", "replace")


def corpus(limit: int) -> dict[str, list[str]]:
    return {
        "python": _take(_files("/root/.pyenv/versions/3.11.7/lib/python3.11/**/*.py"), limit),
        "java": _take(_java(), limit),
        "javascript": _take((t for t in _files("/usr/lib/node_modules/npm/**/*.js")), limit),
        "c": _take(_files("/usr/include/**/*.h"), limit),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb-per-language", type=float, default=3.0)
    args = ap.parse_args()
    data = corpus(int(args.mb_per_language * 1e6))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=49_152, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    # Train on even-indexed files, measure on the odd ones (held out: a BPE measured on its own
    # training files compresses them better than it would unseen code).
    tok.train_from_iterator((t for texts in data.values() for t in texts[0::2]), trainer=trainer)
    print("| language | files | MB | median BPE chars/token | median proxy chars/token | median BPE/proxy tokens "
          "| published BPE minimum | proxy minimum |")
    print("|---|---|---|---|---|---|---|---|")
    for lang, all_texts in data.items():
        texts = all_texts[1::2]
        enc = tok.encode_batch(texts)
        bpe_cpt, proxy_cpt, ratio = [], [], []
        for t, e in zip(texts, enc, strict=True):
            n_proxy = len(PROXY.findall(t))
            if not e.ids or not n_proxy:
                continue
            bpe_cpt.append(len(t) / len(e.ids))
            proxy_cpt.append(len(t) / n_proxy)
            ratio.append(len(e.ids) / n_proxy)
        r = statistics.median(ratio)
        t_bpe = BPE_MIN[lang]
        print(f"| {lang} | {len(bpe_cpt)} | {sum(map(len, texts)) / 1e6:.1f} | {statistics.median(bpe_cpt):.2f} | "
              f"{statistics.median(proxy_cpt):.2f} | {r:.3f} | {t_bpe} | {t_bpe * r:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

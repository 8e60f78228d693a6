"""Real documents and a small trained tokenizer shared by the tokenize tests."""

from __future__ import annotations

from pathlib import Path

from corpus.tokenize.tokenizer import train_bpe

STDLIB = Path("/root/.pyenv/versions/3.11.7/lib/python3.11")
PY_INCLUDE = Path("/root/.pyenv/versions/3.11.7/include/python3.11")
JDK_SRC = Path("/usr/lib/jvm/java-17-openjdk-amd64/lib/src.zip")


def stdlib_texts(pkgs=("json", "email", "http", "urllib")) -> list[str]:
    out = []
    for p in pkgs:
        out += [f.read_text(encoding="utf-8") for f in sorted((STDLIB / p).glob("*.py"))]
    return out


def non_ascii_texts(limit: int = 12) -> list[str]:
    """Real stdlib files that contain non-ASCII characters (codec tables, docs with accents...)."""
    out = []
    for f in sorted(STDLIB.glob("**/*.py")):
        if "site-packages" in f.parts:
            continue
        try:
            t = f.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if any(ord(c) > 127 for c in t) and len(t) < 200_000:
            out.append(t)
            if len(out) >= limit:
                break
    return out


MULTILINGUAL = [
    "# 日本語のコメント\ndef 関数(x):\n    return x * 2  # ü ß é ø\n",
    "Ελληνικά κείμενο — «quotes» … 😀🎉 \u200b zero-width\ttab\r\nCRLF",
    "emoji family 👨‍👩‍👧‍👦 and combining e\u0301 vs é, Korean 한국어, Arabic العربية",
    "  leading spaces\n\n\n   \t  \n trailing   ",
    "literal specials in text: <|endoftext|> <|fim_prefix|> must stay plain text",
]


_TRAINED: dict[int, str] = {}


def trained_tokenizer(path: Path, vocab: int = 1024) -> Path:
    """A BPE trained on real stdlib files (trained once per test session, written to ``path``)."""
    if vocab not in _TRAINED:
        _TRAINED[vocab] = train_bpe(stdlib_texts() + non_ascii_texts(6) + MULTILINGUAL, vocab).to_str()
    path.write_text(_TRAINED[vocab], encoding="utf-8")
    return path

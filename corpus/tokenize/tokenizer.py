"""Byte-level BPE tokenizer with the Qwen2 pre-tokenizer and the Qwen2.5-Coder special tokens.

Training uses Hugging Face ``tokenizers``; afterwards the merge list is re-derived from the
vocabulary ranks (the procedure transformers uses to convert tiktoken files), so the saved
``tokenizer.json`` gives exactly the ids of a tiktoken ``Encoding`` built from the same ranks.
That is what lets :mod:`corpus.tokenize.encoder` encode several times faster than HF while
staying id-for-id identical. An existing ``tokenizer.json`` (e.g. the real Qwen2.5 one) is
accepted as long as it carries every special token.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

#: Qwen2 / Qwen2.5 pre-tokenizer regex (one digit per pre-token, contraction-aware).
QWEN2_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

#: GPT-2's pattern, used by tokenizer.json files whose ByteLevel pre-tokenizer has use_regex=true.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

ENDOFTEXT = "<|endoftext|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"
FIM_PAD = "<|fim_pad|>"
REPO_NAME = "<|repo_name|>"
FILE_SEP = "<|file_sep|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"

#: The Qwen2.5-Coder special tokens, in the id order a freshly trained tokenizer gives them.
SPECIAL_TOKENS: tuple[str, ...] = (
    ENDOFTEXT, FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX, FIM_PAD, REPO_NAME, FILE_SEP, IM_START, IM_END,
)
MIN_VOCAB = 256 + len(SPECIAL_TOKENS)


class TokenizerError(ValueError):
    """A tokenizer file is unusable; the message names the file and what to do."""


_SURROGATES = re.compile("[\ud800-\udfff]")


def sanitize(text: str) -> tuple[str, int]:
    """``text`` with lone surrogates (from ``surrogateescape`` decoding) replaced by U+FFFD, and
    how many were replaced: they cannot be UTF-8 encoded, so no tokenizer can take them."""
    try:
        text.encode("utf-8")
        return text, 0
    except UnicodeEncodeError:
        return _SURROGATES.subn("\ufffd", text)


@lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable-character map used by byte-level BPE vocabularies."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


@lru_cache(maxsize=1)
def unicode_to_byte() -> dict[str, int]:
    return {c: b for b, c in byte_to_unicode().items()}


def token_bytes(token: str) -> bytes:
    """The raw bytes of a byte-level vocabulary entry (e.g. ``'Ġdef'`` -> ``b' def'``)."""
    table = unicode_to_byte()
    try:
        return bytes(table[c] for c in token)
    except KeyError as exc:
        raise TokenizerError(f"vocabulary entry {token!r} is not byte-level BPE (character {exc})") from exc


def _bpe_parts(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    """tiktoken's merge loop restricted to ranks below ``max_rank`` (finds a token's merge pair)."""
    parts = [bytes([b]) for b in token]
    while True:
        best_i, best_rank = -1, max_rank
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < best_rank:
                best_i, best_rank = i, r
        if best_i < 0:
            return parts
        parts[best_i : best_i + 2] = [parts[best_i] + parts[best_i + 1]]


def merges_from_ranks(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """Merge list that makes HF BPE behave exactly like tiktoken BPE over ``ranks``.

    For every multi-byte token (in rank order) the merge is the pair tiktoken would have
    joined to form it; tokens tiktoken can never form get no merge (as in transformers'
    tiktoken converter).
    """
    merges = []
    for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(tok) < 2:
            continue
        parts = _bpe_parts(ranks, tok, rank)
        if len(parts) == 2:
            merges.append((parts[0], parts[1]))
    return merges


def _untrained() -> Tokenizer:
    tok = Tokenizer(models.BPE(fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    return tok


def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> Tokenizer:
    """Train a byte-level BPE (Qwen2 pre-tokenizer, special tokens first) on ``texts``.

    The returned tokenizer's merges are re-derived from its ranks (see module docstring).
    """
    if vocab_size < MIN_VOCAB:
        raise TokenizerError(f"vocab_size={vocab_size} is too small: need at least {MIN_VOCAB} (256 bytes + specials)")
    base = _untrained()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    base.train_from_iterator((sanitize(t)[0] for t in texts), trainer=trainer)
    raw = json.loads(base.to_str())
    vocab = raw["model"]["vocab"]
    ranks = {token_bytes(t): i for t, i in vocab.items() if t not in SPECIAL_TOKENS}
    b2u = byte_to_unicode()
    raw["model"]["merges"] = [
        ["".join(b2u[x] for x in a), "".join(b2u[x] for x in b)] for a, b in merges_from_ranks(ranks)
    ]
    tok = Tokenizer.from_str(json.dumps(raw, ensure_ascii=False))
    return tok


@dataclass(frozen=True)
class TokenizerInfo:
    """What downstream stages need to know about a tokenizer file."""

    path: str
    sha256: str
    vocab_size: int
    special_tokens: dict[str, int]
    normalizer: str | None
    pattern: str = QWEN2_PATTERN

    @property
    def eos_id(self) -> int:
        return self.special_tokens[ENDOFTEXT]


def load_tokenizer(path: str | Path) -> tuple[Tokenizer, TokenizerInfo]:
    """Load and validate a ``tokenizer.json``: it must be byte-level BPE with every special token."""
    p = Path(path)
    if not p.is_file():
        raise TokenizerError(f"{p}: tokenizer file not found (set tokenizer_path to a tokenizer.json)")
    raw_bytes = p.read_bytes()
    try:
        raw = json.loads(raw_bytes)
        tok = Tokenizer.from_str(raw_bytes.decode("utf-8"))
    except Exception as exc:  # json errors, UnicodeDecodeError, and the bare Exception tokenizers raises
        raise TokenizerError(f"{p}: not a Hugging Face tokenizer.json ({exc})") from exc
    model = raw.get("model") or {}
    if model.get("type") != "BPE":
        raise TokenizerError(f"{p}: model type {model.get('type')!r} is not BPE; a byte-level BPE tokenizer is needed")
    added = {a["content"]: a["id"] for a in raw.get("added_tokens", [])}
    missing = [t for t in SPECIAL_TOKENS if t not in added]
    if missing:
        raise TokenizerError(
            f"{p}: missing special token(s) {missing}; the Qwen2.5-Coder formats need all of "
            f"{list(SPECIAL_TOKENS)} (add them as added_tokens or train a tokenizer with the `tokenizer` asset)"
        )
    norm = raw.get("normalizer")
    norm_type = None
    if norm:
        norm_type = norm.get("type")
        if norm_type not in ("NFC",):
            raise TokenizerError(f"{p}: unsupported normalizer {norm_type!r} (only none or NFC, as in Qwen2)")
    info = TokenizerInfo(
        pattern=pretokenizer_pattern(raw.get("pre_tokenizer"), p),
        path=str(p),
        sha256=hashlib.sha256(raw_bytes).hexdigest(),
        vocab_size=tok.get_vocab_size(with_added_tokens=True),
        special_tokens={t: added[t] for t in SPECIAL_TOKENS},
        normalizer=norm_type,
    )
    return tok, info


def pretokenizer_pattern(pre: dict | None, where: Path | str) -> str:
    """The split regex of a byte-level pre-tokenizer (Qwen2: Split(regex) + ByteLevel)."""
    steps = (pre or {}).get("pretokenizers", [pre] if pre else [])
    pattern = None
    has_byte_level = False
    for st in steps:
        if st.get("type") == "Split" and isinstance(st.get("pattern"), dict) and "Regex" in st["pattern"]:
            if pattern is not None or st.get("behavior") != "Isolated" or st.get("invert"):
                break
            pattern = st["pattern"]["Regex"]
        elif st.get("type") == "ByteLevel":
            if st.get("add_prefix_space"):
                break
            has_byte_level = True
            if st.get("use_regex", True):
                if pattern is not None:
                    break
                pattern = GPT2_PATTERN
        else:
            break
    else:
        if has_byte_level and pattern is not None:
            return pattern
    raise TokenizerError(
        f"{where}: unsupported pre_tokenizer {json.dumps(pre)[:200]}; expected a byte-level BPE with an "
        "isolated regex Split (Qwen2) or a ByteLevel(use_regex) pre-tokenizer without prefix space (GPT-2)"
    )


def sample_texts(texts: Iterable[str], max_bytes: int) -> Iterator[str]:
    """Yield texts until ``max_bytes`` UTF-8 bytes were produced (training-sample cap)."""
    total = 0
    for t in texts:
        if total >= max_bytes:
            return
        total += len(t.encode("utf-8", "surrogatepass"))
        yield t

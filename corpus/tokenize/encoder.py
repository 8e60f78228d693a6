"""Fast encoder: a tiktoken ``Encoding`` built from a byte-level BPE ``tokenizer.json``.

tiktoken's Rust BPE is several times faster than Hugging Face ``tokenizers`` on the same
vocabulary and releases the GIL, so batches are encoded on threads. Ids are identical to the
HF tokenizer when the merges were derived from the ranks (every tokenizer this project trains,
and the real Qwen2 files, which were converted from tiktoken); :func:`FastEncoder.verify`
checks it on sample texts.

Documents are encoded as *ordinary* text: a literal ``<|endoftext|>`` inside a document is
plain text, never a control token (the HF equivalent is ``encode_special_tokens = True``).
Special tokens are inserted by id by the formatters (FIM, repo-level, packing).
Lone surrogates (text decoded with ``surrogateescape`` upstream) cannot be UTF-8 encoded; they
are replaced by U+FFFD and counted, never dropped silently.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import tiktoken
from tokenizers import Tokenizer

from corpus.tokenize.tokenizer import TokenizerInfo, load_tokenizer, sanitize, token_bytes

__all__ = ["EncodeStats", "FastEncoder", "sanitize"]

@dataclass
class EncodeStats:
    """Counters a stage reports in its metadata."""

    documents: int = 0
    surrogates_replaced: int = 0
    docs_with_surrogates: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class FastEncoder:
    """tiktoken-backed encoder equivalent to a byte-level BPE ``tokenizer.json``."""

    def __init__(self, hf: Tokenizer, info: TokenizerInfo, threads: int = 2) -> None:
        self.hf = hf
        self.info = info
        self.threads = max(1, threads)
        vocab = hf.get_vocab(with_added_tokens=False)
        specials = info.special_tokens
        ranks = {}
        for tok, i in vocab.items():
            if tok in specials:
                continue
            ranks[token_bytes(tok)] = i
        self._nfc = info.normalizer == "NFC"
        self.enc = tiktoken.Encoding(
            name=f"codecorpus-{info.sha256[:12]}",
            pat_str=info.pattern,
            mergeable_ranks=ranks,
            special_tokens=dict(specials),
        )
        self.stats = EncodeStats()

    @classmethod
    def from_file(cls, path: str, threads: int = 2) -> FastEncoder:
        hf, info = load_tokenizer(path)
        return cls(hf, info, threads=threads)

    @property
    def vocab_size(self) -> int:
        return self.info.vocab_size

    def special(self, name: str) -> int:
        return self.info.special_tokens[name]

    def _prep(self, text: str) -> str:
        text, n = sanitize(text)
        self.stats.documents += 1
        if n:
            self.stats.surrogates_replaced += n
            self.stats.docs_with_surrogates += 1
        return unicodedata.normalize("NFC", text) if self._nfc else text

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` as ordinary text (special-token strings are not interpreted)."""
        return self.enc.encode_ordinary(self._prep(text))

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        prepped = [self._prep(t) for t in texts]
        if self.threads == 1 or len(prepped) < 8:
            return [self.enc.encode_ordinary(t) for t in prepped]
        return self.enc.encode_ordinary_batch(prepped, num_threads=self.threads)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``; invalid UTF-8 (a cut multi-byte character) becomes U+FFFD."""
        return self.enc.decode_bytes(list(ids)).decode("utf-8", errors="replace")

    def verify(self, texts: Sequence[str]) -> list[int]:
        """Indices of ``texts`` where this encoder and the HF tokenizer disagree (empty = identical)."""
        self.hf.encode_special_tokens = True
        try:
            bad = []
            for i, t in enumerate(texts):
                t = self._prep(t)
                ref = self.hf.encode(t, add_special_tokens=False).ids
                if ref != self.enc.encode_ordinary(t):
                    bad.append(i)
            return bad
        finally:
            self.hf.encode_special_tokens = False

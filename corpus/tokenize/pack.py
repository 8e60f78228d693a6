"""Packing: documents joined by ``<|endoftext|>`` into fixed ``seq_len`` rows.

Every document is followed by ``eos_id``; the stream is cut into rows of ``seq_len`` tokens
(a long document simply continues in the next row, as in GPT/Qwen pre-training). For each
token the packer keeps the loss mask (1 for document tokens and their EOS), the document index
within its row (0, 1, 2, ... restarting per row; a continued document is 0 in its new row) and
the source index. The last partial row is padded with ``pad_id`` (mask 0, source
``PAD_SOURCE``, its own document index) unless ``drop_last`` is set, so no token is lost.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from corpus.tokenize.format import PAD_SOURCE

Rows = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # tokens, mask, docs, src; each [n, seq_len]


class Packer:
    """Streams documents in and full rows out (bounded memory: < ``flush_rows`` rows pending)."""

    def __init__(self, seq_len: int, eos_id: int, pad_id: int, flush_rows: int = 256) -> None:
        self.seq_len = seq_len
        self.eos_id = eos_id
        self.pad_id = pad_id
        self.flush_rows = flush_rows
        self._tok: list[np.ndarray] = []
        self._mask: list[np.ndarray] = []
        self._doc: list[np.ndarray] = []
        self._src: list[np.ndarray] = []
        self._pending = 0
        self._serial = 0
        self.documents = 0
        self.tokens = 0

    def add(self, ids: Sequence[int] | np.ndarray, source: int, mask: Sequence[int] | np.ndarray | None = None) -> None:
        """Queue one document (EOS appended here) from source index ``source``."""
        n = len(ids) + 1
        tok = np.empty(n, dtype=np.uint32)
        tok[:-1] = ids
        tok[-1] = self.eos_id
        m = np.ones(n, dtype=np.uint8)
        if mask is not None:
            m[:-1] = mask
        self._tok.append(tok)
        self._mask.append(m)
        self._doc.append(np.full(n, self._serial, dtype=np.int64))
        self._src.append(np.full(n, source, dtype=np.uint8))
        self._serial += 1
        self._pending += n
        self.documents += 1
        self.tokens += n

    def ready(self) -> bool:
        return self._pending >= self.flush_rows * self.seq_len

    def drain(self, final: bool = False, drop_last: bool = False) -> list[Rows]:
        """Full rows packed so far (and, if ``final``, the padded last row)."""
        out: list[Rows] = []
        if not self._pending:
            return out
        L = self.seq_len
        tok = np.concatenate(self._tok)
        mask = np.concatenate(self._mask)
        doc = np.concatenate(self._doc)
        src = np.concatenate(self._src)
        n_full = len(tok) // L
        cut = n_full * L
        if n_full:
            d = doc[:cut].reshape(n_full, L)
            out.append((tok[:cut].reshape(n_full, L), mask[:cut].reshape(n_full, L),
                   (d - d[:, :1]).astype(np.uint16), src[:cut].reshape(n_full, L)))
        rest = len(tok) - cut
        if final:
            if rest and not drop_last:
                pad = L - rest
                d = doc[cut:] - doc[cut]
                out.append((
                    np.concatenate([tok[cut:], np.full(pad, self.pad_id, np.uint32)])[None],
                    np.concatenate([mask[cut:], np.zeros(pad, np.uint8)])[None],
                    np.concatenate([d, np.full(pad, d[-1] + 1)]).astype(np.uint16)[None],
                    np.concatenate([src[cut:], np.full(pad, PAD_SOURCE, np.uint8)])[None],
                ))
            self._tok, self._mask, self._doc, self._src, self._pending = [], [], [], [], 0
            return out
        self._tok, self._mask, self._doc, self._src = [tok[cut:]], [mask[cut:]], [doc[cut:]], [src[cut:]]
        self._pending = rest
        return out

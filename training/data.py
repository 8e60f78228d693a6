"""Token shards for training: memory-mapped reads and a resumable, seeded batch sampler.

Reads the ``codecorpus-tokens-v1`` format documented in docs/STAGES.md straight from the
files (numpy memmaps), so training needs neither Dagster nor the tokenizer stage's code:
``part-NNNNN.tokens.u32`` / ``.mask.u8`` / ``.docs.u16``, each ``[n_seq, seq_len]`` C order,
listed as side files (with ``rows``) in the set's ``_manifest.json``. Only the rows of a
batch are ever copied into RAM.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from corpus import shards

FORMAT = "codecorpus-tokens-v1"
_ARRAYS = (("tokens", "u32", np.dtype("<u4")), ("mask", "u8", np.dtype("u1")), ("docs", "u16", np.dtype("<u2")))
_TOKENS_RE = re.compile(r"^part-(\d+)\.tokens\.u32$")


class TokenShardError(ValueError):
    """A token shard set cannot be used as given; the message names the path and the fix."""


@dataclass
class Batch:
    """One micro-batch, shifted for next-token prediction: ``targets[t] = tokens[t + 1]``."""

    input_ids: torch.Tensor  # [B, T-1] int64
    targets: torch.Tensor  # [B, T-1] int64
    loss_mask: torch.Tensor  # [B, T-1] bool, mask of the *target* token
    doc_ids: torch.Tensor  # [B, T-1] int64
    indices: np.ndarray  # dataset rows in this batch (for error messages)

    def to(self, device: torch.device | str) -> Batch:
        nb = str(device).startswith("cuda")
        return Batch(self.input_ids.to(device, non_blocking=nb), self.targets.to(device, non_blocking=nb),
                     self.loss_mask.to(device, non_blocking=nb), self.doc_ids.to(device, non_blocking=nb), self.indices)


class TokenShardDataset:
    """Random access to the sequences of a committed token shard set (memory-mapped)."""

    def __init__(self, path: str) -> None:
        self.path = path
        manifest = shards.read_manifest(path)
        if manifest is None:
            raise TokenShardError(f"{path}: no _manifest.json; not a committed token shard set (materialize it first)")
        self.manifest = manifest
        extra = manifest.extra or {}
        if extra.get("format") != FORMAT:
            raise TokenShardError(f"{path}: manifest extra.format is {extra.get('format')!r}, expected {FORMAT!r}")
        try:
            self.seq_len = int(extra["seq_len"])
            self.vocab_size = int(extra["vocab_size"])
        except (KeyError, TypeError, ValueError) as exc:
            raise TokenShardError(f"{path}: manifest extra lacks seq_len / vocab_size ({exc})") from exc
        self.eos_id = extra.get("eos_id")
        self.pad_id = extra.get("pad_id")
        self.special_tokens: dict[str, int] = dict(extra.get("special_tokens") or {})
        self.tokenizer_sha256 = extra.get("tokenizer_sha256")
        # Optional per-token source index (corpus/tokenize/format.py): loss per source in evaluation.
        self.sources: list[str] = list(extra.get("sources") or [])
        side = {f["name"]: f for f in manifest.side_files}
        parts = sorted(m.group(1) for m in (_TOKENS_RE.match(n) for n in side) if m)
        self.has_sources = bool(parts) and all(f"part-{p}.src.u8" in side for p in parts)
        arrays_spec = _ARRAYS + ((("src", "u8", np.dtype("u1")),) if self.has_sources else ())
        self._arrays: list[dict[str, np.memmap]] = []
        offsets = [0]
        for part in parts:
            rows = side[f"part-{part}.tokens.u32"].get("rows")
            if rows is None:
                raise TokenShardError(f"{path}: side file part-{part}.tokens.u32 has no 'rows' in the manifest")
            arrays = {}
            for key, suffix, dtype in arrays_spec:
                name = f"part-{part}.{key}.{suffix}"
                if name not in side:
                    raise TokenShardError(f"{path}: shard {part} lacks {name} (listed files: {sorted(side)[:6]}...)")
                full = os.path.join(path, name)
                want = int(rows) * self.seq_len * dtype.itemsize
                size = os.path.getsize(full) if os.path.exists(full) else -1
                if size != want:
                    raise TokenShardError(
                        f"{full}: {size} bytes, expected {want} (= {rows} rows x seq_len {self.seq_len} x "
                        f"{dtype.itemsize}); the file is truncated or the manifest's seq_len is wrong: re-run tokenization"
                    )
                arrays[key] = (np.memmap(full, dtype=dtype, mode="r", shape=(int(rows), self.seq_len))
                               if rows else np.zeros((0, self.seq_len), dtype=dtype))
            self._arrays.append(arrays)
            offsets.append(offsets[-1] + int(rows))
        self._offsets = np.asarray(offsets, dtype=np.int64)
        if len(self) == 0:
            raise TokenShardError(f"{path}: the token shard set holds no sequences")

    def __len__(self) -> int:
        return int(self._offsets[-1])

    @property
    def content_hash(self) -> str:
        return self.manifest.content_hash

    def rows(self, indices: np.ndarray | list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tokens, mask, docs) arrays [n, seq_len] for dataset rows ``indices`` (copied)."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"{self.path}: row index out of range 0..{len(self) - 1}")
        shard = np.searchsorted(self._offsets, idx, side="right") - 1
        out = [np.empty((len(idx), self.seq_len), dtype=d) for _, _, d in _ARRAYS]
        for j, (i, s) in enumerate(zip(idx, shard)):
            local = i - self._offsets[s]
            for k, (key, _, _) in enumerate(_ARRAYS):
                out[k][j] = self._arrays[s][key][local]
        return out[0], out[1], out[2]

    def sources_of(self, indices: np.ndarray | list[int]) -> np.ndarray | None:
        """Per-token source index [n, seq_len] (255 = padding), or None if the set has none."""
        if not self.has_sources:
            return None
        idx = np.asarray(indices, dtype=np.int64)
        shard = np.searchsorted(self._offsets, idx, side="right") - 1
        return np.stack([self._arrays[s]["src"][i - self._offsets[s]] for i, s in zip(idx, shard)])

    def batch(self, indices: np.ndarray | list[int]) -> Batch:
        tokens, mask, docs = self.rows(indices)
        t = torch.from_numpy(tokens.astype(np.int64))
        m = torch.from_numpy(mask.astype(bool))
        d = torch.from_numpy(docs.astype(np.int64))
        return Batch(t[:, :-1], t[:, 1:], m[:, 1:], d[:, :-1], np.asarray(indices))

    def max_token_id(self, chunk_rows: int = 4096) -> int:
        """Largest token id in the set, scanned shard by shard in bounded chunks."""
        best = 0
        for arrays in self._arrays:
            tok = arrays["tokens"]
            for s in range(0, tok.shape[0], chunk_rows):
                if tok.shape[0]:
                    best = max(best, int(tok[s:s + chunk_rows].max()))
        return best

    def check_compatible(self, vocab_size: int, seq_len: int | None = None, max_positions: int | None = None,
                         scan_ids: bool = True) -> None:
        """Refuse (with a clear message) shards a model cannot train on."""
        if self.vocab_size != vocab_size:
            raise TokenShardError(
                f"{self.path}: token shards have vocab_size {self.vocab_size} but the model has {vocab_size}; "
                "tokenize with the model's tokenizer or build the model with the shards' vocabulary"
            )
        if seq_len is not None and self.seq_len != seq_len:
            raise TokenShardError(
                f"{self.path}: token shards are packed to seq_len {self.seq_len} but training is configured for "
                f"{seq_len}; re-pack the shards or set the training seq_len to {self.seq_len}"
            )
        if max_positions is not None and self.seq_len > max_positions:
            raise TokenShardError(
                f"{self.path}: seq_len {self.seq_len} exceeds the model's max_position_embeddings {max_positions}"
            )
        if scan_ids:
            top = self.max_token_id()
            if top >= vocab_size:
                raise TokenShardError(f"{self.path}: token id {top} >= vocab_size {vocab_size}; the shards are corrupt")

    def describe(self) -> dict[str, Any]:
        return {"path": self.path, "n_seq": len(self), "seq_len": self.seq_len, "vocab_size": self.vocab_size,
                "shards": len(self._arrays)}


def split_indices(n: int, heldout: int) -> tuple[np.ndarray, np.ndarray]:
    """Train rows and held-out rows: the last ``heldout`` rows are never trained on."""
    heldout = max(0, min(heldout, n - 1))
    return np.arange(0, n - heldout, dtype=np.int64), np.arange(n - heldout, n, dtype=np.int64)


class BatchSampler:
    """Seeded epoch permutations over ``indices``; its state is the exact data position.

    The permutation of epoch ``e`` is a function of (seed, e) alone, so restoring
    ``(epoch, pos)`` resumes on exactly the next sequence a straight run would have seen.
    """

    def __init__(self, indices: np.ndarray, batch_size: int, seed: int, shuffle: bool = True) -> None:
        if len(indices) == 0:
            raise TokenShardError("no training sequences (the held-out split took them all)")
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.pos = 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return self.indices
        return np.random.default_rng([self.seed, epoch]).permutation(self.indices)

    def next(self) -> np.ndarray:
        out = []
        while len(out) < self.batch_size:
            if self.pos >= len(self._order):
                self.epoch += 1
                self.pos = 0
                self._order = self._permutation(self.epoch)
            take = self._order[self.pos:self.pos + self.batch_size - len(out)]
            out.extend(take.tolist())
            self.pos += len(take)
        return np.asarray(out, dtype=np.int64)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "pos": self.pos, "seed": self.seed, "n": len(self.indices),
                "indices_sha": hashlib.sha256(self.indices.tobytes()).hexdigest()[:16]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("n") != len(self.indices) or state.get("seed") != self.seed:
            raise TokenShardError(
                f"checkpoint data position was saved for {state.get('n')} sequences / seed {state.get('seed')}, "
                f"this run has {len(self.indices)} / seed {self.seed}: the data changed, start a fresh run"
            )
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._order = self._permutation(self.epoch)

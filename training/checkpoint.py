"""Atomic, verifiable checkpoints: a checkpoint is a committed shard set of side files.

``<dir>/step-NNNNNNNN/`` holds ``config.json`` + ``model.safetensors`` (a loadable Hugging
Face model) and ``training_state.pt`` (optimizer, scheduler, data position, RNG, history).
Written through ShardSetWriter, so a crash mid-write never leaves a half checkpoint that looks
valid, and the manifest's sha256 of every file catches later corruption: a corrupt checkpoint
is reported by name and never deleted, the previous ones stay untouched.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from corpus import shards
from training.hf_io import CONFIG_FILE, WEIGHTS_FILE, ModelLoadError, load_hf, save_config, save_weights
from training.model import ModelConfig, Qwen2ForCausalLM

STATE_FILE = "training_state.pt"
_STEP_RE = re.compile(r"^step-(\d{8})$")


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used; the message names the file and the way out."""


def step_dir(root: str, step: int) -> str:
    return os.path.join(root, f"step-{step:08d}")


def save_model_set(
    path: str,
    model: Qwen2ForCausalLM,
    cfg: ModelConfig,
    *,
    state: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    input_hashes: Iterable[str] = (),
    extra: Mapping[str, Any] | None = None,
    files: Mapping[str, bytes] | None = None,
    writers: Mapping[str, Callable[[str], None]] | None = None,
) -> shards.Manifest:
    """Commit model (+ optional training state and extra files) as one shard set at ``path``."""
    with shards.ShardSetWriter(path, None, config=config, input_hashes=input_hashes, extra=extra) as w:
        save_config(cfg, w.side_file_path(CONFIG_FILE))
        save_weights(model, w.side_file_path(WEIGHTS_FILE))
        if state is not None:
            torch.save(dict(state), w.side_file_path(STATE_FILE))
        for name, data in (files or {}).items():
            w.add_side_file(name, data)
        for name, write in (writers or {}).items():
            write(w.side_file_path(name))
    m = shards.read_manifest(path)
    assert m is not None
    return m


def verify(path: str) -> shards.Manifest:
    """The manifest of a committed checkpoint after checking every file's size and sha256."""
    m = shards.read_manifest(path)
    if m is None:
        raise CheckpointError(f"{path}: no _manifest.json; not a committed checkpoint (an interrupted write?)")
    for f in m.side_files:
        full = os.path.join(path, f["name"])
        if not os.path.exists(full):
            raise CheckpointError(f"{full}: listed in the manifest but missing; the checkpoint is corrupt")
        if os.path.getsize(full) != f["bytes"]:
            raise CheckpointError(f"{full}: {os.path.getsize(full)} bytes, manifest says {f['bytes']}; the checkpoint is corrupt")
        h = hashlib.sha256()
        with open(full, "rb") as fh:
            while chunk := fh.read(1 << 22):
                h.update(chunk)
        if h.hexdigest() != f["sha256"]:
            raise CheckpointError(f"{full}: sha256 does not match the manifest; the checkpoint is corrupt")
    return m


def load_checkpoint(path: str, device: str | torch.device = "cpu", check: bool = True,
                    **config_overrides: Any) -> tuple[Qwen2ForCausalLM, ModelConfig, dict[str, Any] | None]:
    """(model, config, training state or None) of a checkpoint, verified against its manifest."""
    if check:
        verify(path)
    try:
        model, cfg = load_hf(path, device=device, **config_overrides)
    except ModelLoadError as exc:
        raise CheckpointError(str(exc)) from exc
    state = None
    full = os.path.join(path, STATE_FILE)
    if os.path.exists(full):
        try:
            state = torch.load(full, map_location=device, weights_only=True)
        except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError) as exc:
            raise CheckpointError(f"{full}: unreadable training state ({exc})") from exc
    return model, cfg, state


def list_checkpoints(root: str) -> list[tuple[int, str]]:
    """Committed ``step-*`` checkpoints under ``root``, oldest first."""
    if not os.path.isdir(root):
        return []
    out = []
    for name in os.listdir(root):
        m = _STEP_RE.match(name)
        if m and shards.is_committed(os.path.join(root, name)):
            out.append((int(m.group(1)), os.path.join(root, name)))
    return sorted(out)


def latest_checkpoint(root: str) -> str | None:
    """The newest checkpoint, verified; a corrupt newest one raises naming the previous valid one."""
    found = list_checkpoints(root)
    if not found:
        return None
    _, newest = found[-1]
    try:
        verify(newest)
    except CheckpointError as exc:
        previous = None
        for _, p in reversed(found[:-1]):
            try:
                verify(p)
                previous = p
                break
            except CheckpointError:
                continue
        hint = (f"the previous valid checkpoint is {previous}; delete {newest} to resume from it"
                if previous else f"no earlier valid checkpoint; delete {root} to start over")
        raise CheckpointError(f"{exc}; {hint}") from exc
    return newest


def prune(root: str, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` checkpoints (and stale temp folders); returns deleted paths."""
    removed = []
    found = list_checkpoints(root)
    for _, p in found[:-keep] if keep > 0 else []:
        shards.delete_set(p)
        removed.append(p)
    for _, p in found[-keep:]:
        shards.clean_stale_temps(p)
    return removed

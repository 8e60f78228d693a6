"""Guards every writer and reader shares: outputs never overlap inputs, storage errors say what
went wrong where, and text columns are valid UTF-8 before any stage trusts them.

Library code raises these errors; the CLI turns them into one line and exit status 2, Dagster
shows the message as the step's failure.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc


class SafetyError(RuntimeError):
    """A refused operation that would lose data or that cannot succeed; the message says why."""


class OutputOverlapError(SafetyError):
    """The output path equals, contains, or lies inside an input."""


class StorageError(SafetyError):
    """Read-only filesystem, permission denied, disk full: the path, the cause and the way out."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.errno = code


class InvalidTextError(SafetyError):
    """A text column holds bytes that are not UTF-8 and the policy is ``fail``."""


# --------------------------------------------------------------------------- output paths


def _norm(path: str) -> list[str]:
    """The absolute and the symlink-resolved forms of a local path (URIs: the URI itself)."""
    if "://" in path and not path.startswith("file://"):
        return [path.rstrip("/")]
    p = path[len("file://"):] if path.startswith("file://") else path
    forms = {os.path.abspath(p), os.path.realpath(p)}
    return sorted(forms)


def _inside(child: str, parent: str) -> bool:
    return child == parent or child.startswith(parent.rstrip("/") + "/")


def check_output(output: str, inputs: Iterable[str], setting: str = "--output") -> None:
    """Refuse an output that equals, contains, or lies inside any input (file or folder).

    Writing there would rewrite the input in place, replace sibling partitions, or delete the
    folder holding an input file. Both the given and the symlink-resolved forms are compared.
    """
    outs = _norm(output)
    for inp in inputs:
        if not inp:
            continue
        for o in outs:
            for i in _norm(inp):
                if _inside(o, i) or _inside(i, o):
                    how = "is" if o == i else ("lies inside" if _inside(o, i) else "contains")
                    raise OutputOverlapError(
                        f"output {output} {how} input {inp}: writing there would overwrite or delete "
                        f"input data; choose an {setting} outside every input"
                    )


def local_inputs(specs: Iterable[str]) -> list[str]:
    """The existing local files/folders among source specs (URIs, globs and kinds dropped): the
    paths an output must not overlap."""
    return [s for s in specs if "://" not in s and not any(c in s for c in "*?[") and os.path.exists(s)]


# --------------------------------------------------------------------------- storage errors

_CAUSES = {
    errno.EROFS: ("the filesystem is read-only", "choose an output on a writable filesystem"),
    errno.EACCES: ("permission denied", "fix the folder's permissions or choose another output"),
    errno.EPERM: ("operation not permitted", "fix the folder's permissions or choose another output"),
    errno.ENOSPC: ("no space left on the device",
                   "free disk space (`codecorpus gc` removes stale temporaries and old versions) "
                   "or choose an output on a larger disk"),
    errno.EDQUOT: ("disk quota exceeded", "free space within your quota or choose another output"),
}
_TEXT_CAUSES = {"no space left on device": errno.ENOSPC, "read-only file system": errno.EROFS,
                "permission denied": errno.EACCES, "disk quota exceeded": errno.EDQUOT}


def storage_errno(exc: BaseException) -> int | None:
    """The errno of a storage failure, also for pyarrow errors that only carry the text."""
    if isinstance(exc, OSError) and exc.errno in _CAUSES:
        return exc.errno
    text = str(exc).lower()
    for needle, code in _TEXT_CAUSES.items():
        if needle in text:
            return code
    return None


def storage_error(path: str, exc: BaseException, doing: str = "writing") -> StorageError | None:
    """A StorageError naming ``path`` and the cause, or None if ``exc`` is not a storage failure."""
    code = storage_errno(exc)
    if code is None:
        return None
    cause, fix = _CAUSES[code]
    err = StorageError(code, f"{path}: {doing} failed: {cause} ({exc}); {fix}")
    return err


def check_writable(path: str, setting: str = "--output") -> None:
    """Fail before any work if ``path`` (or the nearest existing parent) cannot take files."""
    if "://" in path and not path.startswith("file://"):
        return
    p = os.path.abspath(path[len("file://"):] if path.startswith("file://") else path)
    probe_dir = p
    while not os.path.isdir(probe_dir):
        parent = os.path.dirname(probe_dir)
        if parent == probe_dir:
            break
        probe_dir = parent
    probe = os.path.join(probe_dir, f".codecorpus-write-probe-{uuid.uuid4().hex[:8]}")
    try:
        with open(probe, "wb") as fh:
            fh.write(b"x")
            fh.flush()
            os.fsync(fh.fileno())
        os.unlink(probe)
    except OSError as exc:
        err = storage_error(probe_dir, exc, doing=f"checking that {setting} {path} is writable")
        raise (err or exc) from exc


@contextmanager
def atomic_file(path: str, mode: str = "wb") -> Iterator[IO]:
    """Write a single file so that ``path`` holds the old or the new content, never half.

    The temporary is ``<path>.tmp-<pid>-<rand>`` in the same folder, fsynced and renamed over
    ``path``; an exception removes it, and temporaries of this path left by dead processes are
    removed first (a live writer's never)."""
    from corpus.locks import pid_alive

    folder = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(folder, exist_ok=True)
    base = os.path.basename(path)
    for name in os.listdir(folder):
        if name.startswith(f"{base}.tmp-"):
            pid = name[len(base) + 5:].split("-", 1)[0]
            if pid.isdigit() and not pid_alive(int(pid)):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))
    tmp = os.path.join(folder, f"{base}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and (err := storage_error(path, exc)) is not None:
            raise err from exc
        raise


# --------------------------------------------------------------------------- text validity

POLICIES = ("skip", "fail")


def default_policy() -> str:
    """What every stage does with text that is not UTF-8: ``CODECORPUS_INVALID_TEXT`` (skip|fail,
    default skip). One setting, so all stages treat the same row the same way."""
    value = os.environ.get("CODECORPUS_INVALID_TEXT", "skip").strip().lower()
    if value not in POLICIES:
        raise ValueError(f"CODECORPUS_INVALID_TEXT={value!r}: use one of {POLICIES}")
    return value


@dataclass
class TextCheck:
    """What the UTF-8 gate skipped: counts per reason and the first few rows, for metadata."""

    policy: str = field(default_factory=default_policy)
    skipped: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"invalid_text policy {self.policy!r}: use one of {POLICIES}")

    def note(self, reason: str, where: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if len(self.examples) < 20:
            self.examples.append(where)


def _bad_rows(arr: pa.Array) -> list[int]:
    """Rows of a string/binary array whose bytes are not valid UTF-8 (slow path, errors only)."""
    raw = arr.cast(pa.large_binary()) if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) \
        else arr
    bad = []
    for i, v in enumerate(raw.to_pylist()):
        if v is None:
            continue
        try:
            v.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(i)
    return bad


def invalid_mask(arr: pa.Array | pa.ChunkedArray):
    """Boolean numpy mask of rows whose bytes are not valid UTF-8 (None when all are valid).

    Binary and string columns alike; the all-valid case costs one vectorized validation."""
    import numpy as np

    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    masks, any_bad = [], False
    for c in chunks:
        try:
            _as_text(c)
            masks.append(np.zeros(len(c), dtype=bool))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            m = np.zeros(len(c), dtype=bool)
            m[_bad_rows(c)] = True
            masks.append(m)
            any_bad = True
    if not any_bad:
        return None
    return np.concatenate(masks) if masks else None


def _as_text(arr: pa.Array) -> pa.Array:
    """Binary becomes string (validated), strings are validated in place; raises on bad bytes."""
    if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        target = pa.large_string() if pa.types.is_large_binary(arr.type) else pa.string()
        return pc.cast(arr, target)  # the cast checks UTF-8
    arr.validate(full=True)  # full validation includes UTF-8 for string arrays
    return arr


def text_schema(schema: pa.Schema, columns: Iterable[str]) -> pa.Schema:
    """``schema`` with binary text ``columns`` as strings: what ``validate_text`` yields."""
    for c in columns:
        if c in schema.names:
            i = schema.get_field_index(c)
            t = schema.field(c).type
            if pa.types.is_binary(t):
                schema = schema.set(i, schema.field(c).with_type(pa.string()))
            elif pa.types.is_large_binary(t):
                schema = schema.set(i, schema.field(c).with_type(pa.large_string()))
    return schema


def validate_text(batch: pa.RecordBatch, columns: Iterable[str], where: str, check: TextCheck,
                  first_row: int = 0) -> pa.RecordBatch:
    """``batch`` with its text ``columns`` as valid UTF-8 strings; bad rows are skipped and
    recorded (policy ``skip``) or raise InvalidTextError naming file, row and column (``fail``).

    The fast path is Arrow's vectorized UTF-8 validation; rows are located only on failure.
    """
    cols = [c for c in columns if c in batch.schema.names]
    drop: set[int] = set()
    fixed = {}
    for c in cols:
        arr = batch.column(c)
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
                or pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type)):
            continue
        try:
            fixed[c] = _as_text(arr)
            continue
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        bad = _bad_rows(arr)
        if check.policy == "fail":
            rows = ", ".join(str(first_row + i) for i in bad[:5])
            raise InvalidTextError(
                f"{where}: column {c!r} row(s) {rows} hold bytes that are not valid UTF-8; "
                "fix the input, or set invalid_text='skip' (CLI --invalid-text skip) to drop such rows"
            )
        for i in bad:
            check.note(f"invalid_utf8_{c}", f"{where} row {first_row + i} column {c}")
        drop.update(bad)
    if drop:
        keep = pa.array([i not in drop for i in range(batch.num_rows)])
        batch = batch.filter(keep)
        return validate_text(batch, cols, where, check, first_row)  # re-validate what remains
    for c, arr in fixed.items():
        if arr.type != batch.column(c).type:
            batch = batch.set_column(batch.schema.get_field_index(c), pa.field(c, arr.type), arr)
    return batch

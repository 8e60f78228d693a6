"""Where a shard set's versions live and how one becomes current in a single atomic step.

Every commit writes a new, complete version folder ``v-NNNNN`` and then swaps one pointer:

- local paths: ``<parent>/<name>`` is a relative symlink to ``<parent>/.<name>.versions/v-NNNNN``
  and is replaced by ``rename(2)`` of a new symlink over it (atomic on POSIX). The set path
  stays a plain folder to every tool (a model set is still a Hugging Face folder).
- object stores (s3://, gs://, ...): ``<set>/_manifest.json`` is the pointer (one object PUT
  is atomic) and names its version folder ``<set>/v-NNNNN/``.

At every instant a reader sees the whole old set or the whole new one. Old versions are kept
up to a retention count (readers in flight finish on them), partial versions and work folders
are removed only by the holder of the set's lock, so never under a live writer. Sets written
in an older layout (a real folder; ``*.old-*`` parked by a killed replace) are recovered, not
deleted.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import posixpath
import re
import shutil
import uuid

import pyarrow.fs as pafs

from corpus import failpoints
from corpus.locks import LocalLock, ObjectLock

MANIFEST = "_manifest.json"
_VERSION_RE = re.compile(r"^v-(\d{5,})$")
DEFAULT_KEEP_VERSIONS = 1


def keep_versions_default() -> int:
    """Old versions kept after a commit: ``CODECORPUS_KEEP_VERSIONS`` (default 1)."""
    raw = os.environ.get("CODECORPUS_KEEP_VERSIONS", str(DEFAULT_KEEP_VERSIONS))
    try:
        n = int(raw)
        if n < 0:
            raise ValueError
    except ValueError:
        raise ValueError(f"CODECORPUS_KEEP_VERSIONS={raw!r}: must be a whole number >= 0") from None
    return n


def version_name(seq: int) -> str:
    return f"v-{seq:05d}"


def version_seq(name: str) -> int | None:
    m = _VERSION_RE.match(name)
    return int(m.group(1)) if m else None


def fsync_path(path: str) -> None:
    """fsync a file or folder (no-op where the filesystem refuses, e.g. some FUSE mounts)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: str, b: str) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    rc = fn(_AT_FDCWD, a.encode(), _AT_FDCWD, b.encode(), _RENAME_EXCHANGE)
    if rc != 0:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            return False
        raise OSError(err, os.strerror(err), b)
    return True


class LocalStore:
    """Versioned folders + an atomically replaced symlink (see module doc)."""

    local = True

    def __init__(self, fs: pafs.FileSystem, final: str) -> None:
        self.fs = fs
        self.final = final
        self.parent, self.name = os.path.split(final)
        self.versions_dir = os.path.join(self.parent, f".{self.name}.versions")

    # -- reading
    def read_base(self) -> str:
        """The folder the current manifest and files are in (symlink resolved once, so one
        reader never mixes two versions)."""
        return os.path.realpath(self.final)

    def current_version(self) -> str | None:
        if os.path.islink(self.final):
            return os.path.basename(os.readlink(self.final))
        if os.path.isfile(os.path.join(self.final, MANIFEST)):
            return ""  # a set written before versioning
        return None

    # -- writing
    def lock(self, what: str, run_id: str | None = None) -> LocalLock:
        return LocalLock(self.versions_dir, what, run_id)

    def versions(self) -> list[tuple[int, str]]:
        if not os.path.isdir(self.versions_dir):
            return []
        found = ((version_seq(n), n) for n in os.listdir(self.versions_dir))
        return sorted((s, n) for s, n in found if s is not None)

    def new_version(self) -> tuple[str, str]:
        seq = max((s for s, _ in self.versions()), default=0) + 1
        name = version_name(seq)
        path = os.path.join(self.versions_dir, name)
        os.makedirs(path)
        return name, path

    def version_path(self, version: str) -> str:
        return os.path.join(self.versions_dir, version)

    def join(self, base: str, name: str) -> str:
        return os.path.join(base, name)

    def work_dir(self) -> str:
        path = os.path.join(self.versions_dir, f"work-{uuid.uuid4().hex[:12]}")
        os.makedirs(path)
        return path

    def swap(self, version: str) -> None:
        """Make ``version`` current in one rename; the previous target stays as a version."""
        target = os.path.join(os.path.basename(self.versions_dir), version)
        link = os.path.join(self.parent, f".{self.name}.link-{uuid.uuid4().hex[:12]}")
        os.symlink(target, link)
        failpoints.hit("commit.swap")
        try:
            if os.path.isdir(self.final) and not os.path.islink(self.final):
                self._replace_legacy_folder(link)
            else:
                os.rename(link, self.final)
        finally:
            if os.path.lexists(link):
                os.unlink(link)
        failpoints.hit("commit.swapped")
        fsync_path(self.parent)

    def _replace_legacy_folder(self, link: str) -> None:
        """A real folder from the old layout becomes version 0, without a moment of nothing."""
        legacy = os.path.join(self.versions_dir, version_name(0))
        if os.path.exists(legacy):
            shutil.rmtree(legacy)
        if _exchange(link, self.final):
            os.rename(link, legacy)  # ``link`` now names the old folder
        else:  # no RENAME_EXCHANGE on this filesystem: a brief gap, once per legacy set
            os.rename(self.final, legacy)
            os.rename(link, self.final)

    # -- housekeeping (caller holds the lock)
    def clean(self, keep: int, protect: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
        """Remove partial versions, work folders, link leftovers and versions past ``keep``;
        recover a set parked by the old layout's killed replace. ``protect``: version names to
        leave alone (a build being resumed). Returns removed paths."""
        removed: list[str] = []
        self._recover_parked(removed)
        current = self.current_version()
        complete = []
        for seq, name in self.versions():
            path = os.path.join(self.versions_dir, name)
            if name == current or name in protect:
                continue
            if not os.path.isfile(os.path.join(path, MANIFEST)):
                _rm(path, removed)
            else:
                complete.append((seq, path))
        cur_seq = version_seq(current or "") or 0
        older = [p for s, p in complete if s < cur_seq]
        newer = [p for s, p in complete if s > cur_seq]  # committed data never made current
        for p in older[: max(0, len(older) - keep)] + newer:
            _rm(p, removed)
        if os.path.isdir(self.versions_dir):
            for n in os.listdir(self.versions_dir):
                if n.startswith("work-"):
                    _rm(os.path.join(self.versions_dir, n), removed)
        if os.path.isdir(self.parent):
            for n in os.listdir(self.parent):
                if n.startswith(f".{self.name}.link-"):
                    os.unlink(os.path.join(self.parent, n))
                    removed.append(os.path.join(self.parent, n))
        return removed

    def _recover_parked(self, removed: list[str]) -> None:
        if not os.path.isdir(self.parent):
            return
        for n in sorted(os.listdir(self.parent)):
            full = os.path.join(self.parent, n)
            if n.startswith(f"{self.name}.old-"):
                if not os.path.lexists(self.final) and os.path.isfile(os.path.join(full, MANIFEST)):
                    os.rename(full, self.final)  # the only copy of the last good set
                else:
                    _rm(full, removed)
            elif n.startswith(f"{self.name}.tmp-"):
                _rm(full, removed)

    def delete(self) -> None:
        """Remove the set and every version (caller holds the lock)."""
        if os.path.islink(self.final):
            os.unlink(self.final)
        elif os.path.isdir(self.final):
            shutil.rmtree(self.final)
        if os.path.isdir(self.versions_dir):
            shutil.rmtree(self.versions_dir)


class ObjectStore:
    """Versioned folders + ``_manifest.json`` as the pointer (see module doc)."""

    local = False

    def __init__(self, fs: pafs.FileSystem, final: str) -> None:
        self.fs = fs
        self.final = final.rstrip("/")
        self.versions_dir = self.final

    def _manifest(self) -> dict | None:
        path = posixpath.join(self.final, MANIFEST)
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(path) as fh:
            try:
                return json.loads(fh.read().decode())
            except ValueError:
                return {}

    def current_version(self) -> str | None:
        m = self._manifest()
        return None if m is None else str(m.get("version", ""))

    def read_base(self) -> str:
        v = self.current_version()
        return posixpath.join(self.final, v) if v else self.final

    def lock(self, what: str, run_id: str | None = None) -> ObjectLock:
        return ObjectLock(self.fs, posixpath.join(self.final, "_lock.json"), what, run_id)

    def _children(self) -> list[pafs.FileInfo]:
        if self.fs.get_file_info(self.final).type != pafs.FileType.Directory:
            return []
        return self.fs.get_file_info(pafs.FileSelector(self.final))

    def versions(self) -> list[tuple[int, str]]:
        found = ((version_seq(posixpath.basename(i.path)), posixpath.basename(i.path))
                 for i in self._children() if i.type == pafs.FileType.Directory)
        return sorted((s, n) for s, n in found if s is not None)

    def new_version(self) -> tuple[str, str]:
        seq = max((s for s, _ in self.versions()), default=0) + 1
        name = version_name(seq)
        path = posixpath.join(self.final, name)
        self.fs.create_dir(path, recursive=True)
        return name, path

    def version_path(self, version: str) -> str:
        return posixpath.join(self.final, version)

    def join(self, base: str, name: str) -> str:
        return posixpath.join(base, name)

    def work_dir(self) -> str:
        raise NotImplementedError("work folders need a local path")

    def swap(self, version: str) -> None:
        """Copy the version's manifest over the pointer: one object, atomic on object stores."""
        src = posixpath.join(self.final, version, MANIFEST)
        tmp = posixpath.join(self.final, f"_manifest.tmp-{uuid.uuid4().hex[:12]}")
        self.fs.copy_file(src, tmp)
        failpoints.hit("commit.swap")
        self.fs.move(tmp, posixpath.join(self.final, MANIFEST))
        failpoints.hit("commit.swapped")

    def clean(self, keep: int, protect: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
        removed: list[str] = []
        current = self.current_version()
        cur_seq = version_seq(current or "") or 0
        complete = []
        for seq, name in self.versions():
            path = posixpath.join(self.final, name)
            if name == current or name in protect:
                continue
            if self.fs.get_file_info(posixpath.join(path, MANIFEST)).type != pafs.FileType.File:
                self.fs.delete_dir(path)
                removed.append(path)
            else:
                complete.append((seq, path))
        older = [p for s, p in complete if s < cur_seq]
        newer = [p for s, p in complete if s > cur_seq]
        for p in older[: max(0, len(older) - keep)] + newer:
            self.fs.delete_dir(p)
            removed.append(p)
        if current:  # files of a pre-versioning set left at the top level
            for i in self._children():
                n = posixpath.basename(i.path)
                if i.type == pafs.FileType.File and (n.startswith(("part-", "_manifest.tmp-"))):
                    self.fs.delete_file(i.path)
                    removed.append(i.path)
        return removed

    def delete(self) -> None:
        self.fs.delete_dir_contents(self.final, missing_dir_ok=True)


def _rm(path: str, removed: list[str]) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    else:
        shutil.rmtree(path)
    removed.append(path)


def open_store(fs: pafs.FileSystem, final: str) -> LocalStore | ObjectStore:
    return LocalStore(fs, final) if isinstance(fs, pafs.LocalFileSystem) else ObjectStore(fs, final)

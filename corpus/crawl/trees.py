"""File trees a repository is read from: a directory (never following symlinks) or a zip.

Walks are sorted so output order is deterministic. Entries carry the size from ``lstat``
(or the zip directory), so oversized files are skipped without being opened, and reads are
bounded so a file that grows while being read cannot blow up memory.
"""

from __future__ import annotations

import bisect
import errno
import functools
import os
import stat
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    path: str  # posix path relative to the tree root
    size: int
    kind: str  # file | symlink | special
    mtime: float = 0.0


Want = Callable[[str], bool] | None


class Tree:
    """Base: iterate entries, read one (bounded), classify symlinks.

    ``entries(prune, want)``: ``prune(dir_path + "/")`` drops whole directories; ``want(path)``
    is asked before a file is stat'ed, so files a crawl will not use cost no syscall.
    ``seen`` counts every non-directory entry met, wanted or not.
    """

    seen: int = 0

    def entries(self, prune: Callable[[str], bool], want: Want = None) -> Iterator[Entry]:
        raise NotImplementedError

    def read(self, entry: Entry, limit: int) -> bytes:
        raise NotImplementedError

    def symlink_reason(self, entry: Entry) -> str:
        return "symlink"

    def fingerprint_items(self, prune: Callable[[str], bool]) -> Iterator[tuple[str, int, float]]:
        for e in self.entries(prune):
            yield (e.path, e.size, e.mtime)

    def close(self) -> None:
        pass


class DirTree(Tree):
    """A directory. ``only`` restricts the walk to some top-level names; ``exclude`` drops some."""

    def __init__(self, root: str, only: list[str] | None = None, exclude: frozenset[str] = frozenset()) -> None:
        self.root = os.path.abspath(root)
        self.only = only
        self.exclude = exclude
        self.pruned: list[str] = []
        self.errors: list[str] = []

    def entries(self, prune: Callable[[str], bool], want: Want = None) -> Iterator[Entry]:
        self.pruned = []
        self.errors = []
        self.seen = 0
        yield from self._walk(self.root, "", prune, want, top=True)

    def _walk(self, abs_dir: str, rel: str, prune: Callable[[str], bool], want: Want,
              top: bool = False) -> Iterator[Entry]:
        try:
            with os.scandir(abs_dir) as it:
                items = sorted(it, key=lambda d: d.name)
        except OSError as exc:  # unreadable directory: recorded, the walk goes on
            self.errors.append(f"{rel or '.'}: {exc.strerror or exc}")
            return
        for d in items:
            if top and (d.name in self.exclude or (self.only is not None and d.name not in self.only)):
                continue
            relpath = f"{rel}{d.name}"
            try:
                is_dir = d.is_dir(follow_symlinks=False)  # from d_type: no syscall on most filesystems
            except OSError:
                continue
            if is_dir:
                if prune(relpath + "/"):
                    self.pruned.append(relpath)
                    continue
                yield from self._walk(d.path, relpath + "/", prune, want)
                continue
            self.seen += 1
            if want is not None and not want(relpath):
                continue
            try:
                st = d.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                yield Entry(relpath, 0, "symlink", st.st_mtime)
            elif stat.S_ISREG(st.st_mode):
                yield Entry(relpath, st.st_size, "file", st.st_mtime)
            else:
                yield Entry(relpath, 0, "special", st.st_mtime)

    def read(self, entry: Entry, limit: int) -> bytes:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(os.path.join(self.root, entry.path), flags)
        try:
            # Ask for one byte more than lstat said, so the usual file is read in one call and
            # a file that grew since is still noticed (callers compare with their limit).
            first = os.read(fd, min(limit, entry.size + 1))
            if len(first) < min(limit, entry.size + 1):
                return first
            chunks = [first]
            left = limit - len(first)
            while left > 0:
                b = os.read(fd, min(left, 1 << 20))
                if not b:
                    break
                chunks.append(b)
                left -= len(b)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def symlink_reason(self, entry: Entry) -> str:
        """``symlink_loop``, ``symlink_outside_repo``, ``symlink_broken`` or ``symlink`` (inside)."""
        full = os.path.join(self.root, entry.path)
        try:
            os.stat(full)
        except OSError as exc:
            return "symlink_loop" if exc.errno == errno.ELOOP else "symlink_broken"
        target = os.path.realpath(full)
        if os.path.commonpath([target, os.path.realpath(self.root)]) != os.path.realpath(self.root):
            return "symlink_outside_repo"
        return "symlink"


@dataclass
class _ZipIndex:
    zf: zipfile.ZipFile
    infos: list[zipfile.ZipInfo]  # sorted by name
    names: list[str]


@functools.lru_cache(maxsize=4)
def _zip_index(path: str, size: int, mtime_ns: int) -> _ZipIndex:
    """One open ZipFile and sorted member list per archive version, shared by its module trees
    (reading src.zip's central directory costs ~0.5 s; once per module would be 35 s)."""
    zf = zipfile.ZipFile(path)
    infos = sorted(zf.infolist(), key=lambda i: i.filename)
    return _ZipIndex(zf, infos, [i.filename for i in infos])


class ZipTree(Tree):
    """Members of a zip under ``prefix`` (e.g. one JDK module in lib/src.zip)."""

    def __init__(self, zip_path: str, prefix: str = "") -> None:
        self.zip_path = zip_path
        self.prefix = prefix

    def _index(self) -> _ZipIndex:
        st = os.stat(self.zip_path)
        return _zip_index(self.zip_path, st.st_size, st.st_mtime_ns)

    def entries(self, prune: Callable[[str], bool], want: Want = None) -> Iterator[Entry]:
        self.seen = 0
        index = self._index()
        infos = index.infos
        lo = bisect.bisect_left(index.names, self.prefix) if self.prefix else 0
        for info in infos[lo:]:
            if not info.filename.startswith(self.prefix):
                break
            if info.is_dir():
                continue
            rel = info.filename[len(self.prefix):]
            if prune(rel.rsplit("/", 1)[0] + "/" if "/" in rel else ""):
                continue
            self.seen += 1
            if want is not None and not want(rel):
                continue
            is_link = stat.S_ISLNK(info.external_attr >> 16)
            yield Entry(rel, info.file_size, "symlink" if is_link else "file", 0.0)

    def read(self, entry: Entry, limit: int) -> bytes:
        with self._index().zf.open(self.prefix + entry.path) as fh:
            return fh.read(limit)

    def fingerprint_items(self, prune: Callable[[str], bool]) -> Iterator[tuple[str, int, float]]:
        st = os.stat(self.zip_path)
        yield (self.zip_path + "!" + self.prefix, st.st_size, st.st_mtime)

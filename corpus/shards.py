"""Shard sets: the on-disk contract between every corpus stage.

A shard set is a folder ``<root>/<asset>/<partition or _all>/`` holding ``part-NNNNN.parquet``
files and a ``_manifest.json``. Writers take the set's lock, stream record batches into a new
version folder, fsync it and make it current with one atomic pointer swap (corpus.setstore),
so at every instant a reader sees the whole old set or the whole new one, and a killed run
never leaves a set that readers trust. Readers stream record batches, never whole tables, and
only trust folders that carry a manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from corpus import __version__ as CODE_VERSION
from corpus import failpoints, safety, setstore
from corpus.locks import SetBusyError

MANIFEST = setstore.MANIFEST
ALL_PARTITIONS = "_all"
PART_TEMPLATE = "part-{:05d}.parquet"
DEFAULT_ROW_GROUP_ROWS = 2_000
DEFAULT_SHARD_ROWS = 50_000
DEFAULT_SHARD_BYTES = 256 * 1024 * 1024
COMPRESSION = "zstd"
DONE_DIR = "_done"  # per-shard completion records of a build in progress
RESUME_FILE = "_resume.json"  # marks a version a re-run of the same build may continue


class ShardSetError(RuntimeError):
    """A shard set is missing, uncommitted or malformed; the message names the path."""


# --------------------------------------------------------------------------- paths


def abspath(path: str) -> str:
    """``path`` made absolute if it is local; object-store URIs (s3://...) unchanged."""
    return path if "://" in path else os.path.abspath(path)


def data_root() -> str:
    """The data root: ``CODECORPUS_DATA`` or ``./data`` (any local path or pyarrow URI)."""
    return os.environ.get("CODECORPUS_DATA", os.path.abspath("data"))


def shard_set_path(root: str, asset: str, partition: str | None = None) -> str:
    """``<root>/<asset>/<partition or _all>`` with URI-safe joining."""
    part = partition if partition else ALL_PARTITIONS
    if "/" in part or part in {".", ".."}:
        raise ValueError(f"partition key {part!r} for asset {asset!r} must not contain '/'")
    return _join(root, asset, part)


def _join(*parts: str) -> str:
    head, *rest = parts
    if "://" in head:
        return posixpath.join(head.rstrip("/"), *rest)
    return os.path.join(head, *rest)


def _fs(path: str) -> tuple[pafs.FileSystem, str]:
    if "://" in path:
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), os.path.abspath(path)


def _is_local(fs: pafs.FileSystem) -> bool:
    return isinstance(fs, pafs.LocalFileSystem)


# --------------------------------------------------------------------------- hashing


def stable_hash(obj: Any) -> str:
    """sha256 of the canonical JSON form of ``obj`` (sorted keys, no whitespace)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


# --------------------------------------------------------------------------- manifest


@dataclass
class Manifest:
    """What ``_manifest.json`` records about a committed shard set.

    ``version`` names the version folder the files are in; ``group`` ties sets that one stage
    commits together (``{"id": run id, "members": {set path: version}}``). Neither enters
    ``content_hash``: the identity of a set is what it holds and was built from.
    """

    rows: int
    bytes: int
    files: list[dict[str, Any]]
    schema: str
    config_hash: str
    input_hashes: list[str]
    code_version: str
    created_at: str
    extra: dict[str, Any] = field(default_factory=dict)
    side_files: list[dict[str, Any]] = field(default_factory=list)
    version: str = ""
    group: dict[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """Identity of this set for downstream manifests: what it was built from and holds.

        Every file the manifest lists counts: parts by name, rows and sha256, side files by
        name, rows and sha256."""
        return stable_hash(
            {
                "files": [(f["name"], f["rows"], f["sha256"]) for f in self.files],
                "side_files": [(f["name"], f.get("rows"), f["sha256"]) for f in self.side_files],
                "config_hash": self.config_hash,
                "input_hashes": self.input_hashes,
            }
        )

    def to_json(self) -> str:
        return json.dumps(self.__dict__ | {"content_hash": self.content_hash}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> Manifest:
        try:
            raw = json.loads(text)
            raw.pop("content_hash", None)
            return cls(**raw)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ShardSetError(f"{where}: unreadable manifest ({exc}); delete the folder and re-run the asset") from exc


def _read_manifest_at(fs: pafs.FileSystem, base: str, join) -> Manifest | None:
    mpath = join(base, MANIFEST)
    if fs.get_file_info(mpath).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(mpath) as fh:
        return Manifest.from_json(fh.read().decode(), mpath)


def _current(store) -> tuple[Manifest | None, str]:
    """The current manifest of ``store``'s set (None: never committed) and the folder it is in."""
    base = store.read_base()
    return _read_manifest_at(store.fs, base, store.join), base


def _store(path: str):
    fs, p = _fs(path)
    return setstore.open_store(fs, p)


def _resolve(path: str) -> tuple[Manifest, str] | None:
    """The manifest a reader should trust at ``path`` and the folder its files are in.

    Normally the current version. If a group commit was interrupted between its pointer swaps
    (this set still at the old version, another member already at the new group), the group's
    complete new version of this set is read instead, so a group is seen old-or-new as a whole.
    """
    store = _store(path)
    m, base = _current(store)
    if m is None:
        return None
    return _group_ahead(store, m) or (m, base)


def _group_ahead(store, m: Manifest) -> tuple[Manifest, str] | None:
    """A newer complete version of this set whose commit group is already current elsewhere."""
    cur_seq = setstore.version_seq(m.version) or 0
    for seq, name in reversed(store.versions()):
        if seq <= cur_seq:
            return None
        base = store.version_path(name)
        try:
            cand = _read_manifest_at(store.fs, base, store.join)
        except (ShardSetError, OSError):  # a version being written or removed right now
            continue
        if cand is None or not cand.group:
            continue
        for member in cand.group.get("members", {}):
            if _fs(member)[1].rstrip("/") == store.final.rstrip("/"):
                continue
            other = _current(_store(member))[0]
            if other is not None and other.group.get("id") == cand.group.get("id"):
                return cand, base
    return None


def read_manifest(path: str) -> Manifest | None:
    """The manifest of the shard set at ``path``, or None if it is absent (not committed)."""
    found = _resolve(path)
    return found[0] if found else None


def is_committed(path: str) -> bool:
    return read_manifest(path) is not None


def up_to_date(path: str, config_hash: str, input_hashes: Iterable[str]) -> Manifest | None:
    """The existing manifest if ``path`` was built from this config and these inputs, else None.

    Assets call this first so that re-materializing an unchanged stage is a no-op.
    """
    m = read_manifest(path)
    if m is None:
        return None
    if m.config_hash == config_hash and m.input_hashes == sorted(input_hashes) and m.code_version == CODE_VERSION:
        return m
    return None


def check_group(*paths: str) -> list[Manifest]:
    """The manifests of sets one stage wrote together; raises if they come from different runs."""
    ms = []
    for p in paths:
        m = read_manifest(p)
        if m is None:
            raise ShardSetError(f"{p}: no {MANIFEST}; materialize the stage that writes it")
        ms.append(m)
    ids = {m.group.get("id") for m in ms}
    if len(ids) > 1:
        raise ShardSetError(
            f"{', '.join(paths)} were committed by different runs (run ids {sorted(map(str, ids))}); "
            "re-run the stage that writes them together"
        )
    return ms


# --------------------------------------------------------------------------- writer


def _uri_of(path: str, fs_path: str) -> str:
    """``fs_path`` (inside ``path``'s filesystem) as a URI with ``path``'s scheme."""
    scheme = path.split("://", 1)[0]
    return f"{scheme}://{fs_path}"


def _storage_guard(path: str, exc: BaseException, doing: str = "writing") -> BaseException:
    """Translate read-only / permission / disk-full failures into a StorageError naming ``path``."""
    return safety.storage_error(path, exc, doing) or exc


class PartWriter:
    """Streams record batches into ``part-*.parquet`` files of one folder (a set's new version),
    rolling over at ``shard_rows`` rows or ``shard_bytes`` bytes. Used by the set writer itself
    and by shard tasks on any worker; ``files`` are the manifest records of what it wrote."""

    def __init__(self, fs: pafs.FileSystem, folder: str, schema: pa.Schema, *, name: Callable[[int], str],
                 shard_rows: int = DEFAULT_SHARD_ROWS, shard_bytes: int = DEFAULT_SHARD_BYTES,
                 row_group_rows: int = DEFAULT_ROW_GROUP_ROWS, fsync: bool = True, where: str) -> None:
        self.fs, self.folder, self.schema, self.name = fs, folder, schema, name
        self.shard_rows, self.shard_bytes, self.row_group_rows = shard_rows, shard_bytes, row_group_rows
        self.fsync = fsync and _is_local(fs)
        self.where = where  # the set's path, for error messages
        self.join = os.path.join if _is_local(fs) else posixpath.join
        self.files: list[dict[str, Any]] = []
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._sink = None
        self._cur_name: str | None = None
        self._cur_rows = 0
        self._cur_bytes = 0

    def write_batch(self, batch: pa.RecordBatch | pa.Table) -> None:
        if batch.num_rows == 0:
            return
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        if not table.schema.equals(self.schema):
            try:
                table = table.select(self.schema.names).cast(self.schema)
            except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ShardSetError(
                    f"{self.where}: batch schema does not match the shard set's schema "
                    f"({exc}); expected {self.schema}"
                ) from exc
        offset = 0
        try:
            while offset < table.num_rows:
                if self._writer is None:
                    self._open()
                chunk = table.slice(offset, self.shard_rows - self._cur_rows)
                assert self._writer is not None
                self._writer.write_table(chunk, row_group_size=self.row_group_rows)
                self._cur_rows += chunk.num_rows
                self._cur_bytes += chunk.nbytes
                self.rows += chunk.num_rows
                offset += chunk.num_rows
                if self._cur_rows >= self.shard_rows or self._cur_bytes >= self.shard_bytes:
                    self.close_part()
        except OSError as exc:
            raise _storage_guard(self.where, exc) from exc

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.write_batch(pa.Table.from_pylist(rows, schema=self.schema))

    def _open(self) -> None:
        self._cur_name = self.name(len(self.files))
        self._sink = self.fs.open_output_stream(self.join(self.folder, self._cur_name))
        self._writer = pq.ParquetWriter(
            self._sink, self.schema, compression=COMPRESSION, write_statistics=True, use_dictionary=True
        )
        self._cur_rows = 0
        self._cur_bytes = 0

    def close_part(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._sink.close()
        name = self._cur_name
        assert name is not None
        full = self.join(self.folder, name)
        if self.fsync:
            setstore.fsync_path(full)
        size = self.fs.get_file_info(full).size
        self.files.append({"name": name, "rows": self._cur_rows, "bytes": size, "sha256": _sha256(self.fs, full)})
        self._writer = None
        self._cur_name = None

    def finish(self, empty_part: bool = False) -> list[dict[str, Any]]:
        """Close the open part; ``empty_part``: write one empty part if nothing was written."""
        self.close_part()
        if empty_part and not self.files:
            self._open()
            self.close_part()
        return self.files

    def discard(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
                self._sink.close()
        except OSError:
            pass
        self._writer = None


def _sha256(fs: pafs.FileSystem, full: str) -> str:
    h = hashlib.sha256()
    with fs.open_input_stream(full) as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class PartTarget:
    """Where a shard task writes its part files: picklable, so it travels to any worker (the
    folder must be reachable from every node: a shared path or an object-store URI)."""

    uri: str
    schema: pa.Schema
    shard_rows: int = DEFAULT_SHARD_ROWS
    shard_bytes: int = DEFAULT_SHARD_BYTES
    row_group_rows: int = DEFAULT_ROW_GROUP_ROWS
    fsync: bool = True

    def writer(self, shard: int) -> PartWriter:
        """A part writer for input shard ``shard``: files ``part-SSSSS-KKK.parquet``, so the names
        (and bytes) do not depend on which worker ran the shard or when."""
        fs, folder = _fs(self.uri)
        return PartWriter(fs, folder, self.schema, name=lambda k: f"part-{shard:05d}-{k:03d}.parquet",
                          shard_rows=self.shard_rows, shard_bytes=self.shard_bytes,
                          row_group_rows=self.row_group_rows, fsync=self.fsync, where=self.uri)


class ShardSetWriter:
    """Streams record batches into a new version of a shard set and commits it atomically.

    Use as a context manager: entering takes the set's writer lock (refusing an output that
    overlaps ``inputs``), leaving the block normally commits, an exception discards the new
    version and the previous committed set stays current. Shards roll over at ``shard_rows``
    rows or ``shard_bytes`` bytes; row groups are capped at ``row_group_rows`` so readers stay
    bounded in memory. Data and manifest are fsynced before the pointer swap.
    """

    def __init__(
        self,
        path: str,
        schema: pa.Schema | None,
        *,
        config: Mapping[str, Any] | None = None,
        input_hashes: Iterable[str] = (),
        extra: Mapping[str, Any] | None = None,
        shard_rows: int = DEFAULT_SHARD_ROWS,
        shard_bytes: int = DEFAULT_SHARD_BYTES,
        row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
        inputs: Iterable[str] = (),
        keep_versions: int | None = None,
        durable: bool = True,
        resumable: bool = False,
    ) -> None:
        self.path = path
        self.schema = schema
        self.config_hash = stable_hash(dict(config or {}))
        self.input_hashes = sorted(input_hashes)
        self.extra = dict(extra or {})
        self.shard_rows = shard_rows
        self.shard_bytes = shard_bytes
        self.row_group_rows = row_group_rows
        self.inputs = [str(i) for i in inputs]
        self.keep_versions = setstore.keep_versions_default() if keep_versions is None else keep_versions
        self.fs, self._final = _fs(path)
        self._local = _is_local(self.fs)
        self._fsync = self._local and durable  # scratch sets (spills) skip fsync
        self._store = setstore.open_store(self.fs, self._final)
        self._lock = None
        self._version = ""
        self._tmp = ""
        self._files: list[dict[str, Any]] = []
        self._side: dict[str, dict[str, Any]] = {}
        self._parts: PartWriter | None = None
        self._added_rows = 0
        self.resumable = resumable
        self._done: dict[int, dict[str, Any]] = {}
        self._closed = False
        self._prepared: Manifest | None = None
        self.group: dict[str, Any] = {}

    # -- context manager
    def __enter__(self) -> ShardSetWriter:
        self.open()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def open(self) -> ShardSetWriter:
        """Check paths, take the lock, tidy what dead writers left, start a new version."""
        if self._lock is not None:
            return self
        safety.check_output(self.path, self.inputs)
        try:
            self._lock = self._store.lock(self.path).acquire()
            try:
                _roll_forward(self._store)
                resume = self._find_resumable() if self.resumable else None
                self._store.clean(self.keep_versions, protect={resume} if resume else set())
                if resume:
                    self._version, self._tmp = resume, self._store.version_path(resume)
                    self._load_done()
                else:
                    self._version, self._tmp = self._store.new_version()
                    if self.resumable:
                        self._write_resume_marker()
                if self.schema is not None:
                    self._parts = PartWriter(self.fs, self._tmp, self.schema, name=PART_TEMPLATE.format,
                                             shard_rows=self.shard_rows, shard_bytes=self.shard_bytes,
                                             row_group_rows=self.row_group_rows, fsync=self._fsync,
                                             where=self.path)
            except BaseException:
                self._lock.release()
                self._lock = None
                raise
        except OSError as exc:
            raise _storage_guard(self.path, exc, "starting a new version") from exc
        return self

    def _write_resume_marker(self) -> None:
        with self.fs.open_output_stream(self._store.join(self._tmp, RESUME_FILE)) as fh:
            fh.write(json.dumps({"key": self._resume_key()}).encode())

    def _drop_resume_state(self) -> None:
        """Completion records and the resume marker are build state, not part of the set."""
        join = self._store.join
        done = join(self._tmp, DONE_DIR)
        if self.fs.get_file_info(done).type == pafs.FileType.Directory:
            self.fs.delete_dir(done)
        marker = join(self._tmp, RESUME_FILE)
        if self.fs.get_file_info(marker).type == pafs.FileType.File:
            self.fs.delete_file(marker)

    def work_dir(self) -> str:
        """A scratch folder beside this set's versions, removed by the next writer or gc if this
        one dies (local data roots only)."""
        self.open()
        return self._store.work_dir()

    # -- writing
    def write_batch(self, batch: pa.RecordBatch | pa.Table) -> None:
        if self._closed:
            raise ShardSetError(f"{self.path}: writer already closed")
        if self.schema is None:
            raise ShardSetError(f"{self.path}: this shard set was opened without a schema (side files only)")
        if batch.num_rows == 0:
            return
        self.open()
        assert self._parts is not None
        self._parts.write_batch(batch)

    @property
    def rows(self) -> int:
        return (self._parts.rows if self._parts else 0) + self._added_rows

    def side_file_path(self, name: str, rows: int | None = None, **info: Any) -> str:
        """A path inside the new version for a side file the caller writes itself (local data
        roots only); it is hashed and listed in the manifest at commit."""
        if not self._local:
            raise ShardSetError(f"{self.path}: side_file_path needs a local data root; use add_side_file")
        self.open()
        self._register_side(name, rows, info)
        return self._join_tmp(name)

    def add_side_file(self, name: str, data: bytes, rows: int | None = None, **info: Any) -> None:
        """Write ``data`` as a side file of this set (any filesystem)."""
        self.open()
        self._register_side(name, rows, info)
        try:
            with self.fs.open_output_stream(self._join_tmp(name)) as fh:
                fh.write(data)
        except OSError as exc:
            raise _storage_guard(self.path, exc) from exc

    def _register_side(self, name: str, rows: int | None, info: dict[str, Any]) -> None:
        if "/" in name or name == MANIFEST or name.startswith("part-") and name.endswith(".parquet"):
            raise ShardSetError(f"{self.path}: invalid side file name {name!r}")
        self._side[name] = {"name": name, "rows": rows, **info}

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.write_batch(pa.Table.from_pylist(rows, schema=self.schema))

    def _sha256(self, full: str) -> str:
        return _sha256(self.fs, full)

    # -- shard tasks (corpus.executor)
    def target(self) -> PartTarget:
        """Where shard tasks write this set's parts (the new version's folder)."""
        self.open()
        if self.schema is None:
            raise ShardSetError(f"{self.path}: a set without a schema has no parts")
        uri = self._tmp if self._local or "://" not in self.path else _uri_of(self.path, self._tmp)
        return PartTarget(uri, self.schema, self.shard_rows, self.shard_bytes, self.row_group_rows, self._fsync)

    def add_parts(self, files: Iterable[Mapping[str, Any]]) -> None:
        """Adopt part files a shard task wrote into this version (call in input order)."""
        if self._parts is not None and self._parts.files:
            raise ShardSetError(f"{self.path}: add_parts after write_batch would interleave two part orders")
        for f in files:
            self._files.append(dict(f))
            self._added_rows += int(f["rows"])
        if hasattr(self._lock, "heartbeat"):
            self._lock.heartbeat()  # object-store locks: this writer is alive

    def done_shards(self) -> dict[int, dict[str, Any]]:
        """Completion records of shards finished by an earlier, interrupted run of this same
        build (``resumable=True``): their parts are already in this version."""
        self.open()
        return dict(self._done)

    def record_done(self, shard: int, record: Mapping[str, Any]) -> None:
        """Remember that ``shard`` is finished (its parts are written): a re-run after a kill
        skips it. Written atomically inside the version; gone once the set is committed."""
        self.open()
        if hasattr(self._lock, "heartbeat"):
            self._lock.heartbeat()  # object-store locks: this writer is alive
        self._done[shard] = dict(record)
        folder = self._store.join(self._tmp, DONE_DIR)
        self.fs.create_dir(folder, recursive=True)
        tmp = self._store.join(folder, f"{shard:05d}.json.partial")
        with self.fs.open_output_stream(tmp) as fh:
            fh.write(json.dumps(record, sort_keys=True).encode())
        self.fs.move(tmp, self._store.join(folder, f"{shard:05d}.json"))

    def _resume_key(self) -> str:
        return stable_hash({"config": self.config_hash, "inputs": self.input_hashes,
                            "schema": self.schema.to_string(show_schema_metadata=False) if self.schema else "",
                            "code": CODE_VERSION})

    def _find_resumable(self) -> str | None:
        """The newest uncommitted version that an interrupted run of this same build left."""
        key = self._resume_key()
        cur = setstore.version_seq(self._store.current_version() or "") or 0
        for seq, name in reversed(self._store.versions()):
            if seq <= cur:
                return None
            base = self._store.version_path(name)
            join = self._store.join
            if self.fs.get_file_info(join(base, MANIFEST)).type == pafs.FileType.File:
                continue
            marker = join(base, RESUME_FILE)
            if self.fs.get_file_info(marker).type != pafs.FileType.File:
                continue
            with self.fs.open_input_stream(marker) as fh:
                if json.loads(fh.read().decode() or "{}").get("key") == key:
                    return name
        return None

    def _load_done(self) -> None:
        folder = self._store.join(self._tmp, DONE_DIR)
        if self.fs.get_file_info(folder).type != pafs.FileType.Directory:
            return
        for info in self.fs.get_file_info(pafs.FileSelector(folder)):
            base = posixpath.basename(info.path)
            if base.endswith(".json") and base[:-5].isdigit():
                with self.fs.open_input_stream(info.path) as fh:
                    self._done[int(base[:-5])] = json.loads(fh.read().decode())

    def _join_tmp(self, name: str) -> str:
        return self._store.join(self._tmp, name)

    # -- commit / abort
    def prepare(self) -> Manifest:
        """Finish the last shard and write + fsync the new version's manifest (not yet current)."""
        if self._closed:
            raise ShardSetError(f"{self.path}: writer already closed")
        if self._prepared is not None:
            return self._prepared
        self.open()
        try:
            if self._parts is not None:
                # An empty set still has one (empty) shard so readers learn the schema.
                self._files.extend(self._parts.finish(empty_part=not self._files))
                self._parts = None
            side = []
            for name in sorted(self._side):
                full = self._join_tmp(name)
                info = self.fs.get_file_info(full)
                if info.type != pafs.FileType.File:
                    raise ShardSetError(f"{self.path}: side file {name!r} was registered but never written")
                if self._fsync:
                    setstore.fsync_path(full)
                side.append(self._side[name] | {"bytes": info.size, "sha256": self._sha256(full)})
            manifest = Manifest(
                rows=sum(int(f["rows"]) for f in self._files),
                bytes=sum(f["bytes"] for f in self._files) + sum(f["bytes"] for f in side),
                files=self._files,
                schema=self.schema.to_string(show_schema_metadata=False) if self.schema is not None else "",
                config_hash=self.config_hash,
                input_hashes=self.input_hashes,
                code_version=CODE_VERSION,
                created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                extra=self.extra,
                side_files=side,
                version=self._version,
                group=self.group,
            )
            self._drop_resume_state()
            failpoints.hit("commit.manifest")
            mpath = self._join_tmp(MANIFEST)
            partial = self._join_tmp(f"{MANIFEST}.partial")
            with self.fs.open_output_stream(partial) as fh:  # readers never see half a manifest
                fh.write(manifest.to_json().encode())
            if self._fsync:
                setstore.fsync_path(partial)
            self.fs.move(partial, mpath)
            if self._fsync:
                setstore.fsync_path(self._tmp)
            failpoints.hit("commit.prepared")
        except OSError as exc:
            raise _storage_guard(self.path, exc, "committing") from exc
        self._prepared = manifest
        return manifest

    def publish(self) -> Manifest:
        """Make the prepared version current (one atomic swap), drop old versions, unlock."""
        try:
            manifest = self.prepare()
        except BaseException:
            self.abort()  # nothing became current: drop the partial version, release the lock
            raise
        try:
            self._store.swap(self._version)
            self._closed = True
            self._store.clean(self.keep_versions)
        except OSError as exc:
            raise _storage_guard(self.path, exc, "committing") from exc
        finally:
            self._unlock()
        return manifest

    def commit(self) -> Manifest:
        """Finish, write the manifest and make the set visible in one step."""
        return self.publish()

    def abort(self) -> None:
        """Discard everything written; the previous committed set (if any) stays current."""
        if self._closed:
            return
        try:
            if self._parts is not None:
                self._parts.discard()
        finally:
            self._parts = None
            self._closed = True
            try:
                if self._tmp and self.fs.get_file_info(self._tmp).type == pafs.FileType.Directory:
                    self.fs.delete_dir(self._tmp)
            except OSError:
                pass  # the next writer (or gc) removes a partial version
            self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def _roll_forward(store) -> None:
    """If an interrupted group commit left this set behind its group, make the group's version
    current (caller holds the set's lock)."""
    cur, _ = _current(store)
    if cur is None:
        return
    ahead = _group_ahead(store, cur)
    if ahead is not None:
        store.swap(ahead[0].version)


@contextmanager
def commit_together(*writers: ShardSetWriter) -> Iterator[tuple[ShardSetWriter, ...]]:
    """Open several writers as one unit: all commit or none does.

    Every member's version is written and fsynced before the first pointer swap, and each
    manifest carries the group's run id and members; a commit killed between two swaps is
    completed by readers (they read the group's new version) and by the next writer or gc.
    """
    paths = [w.path for w in writers]
    if len(set(paths)) != len(paths):
        raise ShardSetError(f"commit_together: the same set twice in {paths}")
    for w in writers:  # no member may be another member's input or output
        safety.check_output(w.path, [p for p in paths if p != w.path] + w.inputs)
    opened: list[ShardSetWriter] = []
    try:
        for w in sorted(writers, key=lambda x: x.path):  # one lock order: no deadlock
            w.open()
            opened.append(w)
        yield writers
    except BaseException:
        for w in opened:
            w.abort()
        raise
    gid = uuid.uuid4().hex
    members = {_member_key(w): w._version for w in writers}
    try:
        for w in writers:
            w.group = {"id": gid, "members": members}
            w.prepare()
    except BaseException:
        for w in writers:
            w.abort()
        raise
    failpoints.hit("group.prepared")
    try:
        for i, w in enumerate(writers):
            if i:
                failpoints.hit("group.between_swaps")
            w.publish()
    except BaseException:
        for w in writers:  # prepared versions stay: readers and the next writer roll forward
            if not w._closed:
                w._unlock()
                w._closed = True
        raise


def _member_key(w: ShardSetWriter) -> str:
    return w.path if "://" in w.path else os.path.abspath(w.path)


# --------------------------------------------------------------------------- housekeeping


def gc_set(path: str, keep_versions: int | None = None) -> list[str]:
    """Remove what dead writers of ``path`` left and versions past the retention count.

    Takes the set's lock, so a live writer's version or work folder is never touched; a busy
    set is skipped (returns ``[]``). A set parked by an old-layout replace is restored.
    """
    store = _store(path)
    keep = setstore.keep_versions_default() if keep_versions is None else keep_versions
    if store.local and not os.path.isdir(os.path.dirname(store.final)):
        return []
    try:
        lock = store.lock(path).acquire()
    except SetBusyError:
        return []
    try:
        _roll_forward(store)
        return store.clean(keep)
    finally:
        lock.release()


def clean_stale_temps(path: str) -> int:
    """Number of leftovers of dead writers removed at ``path`` (see ``gc_set``)."""
    return len(gc_set(path))


def delete_set(path: str) -> None:
    """Remove a shard set with all its versions, under its lock."""
    store = _store(path)
    with store.lock(path):
        store.delete()


def set_paths_under(root: str) -> list[str]:
    """Every shard set path under a local ``root`` (committed or with versions), sorted."""
    out: set[str] = set()
    for dirpath, dirnames, _files in os.walk(root):
        for d in list(dirnames):
            full = os.path.join(dirpath, d)
            if d.startswith(".") and d.endswith(".versions"):
                out.add(os.path.join(dirpath, d[1:-len(".versions")]))
                dirnames.remove(d)
            elif os.path.islink(full) or os.path.isfile(os.path.join(full, MANIFEST)):
                out.add(full)
                dirnames.remove(d)
            elif ".tmp-" in d or ".old-" in d:
                out.add(os.path.join(dirpath, d.split(".tmp-")[0].split(".old-")[0]))
                dirnames.remove(d)
    return sorted(out)


# --------------------------------------------------------------------------- reader


def _committed(path: str) -> tuple[Manifest, str]:
    found = _resolve(path)
    if found is None:
        raise ShardSetError(
            f"{path}: no {MANIFEST}; this shard set was never committed (materialize the upstream asset first)"
        )
    return found


def shard_files(path: str) -> list[str]:
    """The committed part files of the shard set at ``path``, in order, all of one version.

    Raises ShardSetError if the folder has no manifest (never committed, or half-written).
    """
    m, base = _committed(path)
    fs, _ = _fs(path)
    join = os.path.join if _is_local(fs) else posixpath.join
    return [join(base, f["name"]) for f in m.files]


def side_file(path: str, name: str) -> str:
    """Full path of a committed side file (model, tokenizer, token arrays) of a shard set."""
    m, base = _committed(path)
    if name not in {f["name"] for f in m.side_files}:
        raise ShardSetError(f"{path}: no side file {name!r} in the manifest (has {[f['name'] for f in m.side_files]})")
    fs, _ = _fs(path)
    return os.path.join(base, name) if _is_local(fs) else posixpath.join(base, name)


def read_schema(path: str) -> pa.Schema:
    files = shard_files(path)
    fs, _ = _fs(path)
    with fs.open_input_file(files[0]) as fh:
        return pq.read_schema(fh)


def iter_batches(
    path: str, columns: list[str] | None = None, batch_size: int = DEFAULT_ROW_GROUP_ROWS
) -> Iterator[pa.RecordBatch]:
    """Stream the record batches of a committed shard set (bounded memory)."""
    fs, _ = _fs(path)
    for f in shard_files(path):
        yield from iter_parquet_file(f, columns=columns, batch_size=batch_size, filesystem=fs)


def iter_parquet_file(
    path: str,
    columns: list[str] | None = None,
    batch_size: int = DEFAULT_ROW_GROUP_ROWS,
    filesystem: pafs.FileSystem | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream one Parquet file; a malformed file raises ShardSetError naming it."""
    fs = filesystem
    if fs is None:
        fs, path = _fs(path)
    try:
        fh = fs.open_input_file(path)
        pf = pq.ParquetFile(fh)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ShardSetError(f"{path}: not a readable Parquet file ({exc})") from exc
    if columns:
        missing = [c for c in columns if c not in pf.schema_arrow.names]
        if missing:
            raise ShardSetError(
                f"{path}: missing required column(s) {missing}; it has {pf.schema_arrow.names}"
            )
    try:
        yield from pf.iter_batches(batch_size=batch_size, columns=columns)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ShardSetError(f"{path}: corrupt Parquet data ({exc})") from exc
    finally:
        fh.close()


def parquet_file_schema(path: str) -> pa.Schema:
    """Schema of one Parquet input file; an unreadable file raises ShardSetError naming it.

    The one copy of the check the stages run on every input file before streaming it."""
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ShardSetError(f"{path}: not a readable Parquet file ({exc})") from exc


def list_parquet_inputs(path: str) -> list[str]:
    """Parquet files under a user-given folder (or the file itself), sorted, for CLI inputs.

    A committed shard set is read through its manifest; any other folder is globbed.
    """
    fs, p = _fs(path)
    info = fs.get_file_info(p)
    if info.type == pafs.FileType.NotFound:
        raise ShardSetError(f"{path}: input does not exist")
    if info.type == pafs.FileType.File:
        return [p]
    if read_manifest(path) is not None:
        return shard_files(path)
    files = _glob_parquet(fs, p)
    if not files:
        raise ShardSetError(f"{path}: no .parquet files found")
    return files


def _glob_parquet(fs: pafs.FileSystem, folder: str) -> list[str]:
    """Parquet files under a plain folder: committed sets inside it contribute their current
    files; hidden folders (versions, temporaries) and ``*.tmp-*`` / ``*.old-*`` are skipped."""
    out: list[str] = []
    join = os.path.join if _is_local(fs) else posixpath.join
    for info in sorted(fs.get_file_info(pafs.FileSelector(folder)), key=lambda i: i.path):
        name = posixpath.basename(info.path.rstrip("/"))
        if name.startswith(".") or ".tmp-" in name or ".old-" in name:
            continue
        if info.type == pafs.FileType.Directory:
            sub = join(folder, name)
            out.extend(shard_files(sub) if read_manifest(sub) is not None else _glob_parquet(fs, sub))
        elif info.type == pafs.FileType.File and name.endswith(".parquet"):
            out.append(info.path)
    return sorted(out)


def committed_partitions(root: str, asset: str) -> list[str]:
    """Partition keys of ``asset`` that have a committed shard set, sorted."""
    fs, base = _fs(_join(root, asset))
    if fs.get_file_info(base).type != pafs.FileType.Directory:
        return []
    out = []
    for info in fs.get_file_info(pafs.FileSelector(base)):
        name = os.path.basename(info.path.rstrip("/"))
        if (info.type == pafs.FileType.Directory and not name.startswith(".")
                and ".tmp-" not in name and ".old-" not in name):
            if read_manifest(_join(root, asset, name)) is not None:
                out.append(name)
    return sorted(out)


def count_rows(path: str) -> int:
    return _committed(path)[0].rows

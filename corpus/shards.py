"""Shard sets: the on-disk contract between every corpus stage.

A shard set is a folder ``<root>/<asset>/<partition or _all>/`` holding ``part-NNNNN.parquet``
files and a ``_manifest.json``. Writers stream record batches into a temporary sibling folder
and commit by renaming it into place (local disks) or by writing the manifest last (object
stores), so a killed run never leaves a set that readers trust. Readers stream record
batches, never whole tables, and only trust folders that carry a manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from corpus import __version__ as CODE_VERSION

MANIFEST = "_manifest.json"
ALL_PARTITIONS = "_all"
PART_TEMPLATE = "part-{:05d}.parquet"
DEFAULT_ROW_GROUP_ROWS = 2_000
DEFAULT_SHARD_ROWS = 50_000
DEFAULT_SHARD_BYTES = 256 * 1024 * 1024
COMPRESSION = "zstd"


class ShardSetError(RuntimeError):
    """A shard set is missing, uncommitted or malformed; the message names the path."""


# --------------------------------------------------------------------------- paths


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
    """What ``_manifest.json`` records about a committed shard set."""

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

    @property
    def content_hash(self) -> str:
        """Identity of this set for downstream manifests: what it was built from and holds."""
        return stable_hash(
            {
                "files": [(f["name"], f["rows"], f["sha256"]) for f in self.files],
                "side_files": [(f["name"], f["sha256"]) for f in self.side_files],
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


def read_manifest(path: str) -> Manifest | None:
    """The manifest of the shard set at ``path``, or None if it is absent (not committed)."""
    fs, p = _fs(path)
    mpath = posixpath.join(p, MANIFEST) if not _is_local(fs) else os.path.join(p, MANIFEST)
    info = fs.get_file_info(mpath)
    if info.type != pafs.FileType.File:
        return None
    with fs.open_input_stream(mpath) as fh:
        return Manifest.from_json(fh.read().decode(), mpath)


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


# --------------------------------------------------------------------------- writer


class ShardSetWriter:
    """Streams record batches into a new shard set and commits it atomically.

    Use as a context manager: leaving the block normally commits, an exception discards the
    temporary folder. Shards roll over at ``shard_rows`` rows or ``shard_bytes`` bytes; row
    groups are capped at ``row_group_rows`` so readers stay bounded in memory.
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
    ) -> None:
        self.path = path
        self.schema = schema
        self.config_hash = stable_hash(dict(config or {}))
        self.input_hashes = sorted(input_hashes)
        self.extra = dict(extra or {})
        self.shard_rows = shard_rows
        self.shard_bytes = shard_bytes
        self.row_group_rows = row_group_rows
        self.fs, self._final = _fs(path)
        self._local = _is_local(self.fs)
        self._tmp = f"{self._final}.tmp-{uuid.uuid4().hex[:12]}"
        self._files: list[dict[str, Any]] = []
        self._side: dict[str, dict[str, Any]] = {}
        self._writer: pq.ParquetWriter | None = None
        self._cur_name: str | None = None
        self._cur_rows = 0
        self._cur_bytes = 0
        self.rows = 0
        self._closed = False

    # -- context manager
    def __enter__(self) -> ShardSetWriter:
        self.fs.create_dir(self._tmp, recursive=True)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    # -- writing
    def write_batch(self, batch: pa.RecordBatch | pa.Table) -> None:
        if self._closed:
            raise ShardSetError(f"{self.path}: writer already closed")
        if self.schema is None:
            raise ShardSetError(f"{self.path}: this shard set was opened without a schema (side files only)")
        if batch.num_rows == 0:
            return
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        if not table.schema.equals(self.schema):
            try:
                table = table.select(self.schema.names).cast(self.schema)
            except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ShardSetError(
                    f"{self.path}: batch schema does not match the shard set's schema "
                    f"({exc}); expected {self.schema}"
                ) from exc
        offset = 0
        while offset < table.num_rows:
            if self._writer is None:
                self._open_shard()
            room = self.shard_rows - self._cur_rows
            chunk = table.slice(offset, room)
            assert self._writer is not None
            self._writer.write_table(chunk, row_group_size=self.row_group_rows)
            self._cur_rows += chunk.num_rows
            self._cur_bytes += chunk.nbytes
            self.rows += chunk.num_rows
            offset += chunk.num_rows
            if self._cur_rows >= self.shard_rows or self._cur_bytes >= self.shard_bytes:
                self._close_shard()

    def side_file_path(self, name: str, rows: int | None = None, **info: Any) -> str:
        """A path inside the temporary folder for a side file the caller writes itself (local
        data roots only); it is hashed and listed in the manifest at commit."""
        if not self._local:
            raise ShardSetError(f"{self.path}: side_file_path needs a local data root; use add_side_file")
        self._register_side(name, rows, info)
        return self._join_tmp(name)

    def add_side_file(self, name: str, data: bytes, rows: int | None = None, **info: Any) -> None:
        """Write ``data`` as a side file of this set (any filesystem)."""
        self._register_side(name, rows, info)
        with self.fs.open_output_stream(self._join_tmp(name)) as fh:
            fh.write(data)

    def _register_side(self, name: str, rows: int | None, info: dict[str, Any]) -> None:
        if "/" in name or name == MANIFEST or name.startswith("part-") and name.endswith(".parquet"):
            raise ShardSetError(f"{self.path}: invalid side file name {name!r}")
        self._side[name] = {"name": name, "rows": rows, **info}

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.write_batch(pa.Table.from_pylist(rows, schema=self.schema))

    def _open_shard(self) -> None:
        self._cur_name = PART_TEMPLATE.format(len(self._files))
        sink = self.fs.open_output_stream(self._join_tmp(self._cur_name))
        self._writer = pq.ParquetWriter(
            sink, self.schema, compression=COMPRESSION, write_statistics=True, use_dictionary=True
        )
        self._sink = sink
        self._cur_rows = 0
        self._cur_bytes = 0

    def _close_shard(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._sink.close()
        name = self._cur_name
        assert name is not None
        full = self._join_tmp(name)
        size = self.fs.get_file_info(full).size
        self._files.append({"name": name, "rows": self._cur_rows, "bytes": size, "sha256": self._sha256(full)})
        self._writer = None
        self._cur_name = None

    def _sha256(self, full: str) -> str:
        h = hashlib.sha256()
        with self.fs.open_input_stream(full) as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        return h.hexdigest()

    def _join_tmp(self, name: str) -> str:
        return os.path.join(self._tmp, name) if self._local else posixpath.join(self._tmp, name)

    # -- commit / abort
    def commit(self) -> Manifest:
        """Finish the last shard, write the manifest and make the set visible in one step."""
        if self._closed:
            raise ShardSetError(f"{self.path}: writer already closed")
        self._close_shard()
        if not self._files and self.schema is not None:
            # An empty set still has one (empty) shard so readers learn the schema.
            self._open_shard()
            self._close_shard()
        side = []
        for name in sorted(self._side):
            full = self._join_tmp(name)
            info = self.fs.get_file_info(full)
            if info.type != pafs.FileType.File:
                raise ShardSetError(f"{self.path}: side file {name!r} was registered but never written")
            side.append(self._side[name] | {"bytes": info.size, "sha256": self._sha256(full)})
        manifest = Manifest(
            rows=self.rows,
            bytes=sum(f["bytes"] for f in self._files) + sum(f["bytes"] for f in side),
            files=self._files,
            schema=self.schema.to_string(show_schema_metadata=False) if self.schema is not None else "",
            config_hash=self.config_hash,
            input_hashes=self.input_hashes,
            code_version=CODE_VERSION,
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            extra=self.extra,
            side_files=side,
        )
        with self.fs.open_output_stream(self._join_tmp(MANIFEST)) as fh:
            fh.write(manifest.to_json().encode())
        self._publish()
        self._closed = True
        return manifest

    def _publish(self) -> None:
        if self._local:
            parent = os.path.dirname(self._final)
            os.makedirs(parent, exist_ok=True)
            old = None
            if os.path.exists(self._final):
                old = f"{self._final}.old-{uuid.uuid4().hex[:12]}"
                os.rename(self._final, old)
            os.rename(self._tmp, self._final)
            if old:
                shutil.rmtree(old, ignore_errors=True)
            _fsync_dir(parent)
        else:
            # Object stores have no atomic folder rename: remove the old set's manifest first
            # (so it stops being trusted), copy the parts, then write the manifest last.
            self.fs.delete_dir_contents(self._final, missing_dir_ok=True)
            for f in self._files + [{"name": n} for n in sorted(self._side)]:
                self.fs.move(posixpath.join(self._tmp, f["name"]), posixpath.join(self._final, f["name"]))
            self.fs.move(posixpath.join(self._tmp, MANIFEST), posixpath.join(self._final, MANIFEST))
            self.fs.delete_dir(self._tmp)

    def abort(self) -> None:
        """Discard everything written; the previous committed set (if any) stays untouched."""
        if self._closed:
            return
        try:
            if self._writer is not None:
                self._writer.close()
                self._sink.close()
        finally:
            self._writer = None
            self.fs.delete_dir(self._tmp) if self.fs.get_file_info(self._tmp).type == pafs.FileType.Directory else None
            self._closed = True


def _fsync_dir(path: str) -> None:
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


def clean_stale_temps(path: str) -> int:
    """Remove ``*.tmp-*`` / ``*.old-*`` siblings left by killed writers of ``path``; returns count."""
    fs, final = _fs(path)
    if not _is_local(fs):
        return 0
    parent, base = os.path.split(final)
    if not os.path.isdir(parent):
        return 0
    n = 0
    for name in os.listdir(parent):
        if name.startswith(base + ".tmp-") or name.startswith(base + ".old-"):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
            n += 1
    return n


# --------------------------------------------------------------------------- reader


def shard_files(path: str) -> list[str]:
    """The committed part files of the shard set at ``path``, in order.

    Raises ShardSetError if the folder has no manifest (never committed, or half-written).
    """
    m = read_manifest(path)
    if m is None:
        raise ShardSetError(
            f"{path}: no {MANIFEST}; this shard set was never committed (materialize the upstream asset first)"
        )
    fs, p = _fs(path)
    sep = os.path.join if _is_local(fs) else posixpath.join
    return [sep(p, f["name"]) for f in m.files]


def side_file(path: str, name: str) -> str:
    """Full path of a committed side file (model, tokenizer, token arrays) of a shard set."""
    m = read_manifest(path)
    if m is None:
        raise ShardSetError(f"{path}: no {MANIFEST}; this shard set was never committed")
    if name not in {f["name"] for f in m.side_files}:
        raise ShardSetError(f"{path}: no side file {name!r} in the manifest (has {[f['name'] for f in m.side_files]})")
    fs, p = _fs(path)
    return os.path.join(p, name) if _is_local(fs) else posixpath.join(p, name)


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
    sel = pafs.FileSelector(p, recursive=True)
    files = sorted(
        i.path for i in fs.get_file_info(sel)
        if i.type == pafs.FileType.File and i.path.endswith(".parquet") and ".tmp-" not in i.path
    )
    if not files:
        raise ShardSetError(f"{path}: no .parquet files found")
    return files


def committed_partitions(root: str, asset: str) -> list[str]:
    """Partition keys of ``asset`` that have a committed shard set, sorted."""
    fs, base = _fs(_join(root, asset))
    if fs.get_file_info(base).type != pafs.FileType.Directory:
        return []
    out = []
    for info in fs.get_file_info(pafs.FileSelector(base)):
        name = os.path.basename(info.path.rstrip("/"))
        if info.type == pafs.FileType.Directory and ".tmp-" not in name and ".old-" not in name:
            if read_manifest(_join(root, asset, name)) is not None:
                out.append(name)
    return sorted(out)


def count_rows(path: str) -> int:
    m = read_manifest(path)
    if m is None:
        raise ShardSetError(f"{path}: no {MANIFEST}")
    return m.rows

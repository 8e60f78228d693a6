"""Dedup inputs: every Parquet file is checked up front (readable, has ``id`` and ``content``,
same columns as the first) and rows get one global index, so map tasks can run anywhere."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

REQUIRED_COLUMNS = ("id", "content")


class DedupInputError(ValueError):
    """An input file cannot be deduplicated; the message names the file (and row) and the fix."""


@dataclass(frozen=True)
class InputPlan:
    files: tuple[str, ...]
    row_offsets: tuple[int, ...]  # global index of each file's first row; last = total rows
    schema: pa.Schema  # the first file's schema: every file is read and written with it

    @property
    def total_rows(self) -> int:
        return self.row_offsets[-1]

    def shard_of(self, docs: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.row_offsets), docs, side="right") - 1


def parquet_meta(path: str) -> tuple[pa.Schema, int]:
    """Schema and row count from the footer (local path or pyarrow URI)."""
    if "://" in path:
        fs, p = pafs.FileSystem.from_uri(path)
    else:
        fs, p = pafs.LocalFileSystem(), os.path.abspath(path)
    with fs.open_input_file(p) as fh:
        pf = pq.ParquetFile(fh)
        return pf.schema_arrow, pf.metadata.num_rows


def plan_inputs(files: Sequence[str]) -> InputPlan:
    """Check every input file up front (readable, has ``id`` and ``content``) and count rows."""
    if not files:
        raise DedupInputError("no input files")
    offsets = [0]
    schema: pa.Schema | None = None
    for f in files:
        try:
            fschema, rows = parquet_meta(f)
        except (OSError, pa.ArrowInvalid) as exc:
            raise DedupInputError(f"{f}: not a readable Parquet file ({exc})") from exc
        missing = [c for c in REQUIRED_COLUMNS if c not in fschema.names]
        if missing:
            raise DedupInputError(
                f"{f}: missing required column(s) {missing} (has {fschema.names}); dedup needs "
                "`id` and `content` in every input file"
            )
        for c in REQUIRED_COLUMNS:
            t = fschema.field(c).type
            if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
                    or pa.types.is_large_binary(t) or (c == "id" and pa.types.is_integer(t))):
                raise DedupInputError(f"{f}: column {c!r} has type {t}; expected a string column")
        if schema is None:
            schema = fschema
        elif set(fschema.names) != set(schema.names):
            raise DedupInputError(
                f"{f}: columns {sorted(fschema.names)} differ from the first input file's "
                f"{sorted(schema.names)} ({files[0]}); dedup one schema at a time"
            )
        offsets.append(offsets[-1] + rows)
    assert schema is not None
    return InputPlan(tuple(files), tuple(offsets), schema)

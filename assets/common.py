"""Small helpers shared by asset modules: shard-set paths, input hashes, metadata tables."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dagster as dg
import pyarrow as pa

from assets.resources import CorpusResource
from corpus import shards


def partition_or_none(context: dg.AssetExecutionContext) -> str | None:
    return context.partition_key if context.has_partition_key else None


def upstream_hashes(corpus: CorpusResource, assets: Iterable[str], partition: str | None) -> list[str]:
    """Content hashes of committed upstream sets (same partition), raising a clear error if absent."""
    out = []
    for asset in assets:
        path = corpus.path(asset, partition)
        m = shards.read_manifest(path)
        if m is None:
            raise dg.Failure(
                description=f"upstream shard set {path} is not committed: materialize {asset!r}"
                + (f" for partition {partition!r}" if partition else "")
                + " first"
            )
        out.append(m.content_hash)
    return out


def partition_sets(corpus: CorpusResource, asset: str) -> list[tuple[str, str]]:
    """(path, ``key:content hash``) of every committed partition of ``asset``: the one walk over
    partitions behind :func:`all_partition_hashes` and the post-training inputs."""
    out = []
    for key in shards.committed_partitions(corpus.data_root, asset):
        path = corpus.path(asset, key)
        m = shards.read_manifest(path)
        if m is not None:
            out.append((path, f"{key}:{m.content_hash}"))
    return out


def all_partition_hashes(corpus: CorpusResource, asset: str) -> list[str]:
    """Content hashes of every committed partition of ``asset`` (for unpartitioned consumers)."""
    return [h for _, h in partition_sets(corpus, asset)]


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")


def md_escape(text: Any) -> str:
    """``text`` shown literally in Dagster's markdown (``__init__.py`` must not render as bold)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def _column_type(values: list[Any]) -> str:
    present = [v for v in values if v is not None and v != ""]
    if present and all(isinstance(v, bool) for v in present):
        return "bool"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int"
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "float"
    return "string"


def _cell(v: Any) -> str | int | float | bool | None:
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> dg.MetadataValue:
    """A table for the Dagster UI (``MetadataValue.table``: typed columns, rendered inline, no
    markdown escaping to get wrong). Rows keep the order given: put what matters first."""
    body = [[_cell(c) for c in r] for r in rows]
    columns = [dg.TableColumn(h, _column_type([r[i] for r in body if i < len(r)])) for i, h in enumerate(headers)]
    records = [dg.TableRecord({h: (r[i] if i < len(r) else None) for i, h in enumerate(headers)}) for r in body]
    return dg.MetadataValue.table(records, schema=dg.TableSchema(columns=columns))


def counts_table(counts: Mapping[str, int], key: str = "reason", value: str = "count") -> dg.MetadataValue:
    """Largest count first, then by name."""
    return md_table([key, value], sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0]))))


def column_schema(schema: pa.Schema, descriptions: Mapping[str, str] | None = None) -> dg.TableSchema:
    """The ``dagster/column_schema`` of a row contract (a pyarrow schema)."""
    descriptions = descriptions or {}
    return dg.TableSchema(columns=[
        dg.TableColumn(f.name, str(f.type), description=descriptions.get(f.name),
                       constraints=dg.TableColumnConstraints(nullable=f.nullable))
        for f in schema
    ])


def _set_schema(path: str, manifest: shards.Manifest) -> pa.Schema | None:
    if not manifest.files or not all(str(f.get("name", "")).endswith(".parquet") for f in manifest.files):
        return None
    try:
        return shards.read_schema(path)
    except (OSError, ValueError, shards.ShardSetError):
        return None


def manifest_metadata(path: str, manifest: shards.Manifest, *, reused: bool = False) -> dict[str, Any]:
    """Standard metadata every shard-writing asset reports: ``dagster/row_count`` (plotted over
    time, shown in the catalog), the written set's ``dagster/column_schema``, sizes with units."""
    meta: dict[str, Any] = {
        "dagster/row_count": manifest.rows,
        "path": dg.MetadataValue.path(path),
        "size_bytes": manifest.bytes,
        "shards": len(manifest.files),
        "config_hash": manifest.config_hash[:16],
        "content_hash": manifest.content_hash[:16],
        "reused_existing": reused,
    }
    schema = _set_schema(path, manifest)
    if schema is not None:
        meta["dagster/column_schema"] = column_schema(schema)
    return meta


def report_sets(context: dg.AssetExecutionContext, results: Sequence[dg.MaterializeResult], *,
                rewritten: bool) -> list[dg.MaterializeResult]:
    """The results of a multi-asset step that always writes all its sets: selected keys are
    returned (to yield); a set the step rewrote on disk although it was not selected still gets a
    materialization event, so the catalog never shows bytes older than what is on disk."""
    selected = context.selected_asset_keys
    out = []
    for r in results:
        key = dg.AssetKey.from_coercible(r.asset_key)
        if key in selected:
            out.append(r)
        elif rewritten:
            context.log_event(dg.AssetMaterialization(
                asset_key=key, partition=partition_or_none(context),
                metadata=dict(r.metadata or {}) | {"written_with": ", ".join(k.to_user_string() for k in selected)},
            ))
    return out


def metadata_text(value: Any) -> Any:
    """A metadata value as plain data: tables become ``| cell | cell |`` lines (header first), markdown its
    text, numbers stay numbers (for logs, the CLI and tests)."""
    if isinstance(value, dg.TableMetadataValue):
        header = [c.name for c in value.schema.columns]
        rows = [header] + [["" if c is None else str(c) for c in r.data.values()] for r in value.records]
        return "\n".join("| " + " | ".join(r) + " |" for r in rows)
    if isinstance(value, dg.MetadataValue):
        value = value.value
    if isinstance(value, dg.TableMetadataValue):
        return metadata_text(value)
    return value


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 48) -> str:
    """A one-line text plot (first, bars, last) that the UI shows inline, unlike a markdown image."""
    vals = [float(v) for v in values if v is not None and v == v]
    if not vals:
        return "no values"
    step = max(1, len(vals) // width)
    picked = [vals[i] for i in range(0, len(vals), step)][:width]
    lo, hi = min(picked), max(picked)
    span = (hi - lo) or 1.0
    bars = "".join(_BARS[min(len(_BARS) - 1, int((v - lo) / span * len(_BARS)))] for v in picked)
    return f"{vals[0]:.4g} {bars} {vals[-1]:.4g} (min {min(vals):.4g}, {len(vals)} points)"

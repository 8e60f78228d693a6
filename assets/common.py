"""Small helpers shared by asset modules: shard-set paths, input hashes, metadata tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dagster as dg

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


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> dg.MetadataValue:
    """A markdown table for the Dagster UI."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def counts_table(counts: Mapping[str, int], key: str = "reason", value: str = "count") -> dg.MetadataValue:
    return md_table([key, value], sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def manifest_metadata(path: str, manifest: shards.Manifest, *, reused: bool = False) -> dict[str, Any]:
    """Standard metadata every shard-writing asset reports."""
    return {
        "path": dg.MetadataValue.path(path),
        "rows": manifest.rows,
        "bytes": manifest.bytes,
        "shards": len(manifest.files),
        "config_hash": manifest.config_hash[:16],
        "content_hash": manifest.content_hash[:16],
        "reused_existing": reused,
    }

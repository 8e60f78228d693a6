"""Cross-stage jobs. Stage-specific automation (a filter's nightly re-run, a sensor that
discovers web-text batches) lives beside its assets in their module.

One job per partitioning (language, text batch, none): Dagster runs one partition key per
run, so a job may only mix assets that share a partitions definition.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from assets.partitions import language_partitions, text_batch_partitions


def partition_jobs(assets: Sequence[dg.AssetsDefinition]) -> list[dg.UnresolvedAssetJobDefinition]:
    groups: dict[str, list[dg.AssetKey]] = {"by_language": [], "by_text_batch": [], "unpartitioned": []}
    for a in assets:
        pd = a.partitions_def
        name = (
            "by_language" if pd == language_partitions
            else "by_text_batch" if pd == text_batch_partitions
            else "unpartitioned" if pd is None
            else None
        )
        if name:
            groups[name].extend(a.keys)
    return [
        dg.define_asset_job(
            f"materialize_{name}",
            selection=dg.AssetSelection.assets(*keys),
            description=f"All {name.replace('_', ' ')} assets in dependency order.",
        )
        for name, keys in groups.items()
        if keys
    ]


def definitions(assets: Sequence[dg.AssetsDefinition]) -> dg.Definitions:
    return dg.Definitions(jobs=partition_jobs(assets))

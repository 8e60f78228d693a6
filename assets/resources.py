"""Resources every asset module shares. Instances are built in pipelines/resources.py."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from corpus import shards


class CorpusResource(dg.ConfigurableResource):
    """Where shard sets live and how big the embedded default runs.

    `profile` is `default` (the embedded demo: real local sources, minutes on a laptop) or
    `tiny` (tests: seconds). Assets shrink their caps under `tiny`; every other knob is the
    asset's own Config. (Markdown, not reStructuredText: the UI renders it.)
    """

    data_root: str = Field(default_factory=shards.data_root, description="local path or pyarrow URI")
    profile: str = Field(default="default", description="default | tiny")

    def path(self, asset: str, partition: str | None = None) -> str:
        return shards.shard_set_path(self.data_root, asset, partition)

    @property
    def tiny(self) -> bool:
        return self.profile == "tiny"

"""Resources every asset module shares. Instances are built in pipelines/resources.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field

from corpus import shards
from corpus.executor import KINDS, ExecutorSpec, make_executor


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


class ExecutorResource(dg.ConfigurableResource):
    """Which engine runs the sharded stages (the near-dedup map phase, quality filters,
    decontamination): this process, a local process pool, or a Ray cluster. The output bytes
    are the same whichever is chosen."""

    kind: str = Field(default="local", description=f"one of {', '.join(KINDS)}")
    workers: int = Field(default=1, description="process: pool size; ray with address 'local': CPUs")
    address: str = Field(default="local", description="ray: 'local' (in-process cluster), 'auto', "
                         "'host:6379' or 'ray://host:10001'")
    max_retries: int = Field(default=2, description="re-runs of a task whose worker process died")

    def spec(self) -> ExecutorSpec:
        return ExecutorSpec(kind=self.kind, workers=self.workers, address=self.address, max_retries=self.max_retries)

    @contextmanager
    def open(self) -> Iterator[object]:
        """An executor for one step, closed (Ray disconnected) when the step ends."""
        ex = make_executor(self.spec())
        try:
            yield ex
        finally:
            ex.close()

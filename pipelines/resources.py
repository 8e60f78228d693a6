"""Resource instances for the code location, configured from the environment."""

from __future__ import annotations

import os

from assets.resources import CorpusResource, ExecutorResource
from corpus import shards
from corpus.executor import ExecutorSpec


def default_resources(data_root: str | None = None, profile: str | None = None,
                      executor: ExecutorSpec | None = None) -> dict[str, object]:
    """``corpus`` from ``CODECORPUS_DATA`` / ``CODECORPUS_PROFILE`` and ``executor`` from
    ``CODECORPUS_EXECUTOR`` / ``CODECORPUS_WORKERS`` / ``CODECORPUS_RAY_ADDRESS``, unless given."""
    spec = executor or ExecutorSpec.from_env()
    return {
        "corpus": CorpusResource(
            data_root=data_root or shards.data_root(),
            profile=profile or os.environ.get("CODECORPUS_PROFILE", "default"),
        ),
        "executor": ExecutorResource(kind=spec.kind, workers=spec.workers, address=spec.address,
                                     max_retries=spec.max_retries),
    }

"""Resource instances for the code location, configured from the environment."""

from __future__ import annotations

import os

from assets.resources import CorpusResource
from corpus import shards


def default_resources(data_root: str | None = None, profile: str | None = None) -> dict[str, object]:
    """``corpus`` from ``CODECORPUS_DATA`` / ``CODECORPUS_PROFILE`` unless given explicitly."""
    return {
        "corpus": CorpusResource(
            data_root=data_root or shards.data_root(),
            profile=profile or os.environ.get("CODECORPUS_PROFILE", "default"),
        )
    }

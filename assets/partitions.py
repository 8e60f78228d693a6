"""Partition definitions shared by the asset modules.

Code assets are partitioned by language (a static list, like The Stack); web-text assets by
input batch (dynamic partitions, registered when a batch is discovered).
"""

from __future__ import annotations

import os

import dagster as dg

DEFAULT_LANGUAGES = ("python", "java", "c", "cpp", "javascript", "typescript", "go", "rust", "shell")


def configured_languages() -> list[str]:
    """``CODECORPUS_LANGUAGES`` (comma-separated) or the default list."""
    raw = os.environ.get("CODECORPUS_LANGUAGES", "")
    langs = [x.strip().lower() for x in raw.split(",") if x.strip()]
    return langs or list(DEFAULT_LANGUAGES)


language_partitions = dg.StaticPartitionsDefinition(configured_languages())
text_batch_partitions = dg.DynamicPartitionsDefinition(name="text_batches")

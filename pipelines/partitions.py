"""Partitions of the code location (defined in assets.partitions so assets can use them)."""

from assets.partitions import (  # noqa: F401  (re-exported for the code location)
    DEFAULT_LANGUAGES,
    configured_languages,
    language_partitions,
    text_batch_partitions,
)

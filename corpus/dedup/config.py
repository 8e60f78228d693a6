"""Settings of a dedup run and the statistics it reports."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from corpus.dedup.lsh import optimal_param
from corpus.dedup.policy import DEFAULT_KEEP_POLICY, PERMISSIVE_LICENSES, validate_policy
from corpus.safety import default_policy

_MEMORY = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


@dataclass(frozen=True)
class DedupConfig:
    """Exact + near dedup settings (The Stack / StarCoder defaults).

    ``bands``/``rows`` default to the datasketch-style optimum for ``threshold``; documents with
    fewer than ``min_tokens`` tokens are too short for a meaningful Jaccard estimate and are only
    exact-deduplicated. ``verify`` re-reads candidate pairs and drops those whose true Jaccard of
    shingle sets is below ``threshold``.
    """

    threshold: float = 0.7
    ngram: int = 5
    num_perm: int = 256
    min_tokens: int = 10
    bands: int | None = None
    rows: int | None = None
    fp_weight: float = 0.5
    fn_weight: float = 0.5
    verify: bool = False
    seed: int = 42
    keep_policy: tuple[str, ...] = DEFAULT_KEEP_POLICY
    permissive_licenses: tuple[str, ...] = tuple(sorted(PERMISSIVE_LICENSES))
    invalid_text: str = field(default_factory=default_policy)  # content not UTF-8: skip (recorded) | fail
    # Execution knobs: they never change the output, so they stay out of the config hash.
    batch_rows: int = 2_000
    memory_limit: str = "1GB"
    threads: int = 1
    backend: str = "auto"  # MinHash backend: auto | numba | numpy (same bits)

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.ngram < 1 or self.num_perm < 1 or self.min_tokens < 0 or self.batch_rows < 1 or self.threads < 1:
            raise ValueError("ngram, num_perm, batch_rows and threads must be >= 1 and min_tokens >= 0")
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both bands and rows, or neither (then they are chosen for the threshold)")
        if self.bands is not None and self.rows is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands*rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        if not _MEMORY.match(self.memory_limit):
            raise ValueError(f"memory_limit must look like 512MB or 2GB, got {self.memory_limit!r}")
        if self.invalid_text not in ("skip", "fail"):
            raise ValueError(f"invalid_text must be 'skip' or 'fail', got {self.invalid_text!r}")
        object.__setattr__(self, "keep_policy", validate_policy(tuple(self.keep_policy)))
        object.__setattr__(self, "permissive_licenses", tuple(sorted(self.permissive_licenses)))

    def lsh_params(self) -> tuple[int, int]:
        if self.bands is not None and self.rows is not None:
            return self.bands, self.rows
        return optimal_param(self.threshold, self.num_perm, self.fp_weight, self.fn_weight)

    def result_config(self) -> dict[str, Any]:
        """The settings that determine the output (for the shard set's config hash)."""
        d = asdict(self)
        for k in ("batch_rows", "memory_limit", "threads", "backend"):
            d.pop(k)
        d["bands"], d["rows"] = self.lsh_params()
        return d


@dataclass
class DedupStats:
    """What a run did, for asset metadata and the CLI summary."""

    input_files: int = 0
    input_rows: int = 0
    input_bytes: int = 0
    kept_rows: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    duplicate_ids: int = 0
    null_content: int = 0
    invalid_utf8: int = 0
    short_documents: int = 0
    clusters: int = 0
    largest_cluster: int = 0
    candidate_pairs: int = 0
    verified_pairs: int = 0
    false_positives: int = 0
    bands: int = 0
    rows_per_band: int = 0
    cluster_sizes: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    phase_seconds: dict[str, float] = field(default_factory=dict)
    phase_cpu_seconds: dict[str, float] = field(default_factory=dict)  # this process only

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

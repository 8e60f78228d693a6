"""Exact and near (MinHash-LSH) deduplication of code rows, per language partition.

``run_dedup(files, out, clusters, DedupConfig())`` is the whole stage; its phases
(``map_shard``, ``reduce_clusters``, write) are separate functions so they can run as
independent tasks on a cluster. No Dagster here.
"""

from corpus.dedup.config import DedupConfig, DedupStats
from corpus.dedup.inputs import DedupInputError, InputPlan, plan_inputs
from corpus.dedup.lsh import band_keys, collision_probability, optimal_param
from corpus.dedup.minhash import MinHasher, estimate_jaccard, jaccard, shingle_set
from corpus.dedup.normalize import normalize_content, normalized_hash
from corpus.dedup.pipeline import (
    CLUSTERS_SCHEMA,
    REASONS,
    map_shard,
    output_schema,
    reduce_clusters,
    run_dedup,
)
from corpus.dedup.policy import DEFAULT_KEEP_POLICY, PERMISSIVE_LICENSES, is_permissive
from corpus.dedup.unionfind import UnionFind
from corpus.dedup.verify import verify_pairs

__all__ = [
    "CLUSTERS_SCHEMA", "DEFAULT_KEEP_POLICY", "PERMISSIVE_LICENSES", "REASONS", "DedupConfig",
    "DedupInputError", "DedupStats", "InputPlan", "MinHasher", "UnionFind", "band_keys", "collision_probability",
    "estimate_jaccard", "is_permissive", "jaccard", "map_shard", "normalize_content", "normalized_hash",
    "optimal_param", "output_schema", "plan_inputs", "reduce_clusters", "run_dedup", "shingle_set",
    "verify_pairs",
]

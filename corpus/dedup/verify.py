"""Optional verification of LSH candidate pairs by the true Jaccard of their shingle sets."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from corpus import shards
from corpus.dedup.config import DedupConfig
from corpus.dedup.inputs import InputPlan
from corpus.dedup.minhash import binary_view, jaccard, shingle_hashes, token_hashes


def _load_sets(file: str, rows: np.ndarray, ngram: int, batch_rows: int) -> dict[int, np.ndarray]:
    """Sorted unique shingle hashes of the given rows of one input file."""
    wanted = np.unique(rows)
    out: dict[int, np.ndarray] = {}
    base = 0
    for batch in shards.iter_parquet_file(file, columns=["content"], batch_size=batch_rows):
        n = batch.num_rows
        sel = wanted[(wanted >= base) & (wanted < base + n)]
        if len(sel):
            col = batch.column("content").take(pa.array(sel - base))
            data, offsets, _ = binary_view(col)
            th, td = token_hashes(data, offsets)
            sh, sd = shingle_hashes(th, td, ngram)
            bounds = np.searchsorted(sd, np.arange(len(sel) + 1))
            for i, r in enumerate(sel):
                out[int(r)] = np.unique(sh[bounds[i] : bounds[i + 1]])
        base += n
    return out


def verify_pairs(plan: InputPlan, a: np.ndarray, b: np.ndarray, config: DedupConfig) -> np.ndarray:
    """True Jaccard of the shingle sets of each candidate pair (a[i], b[i]).

    Pairs are grouped by (shard of a, shard of b); at most two shards' candidate documents are
    held in memory at a time.
    """
    sims = np.zeros(len(a), dtype=np.float64)
    if not len(a):
        return sims
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    sa, sb = plan.shard_of(lo), plan.shard_of(hi)
    offs = np.asarray(plan.row_offsets)
    order = np.lexsort((sb, sa))
    for i in np.unique(sa):
        in_i = order[sa[order] == i]
        rows_i = np.concatenate([lo[in_i], hi[in_i][sb[in_i] == i]]) - offs[i]
        sets_i = _load_sets(plan.files[i], rows_i, config.ngram, config.batch_rows)
        for j in np.unique(sb[in_i]):
            pj = in_i[sb[in_i] == j]
            if j == i:
                sets_j = sets_i
            else:
                sets_j = _load_sets(plan.files[j], hi[pj] - offs[j], config.ngram, config.batch_rows)
            for k in pj:
                sims[k] = jaccard(sets_i[int(lo[k] - offs[i])], sets_j[int(hi[k] - offs[j])])
    return sims

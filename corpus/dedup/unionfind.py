"""Union-find over integer ids with vectorized (batch) unions, for connected components.

Each round hooks the larger root of every still-crossing edge under the smaller one and then
compresses all paths with pointer jumping, so the number of roots strictly falls and the final
root of every component is its smallest member: labels are deterministic whatever the edge
order. Memory is one int64 per element; edges are streamed in batches.
"""

from __future__ import annotations

import numpy as np


class UnionFind:
    """Disjoint sets over ``0..n-1``; ``union_many`` takes edge arrays, ``labels`` gives roots."""

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)

    def _compress(self) -> None:
        p = self.parent
        while True:
            pp = p[p]
            if np.array_equal(pp, p):
                break
            p = pp
        self.parent = p

    def union_many(self, a: np.ndarray, b: np.ndarray) -> None:
        """Merge the sets of ``a[i]`` and ``b[i]`` for every i."""
        a = np.asarray(a, dtype=np.int64)
        b = np.asarray(b, dtype=np.int64)
        while len(a):
            ra, rb = self.parent[a], self.parent[b]
            cross = ra != rb
            if not cross.any():
                return
            a, b, ra, rb = a[cross], b[cross], ra[cross], rb[cross]
            np.minimum.at(self.parent, np.maximum(ra, rb), np.minimum(ra, rb))
            self._compress()

    def union(self, a: int, b: int) -> None:
        self.union_many(np.array([a]), np.array([b]))

    def find(self, x: int) -> int:
        return int(self.parent[x])

    def labels(self) -> np.ndarray:
        """Root (smallest member) of every element's set."""
        return self.parent

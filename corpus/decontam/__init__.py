"""Benchmark decontamination by exact n-gram overlap (10-grams, as the Qwen2.5-Coder report).

```python
from corpus.decontam import Decontaminator
d = Decontaminator.from_config(ngram=10, benchmarks=("humaneval", "mbpp", "gsm8k", "math"), extra=[])
d.find(text)                      # list[Hit(benchmark, task_id, ngram)], empty = clean
d.filter_shard_set(in_path, out_path, removed_path, text_column="content")
```
"""

from corpus.decontam.benchmarks import (
    BUILTIN,
    DEFAULT_BENCHMARKS,
    BenchItem,
    BenchmarkSpec,
    DecontamError,
    load_items,
)
from corpus.decontam.core import REMOVED_SCHEMA, Decontaminator, FilterStats, Hit
from corpus.decontam.reference import SetDecontaminator

__all__ = [
    "BUILTIN",
    "DEFAULT_BENCHMARKS",
    "REMOVED_SCHEMA",
    "BenchItem",
    "BenchmarkSpec",
    "DecontamError",
    "Decontaminator",
    "FilterStats",
    "Hit",
    "SetDecontaminator",
    "load_items",
]

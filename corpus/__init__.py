"""codecorpus processing library: no Dagster here, so every stage can be tested, benchmarked
and shipped to a cluster on its own."""

__version__ = "0.1.0"

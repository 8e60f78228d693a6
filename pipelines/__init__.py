"""Dagster code location and the ``codecorpus`` CLI."""

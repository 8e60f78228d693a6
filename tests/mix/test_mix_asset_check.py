"""The mixture's ratio check fails when a committed mixture is off target (and passes when on)."""

from __future__ import annotations

import dagster as dg

from assets.mix import mixture_ratios_on_target
from assets.resources import CorpusResource
from corpus import shards
from corpus.mix import MIX_SCHEMA


def _write(root, target, actual):
    with shards.ShardSetWriter(shards.shard_set_path(str(root), "mixture"), MIX_SCHEMA,
                               extra={"target_shares": target, "actual_shares": actual}):
        pass


def test_check_fails_off_target_and_passes_on_target(tmp_path):
    corpus = CorpusResource(data_root=str(tmp_path))
    assert mixture_ratios_on_target(corpus=corpus).passed is False  # nothing committed
    _write(tmp_path, {"code": 0.7, "math": 0.3}, {"code": 0.75, "math": 0.25})
    r = mixture_ratios_on_target(corpus=corpus)
    assert r.passed is False and abs(r.metadata["max_abs_deviation"].value - 0.05) < 1e-9
    assert r.severity == dg.AssetCheckSeverity.WARN  # a soft signal: warns, does not fail the run
    _write(tmp_path, {"code": 0.7, "math": 0.3}, {"code": 0.705, "math": 0.295})
    assert mixture_ratios_on_target(corpus=corpus).passed is True

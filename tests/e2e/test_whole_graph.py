"""The whole asset graph materializes in-process on the tiny profile, on real local data.

This is `codecorpus run` with an ephemeral instance: every asset, every partition, in the
runner's wave order. Then a second run must reuse every shard set (no-op re-materialization).
"""

import os

import dagster as dg
import pytest

from corpus import shards
from corpus.executor import ExecutorSpec
from pipelines.definitions import build_definitions
from pipelines.resources import default_resources
from pipelines.runner import plan_waves, run_waves

pytestmark = pytest.mark.slow

LANGS = ["python", "java", "javascript"]


def _run_graph(root: str, executor: ExecutorSpec | None = None):
    resources = default_resources(data_root=root, profile="tiny", executor=executor or ExecutorSpec())
    defs = build_definitions(resources)
    instance = dg.DagsterInstance.ephemeral()
    waves = plan_waves(defs, instance, resources["corpus"], partitions=LANGS)
    logs: list[str] = []
    failures = run_waves(defs, instance, waves, log=logs.append)
    return defs, instance, waves, failures, logs


def _digest(root: str) -> dict:
    """sha256 of every committed file of every shard set under ``root``."""
    out = {}
    for asset in sorted(os.listdir(root)):
        if asset.startswith("_"):
            continue
        for part in shards.committed_partitions(root, asset):
            m = shards.read_manifest(shards.shard_set_path(root, asset, part))
            for f in m.files + m.side_files:
                out[(asset, part, f["name"])] = f["sha256"]
    return out


# Run logs of training carry measured throughput (tokens/s) and the run's own paths; the
# model weights and every Parquet row beside them must still be identical.
MEASUREMENTS = {"history.json", "training_state.pt"}


@pytest.fixture(scope="module")
def graph_run(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("e2e-data"))
    old = os.environ.get("CODECORPUS_DATA")
    os.environ["CODECORPUS_DATA"] = root
    try:
        resources = default_resources(data_root=root, profile="tiny")
        defs = build_definitions(resources)
        instance = dg.DagsterInstance.ephemeral()
        waves = plan_waves(defs, instance, resources["corpus"], partitions=LANGS)
        logs: list[str] = []
        failures = run_waves(defs, instance, waves, log=logs.append)
        yield defs, instance, root, waves, failures, logs
    finally:
        if old is None:
            os.environ.pop("CODECORPUS_DATA", None)
        else:
            os.environ["CODECORPUS_DATA"] = old


def test_every_asset_materializes(graph_run):
    defs, instance, root, waves, failures, logs = graph_run
    assert failures == [], "\n".join(logs[-30:])
    graph = defs.resolve_asset_graph()
    for key in graph.materializable_asset_keys:
        record = instance.get_latest_materialization_event(key)
        assert record is not None, f"{key.to_user_string()} was never materialized"
        name = key.to_user_string()
        pdef = graph.get(key).partitions_def
        if pdef is None:
            assert shards.is_committed(shards.shard_set_path(root, name)), name
        else:
            assert shards.committed_partitions(root, name), name


def test_rerun_is_a_noop(graph_run):
    defs, instance, root, waves, failures, logs = graph_run
    assert failures == []
    before = {
        (a, p): shards.read_manifest(shards.shard_set_path(root, a, p)).content_hash
        for a in os.listdir(root) if not a.startswith("_")
        for p in shards.committed_partitions(root, a)
    }
    assert run_waves(defs, instance, waves, log=lambda m: None) == []
    after = {
        (a, p): shards.read_manifest(shards.shard_set_path(root, a, p)).content_hash
        for a in os.listdir(root) if not a.startswith("_")
        for p in shards.committed_partitions(root, a)
    }
    assert after == before


def test_fresh_run_on_ray_gives_identical_bytes(graph_run, tmp_path_factory, ray_cluster):
    """Same input + same config -> same output bytes, in a second data root from scratch, with
    the sharded stages on a two-node Ray cluster instead of this process."""
    defs, instance, root, waves, failures, logs = graph_run
    assert failures == []
    other = str(tmp_path_factory.mktemp("e2e-data-again"))
    old = os.environ["CODECORPUS_DATA"]
    os.environ["CODECORPUS_DATA"] = other
    try:
        *_, failures2, logs2 = _run_graph(other, ExecutorSpec("ray", address=ray_cluster))
    finally:
        os.environ["CODECORPUS_DATA"] = old
    assert failures2 == [], "\n".join(logs2[-30:])
    a, b = _digest(root), _digest(other)
    assert a.keys() == b.keys()
    differ = sorted(k for k in a if a[k] != b[k] and k[2] not in MEASUREMENTS)
    assert differ == []
    assert any(k[2] == "model.safetensors" for k in a)  # the weights are among the compared files

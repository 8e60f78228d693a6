"""The code location loads, validates, and the whole-graph runner orders waves correctly."""


import os
import subprocess
import sys

import dagster as dg
import pyarrow as pa
import pytest

from assets.partitions import language_partitions
from assets.resources import CorpusResource
from corpus import shards
from pipelines import cli
from pipelines.definitions import build_definitions, stage_modules
from pipelines.runner import plan_waves, run_waves

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_definitions_load_and_resolve():
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.materializable_asset_keys}
    # every stage module contributes a Definitions object
    assert all(isinstance(getattr(m, "defs", None), dg.Definitions) for m in stage_modules())
    # the dependency rule: every declared upstream exists in the graph
    for key in graph.materializable_asset_keys:
        for parent in graph.get(key).parent_keys:
            assert parent.to_user_string() in keys, f"{key.to_user_string()} depends on unknown {parent}"


def test_libraries_do_not_import_dagster():
    code = (
        "import sys, importlib, pkgutil\n"
        "for pkg in ('corpus', 'sandbox', 'training'):\n"
        "    m = importlib.import_module(pkg)\n"
        "    for info in pkgutil.walk_packages(m.__path__, pkg + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "bad = [m for m in sys.modules if m == 'dagster' or m.startswith('dagster.')]\n"
        "assert not bad, bad[:5]\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=300)


def test_dagster_definitions_validate_cli():
    exe = os.path.join(os.path.dirname(sys.executable), "dagster")
    proc = subprocess.run(
        [exe, "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _toy_graph():
    schema = pa.schema([("n", pa.int64())])

    def make(name, deps, partitioned):
        @dg.asset(name=name, deps=deps, partitions_def=language_partitions if partitioned else None)
        def _a(context: dg.AssetExecutionContext, corpus: CorpusResource):
            part = context.partition_key if context.has_partition_key else None
            for d in deps:  # upstream must already be committed (the runner's ordering)
                if partitioned or d == "c":
                    shards.count_rows(corpus.path(d, part if d != "c" else None))
                else:
                    assert shards.committed_partitions(corpus.data_root, d)
            with shards.ShardSetWriter(corpus.path(name, part), schema) as w:
                w.write_rows([{"n": 1}])

        return _a

    return [make("a", [], True), make("b", ["a"], True), make("c", ["b"], False), make("d", ["c"], True)]


def test_runner_waves_and_execution(tmp_path):
    corpus = CorpusResource(data_root=str(tmp_path), profile="tiny")
    defs = dg.Definitions(assets=_toy_graph(), resources={"corpus": corpus})
    instance = dg.DagsterInstance.ephemeral()
    waves = plan_waves(defs, instance, corpus, partitions=["python", "java"])
    assert [[k.to_user_string() for k in w.asset_keys] for w in waves] == [["a", "b"], ["c"], ["d"]]
    assert waves[0].partition_keys == ["python", "java"] and waves[1].partition_keys == []
    logs: list[str] = []
    assert run_waves(defs, instance, waves, log=logs.append) == []
    assert shards.committed_partitions(str(tmp_path), "d") == ["java", "python"]
    assert any("[5/5]" in m and "ok" in m for m in logs)


def test_runner_reports_failures_and_stops(tmp_path):
    @dg.asset(partitions_def=language_partitions)
    def broken(context: dg.AssetExecutionContext):
        raise ValueError(f"bad input for {context.partition_key}")

    @dg.asset(deps=[broken])
    def after() -> None:
        raise AssertionError("must not run after a failed wave")

    corpus = CorpusResource(data_root=str(tmp_path))
    defs = dg.Definitions(assets=[broken, after], resources={"corpus": corpus})
    instance = dg.DagsterInstance.ephemeral()
    waves = plan_waves(defs, instance, corpus, partitions=["python"])
    failures = run_waves(defs, instance, waves, log=lambda m: None)
    assert len(failures) == 1 and "bad input for python" in failures[0]


def test_cli_help_for_every_verb(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    verbs = [m.NAME for m in cli._command_modules()]
    assert "run" in verbs
    for verb in verbs:
        assert verb in out
        with pytest.raises(SystemExit) as exc:
            cli.main([verb, "--help"])
        assert exc.value.code == 0


def test_run_list_prints_plan(tmp_path, capsys):
    assert cli.main(["run", "--list", "--ephemeral", "--data", str(tmp_path), "--profile", "tiny"]) == 0

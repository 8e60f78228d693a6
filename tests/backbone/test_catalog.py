"""What the asset catalog shows: kinds, owners, code versions and column schemas on every asset,
standard metadata helpers, and a definition load that does not import torch."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import pyarrow as pa

from assets import catalog
from assets.common import counts_table, manifest_metadata, md_escape, md_table, metadata_text, sparkline
from corpus import shards
from pipelines.definitions import build_definitions

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_every_asset_has_kinds_owners_description_code_version():
    graph = build_definitions().resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.materializable_asset_keys}
    assert set(catalog.CONTRACTS) <= keys, f"contracts for unknown assets: {set(catalog.CONTRACTS) - keys}"
    for key in graph.materializable_asset_keys:
        node, name = graph.get(key), key.to_user_string()
        assert node.kinds, name
        assert node.owners and all(o.startswith("team:") for o in node.owners), name
        assert node.description, name
        assert node.code_version, name
        if name in catalog.CONTRACTS:
            schema = node.metadata["dagster/column_schema"]
            assert [c.name for c in schema.columns] == catalog.CONTRACTS[name].names, name
            assert "parquet" in node.kinds
    # Quality keeps its rules-based code version (its automation condition reacts to it).
    assert graph.get(dg.AssetKey("code_quality")).code_version.startswith("0.1.0-rules-")


def test_code_version_changes_with_the_module_source(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    (root / "assets").mkdir(parents=True)
    (root / "corpus" / "dedup").mkdir(parents=True)
    (root / "assets" / "dedup.py").write_text("x = 1\n")
    (root / "corpus" / "dedup" / "core.py").write_text("y = 1\n")
    monkeypatch.setattr(catalog, "_ROOT", str(root))
    catalog.module_code_version.cache_clear()
    try:
        v1 = catalog.module_code_version("assets.dedup")
        catalog.module_code_version.cache_clear()
        (root / "corpus" / "dedup" / "core.py").write_text("y = 2\n")
        v2 = catalog.module_code_version("assets.dedup")
    finally:
        catalog.module_code_version.cache_clear()
    assert v1.startswith("dedup-") and v1 != v2


def test_tables_are_typed_and_ordered_and_markdown_is_escaped():
    t = counts_table({"a": 1, "b": 5, "c": 5}, key="reason", value="rows")
    assert isinstance(t, dg.TableMetadataValue)
    assert [r.data["reason"] for r in t.records] == ["b", "c", "a"]
    assert {c.name: c.type for c in t.schema.columns} == {"reason": "string", "rows": "int"}
    assert metadata_text(md_table(["path", "n"], [["__init__.py", 2]])) == "| path | n |\n| __init__.py | 2 |"
    assert md_escape("__init__.py") == "\\_\\_init\\_\\_.py"
    assert md_escape("a|b *c*") == "a\\|b \\*c\\*"


def test_manifest_metadata_has_row_count_and_written_schema(tmp_path):
    path = shards.shard_set_path(str(tmp_path), "toy")
    schema = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("n", pa.int64())])
    with shards.ShardSetWriter(path, schema) as w:
        w.write_rows([{"id": "a", "n": 1}, {"id": "b", "n": 2}])
    meta = manifest_metadata(path, shards.read_manifest(path))
    assert meta["dagster/row_count"] == 2 and meta["size_bytes"] > 0
    cols = meta["dagster/column_schema"].columns
    assert [(c.name, c.type, c.constraints.nullable) for c in cols] == [("id", "string", False), ("n", "int64", True)]


def test_sparkline_shows_the_curve_in_one_line():
    line = sparkline([4.0, 3.0, 2.0, 1.0])
    assert line.startswith("4 █") and "▁ 1 (min 1, 4 points)" in line
    assert sparkline([]) == "no values"


def test_definition_load_does_not_import_torch():
    """Every run worker and the code server load the definitions: torch (~2 s, ~500 MB) must
    wait until a training asset runs."""
    code = ("import sys\nimport pipelines.definitions as d\nd.defs.get_repository_def()\n"
            "heavy = [m for m in ('torch', 'training', 'transformers', 'matplotlib') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    env = dict(os.environ, PYTHONPATH=REPO)
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, timeout=300)


def test_launchpad_shows_a_default_for_every_optional_config_field():
    """A pydantic ``default_factory`` reaches Dagster as "optional, no default": the Launchpad
    then shows an empty field. Every optional field must carry its real default."""
    defs = build_definitions()
    missing = []
    for a in {id(a): a for a in defs.get_repository_def().assets_defs_by_key.values()}.values():
        field = a.op.config_field if a.is_executable else None
        stack = [("", field.config_type)] if field is not None else []
        while stack:
            prefix, ctype = stack.pop()
            for name, f in (getattr(ctype, "fields", None) or {}).items():
                if not f.is_required and not f.default_provided:
                    missing.append(f"{a.op.name}: {prefix}{name}")
                stack.append((f"{prefix}{name}.", f.config_type))
    assert not missing, missing


def test_scheduled_assets_have_warning_freshness_checks():
    """Each schedule's assets carry a freshness check (WARN) evaluated by one sensor."""
    repo = build_definitions().get_repository_def()
    checks = {k for d in repo.asset_checks_defs_by_key.values() for k in d.check_keys if k.name == "freshness_check"}
    for name in ("weekly_crawl", "code_filters_nightly"):
        job = repo.get_job(repo.get_schedule_def(name).job_name)
        keys = {k for k in job.asset_layer.selected_asset_keys}
        assert any(dg.AssetCheckKey(k, "freshness_check") in checks for k in keys), name
    sensor = repo.get_sensor_def("freshness_checks_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED  # like the schedules: on when they are


def test_ui_texts_are_markdown_not_restructuredtext():
    """Config, resource and asset descriptions render as markdown in the UI: ``x`` shows raw."""
    import inspect

    from assets.resources import CorpusResource
    from pipelines.definitions import stage_modules

    classes = [CorpusResource] + [
        o for m in stage_modules() for o in vars(m).values()
        if inspect.isclass(o) and issubclass(o, (dg.Config, dg.ConfigurableResource)) and o.__module__ == m.__name__
    ]
    bad = [c.__name__ for c in classes if "``" in (c.__doc__ or "")]
    graph = build_definitions().resolve_asset_graph()
    bad += [k.to_user_string() for k in graph.materializable_asset_keys if "``" in (graph.get(k).description or "")]
    assert not bad, bad

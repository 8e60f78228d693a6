"""The train-group assets materialized in-process on real upstream shard sets (tiny profile)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import dagster as dg
import pytest

from assets.mix import mixture, mixture_ratios_on_target
from assets.resources import CorpusResource
from assets.tokenize import defs as tok_defs
from assets.tokenize import tokenizer, tokens_stage1, tokens_stage2
from corpus import shards
from corpus.tokenize.format import TokenShards

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mix"))
from mixdata import build_upstreams  # noqa: E402

from assets.common import metadata_text

ALL = [mixture, tokenizer, tokens_stage1, tokens_stage2]


def _run(root, selection, run_config=None, raise_on_error=True):
    return dg.materialize(
        selection, resources={"corpus": CorpusResource(data_root=str(root), profile="tiny")},
        instance=dg.DagsterInstance.ephemeral(), run_config=run_config, raise_on_error=raise_on_error,
    )


def _meta(result, key):
    for ev in result.get_asset_materialization_events():
        if ev.materialization.asset_key == dg.AssetKey(key):
            return {k: metadata_text(v) for k, v in ev.materialization.metadata.items()}
    raise KeyError(key)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    build_upstreams(str(root), py_pkgs=("json", "email", "http"), n_html=20, n_math=80)
    result = _run(root, [*ALL, mixture_ratios_on_target, *tok_defs.asset_checks])
    return root, result


def test_whole_train_group_materializes(built):
    root, result = built
    assert result.success
    assert all(c.passed for c in result.get_asset_check_evaluations())
    m = _meta(result, "mixture")
    assert "| code |" in m["sources"] and "python" in m["tokens_by_language"] and "█" in m["share_chart"]
    assert set(m["missing_sources"]) == {"synthetic"}
    t = _meta(result, "tokenizer")
    assert t["vocab_size"] == 512 and "| <|fim_prefix|> | 1 |" in t["special_tokens"]
    s1 = _meta(result, "tokens_stage1")
    assert s1["seq_len"] == 128 and s1["train_sequences"] > 0 and s1["val_sequences"] > 0
    assert "| math |" in s1["tokens_per_source (exact)"]
    s2 = _meta(result, "tokens_stage2")
    assert s2["seq_len"] == 256 and s2["repos"] >= 3
    ts = TokenShards(str(root / "tokens_stage1" / "_all"))
    assert ts.extra["tokenizer_sha256"] == json.loads(
        (root / "tokenizer" / "_all" / "_manifest.json").read_text())["side_files"][0]["sha256"]
    assert shards.is_committed(str(root / "tokens_stage1_val" / "_all"))
    assert shards.is_committed(str(root / "tokens_stage2_val" / "_all"))


def test_unchanged_rerun_is_a_noop(built):
    root, _ = built
    before = shards.read_manifest(str(root / "tokens_stage1" / "_all")).created_at
    again = _run(root, ALL)
    for key in ("mixture", "tokenizer", "tokens_stage1", "tokens_stage2"):
        assert _meta(again, key)["reused_existing"] is True
    assert shards.read_manifest(str(root / "tokens_stage1" / "_all")).created_at == before


def test_adopt_existing_tokenizer_and_reject_one_without_specials(built, tmp_path):
    root, _ = built
    src = shards.side_file(str(root / "tokenizer" / "_all"), "tokenizer.json")
    good = tmp_path / "tokenizer.json"
    shutil.copy(src, good)
    other = tmp_path / "data"
    shutil.copytree(root / "mixture", other / "mixture")
    res = _run(other, [tokenizer], {"ops": {"tokenizer": {"config": {"tokenizer_path": str(good)}}}})
    assert _meta(res, "tokenizer")["mode"].startswith("adopted")
    raw = json.loads(good.read_text())
    raw["added_tokens"] = [a for a in raw["added_tokens"] if a["content"] != "<|file_sep|>"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    res = _run(other, [tokenizer], {"ops": {"tokenizer": {"config": {"tokenizer_path": str(bad)}}}},
               raise_on_error=False)
    assert not res.success
    msg = " ".join(str(e.event_specific_data.error.message) for e in res.all_events
                   if e.event_type_value == "STEP_FAILURE")
    assert "<|file_sep|>" in msg and "bad.json" in msg


def test_mixture_with_no_upstream_fails_clearly(tmp_path):
    res = _run(tmp_path, [mixture], raise_on_error=False)
    assert not res.success
    msg = " ".join(str(e.event_specific_data.error.message) for e in res.all_events
                   if e.event_type_value == "STEP_FAILURE")
    assert "no upstream data at all" in msg and "code_clean" in msg

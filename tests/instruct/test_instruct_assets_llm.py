"""The instruct assets with an OpenAI-compatible backend (local server), configured via run config."""

from __future__ import annotations

import dagster as dg
from instruct_fixtures import FakeModel, python_rows, write_code_clean

from assets import instruct as A
from assets.common import metadata_text
from assets.resources import CorpusResource
from corpus import shards
from corpus.llm.local_server import LocalChatServer


def test_llm_backend_via_run_config_with_decontamination(tmp_path):
    write_code_clean(str(tmp_path), {"python": python_rows(["colorsys.py", "bisect.py", "textwrap.py"])})
    res = {"corpus": CorpusResource(data_root=str(tmp_path), profile="tiny")}
    fake = FakeModel(leak=True)
    with LocalChatServer(fake) as srv:
        llm = {"backend": "openai", "base_url": srv.base_url, "model": "fake", "max_concurrency": 2}
        run_config = {"ops": {"instruct_candidates": {"config": {"llm": llm, "limit": 12}},
                              "instruct_scored": {"config": {"llm": llm}}}}
        result = dg.materialize([A.instruct_snippets, A.instruct_langid, A.instruct_candidates, A.instruct_scored],
                                resources=res, run_config=run_config, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    md = result.asset_materializations_for_node("instruct_candidates")[0].metadata
    assert md["generator"].value == "openai:fake"
    assert "decontaminated:humaneval" in metadata_text(md["skip_reasons"])  # the leaked benchmark answer is dropped
    assert "retries" in metadata_text(md["llm_usage"]) and md["llm_cost_usd"].value == 0.0
    cands = [r for b in shards.iter_batches(str(tmp_path / "instruct_candidates" / "_all")) for r in b.to_pylist()]
    assert cands and not any("has_close_elements" in c["answer"] for c in cands)
    assert all(c["test_origin"] == "llm" for c in cands)
    scored_md = result.asset_materializations_for_node("instruct_scored")[0].metadata
    assert scored_md["scorer"].value == "llm_judge:openai:fake"

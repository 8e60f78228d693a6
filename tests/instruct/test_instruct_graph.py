"""The whole instruct graph on the tiny profile, offline generator, real sandbox."""

from __future__ import annotations

import dagster as dg
import pytest
from instruct_fixtures import java_rows, js_rows, python_rows, write_code_clean

import sandbox
from assets import instruct as A
from assets.resources import CorpusResource
from corpus import shards
from corpus.instruct.sets import DPO_SCHEMA, SFT_SCHEMA, chatml

ASSETS = [A.instruct_snippets, A.instruct_langid, A.instruct_candidates, A.instruct_scored, A.instruct_verified,
          A.sft_coarse, A.sft_fine, A.sft_fim, A.dpo_pairs]


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_code_clean(str(root), {"python": python_rows(), "java": java_rows(), "javascript": js_rows()})
    res = {"corpus": CorpusResource(data_root=str(root), profile="tiny")}
    result = dg.materialize(ASSETS + [A.instruct_langid_beats_chance, A.instruct_verified_pass_rate,
                                     A.sft_fine_verified_with_lineage, A.dpo_pairs_well_formed],
                            resources=res, instance=dg.DagsterInstance.ephemeral())
    return root, res, result


def rows(root, asset):
    return [r for b in shards.iter_batches(shards.shard_set_path(str(root), asset)) for r in b.to_pylist()]


def test_graph_materializes_with_checks_passing(graph):
    _, _, result = graph
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 4 and all(c.passed for c in checks)


def test_snippets_cover_languages_and_langid_reports_accuracy(graph):
    root, _, result = graph
    langs = {r["language"] for r in rows(root, "instruct_snippets")}
    assert {"python", "java", "javascript"} <= langs
    md = result.asset_materializations_for_node("instruct_langid")[0].metadata
    assert 0.5 < md["langid_accuracy"].value <= 1.0
    assert shards.side_file(shards.shard_set_path(str(root), "instruct_langid"), "langid.bin")


def test_fine_set_is_verified_chatml_with_lineage(graph):
    root, _, _ = graph
    fine = rows(root, "sft_fine")
    assert fine, "offline generator must yield verified samples"
    snippet_ids = {r["id"] for r in rows(root, "instruct_snippets")}
    for r in fine:
        assert r["verified"] and r["status"] == "passed" and r["source_id"] in snippet_ids
        roles = [m["role"] for m in r["messages"]]
        assert roles == ["system", "user", "assistant"]
        assert f"```{r['language']}\n" in r["messages"][-1]["content"]
        assert chatml(r["messages"]).startswith("<|im_start|>system\n")
    assert shards.read_schema(shards.shard_set_path(str(root), "sft_fine")).equals(SFT_SCHEMA)
    coarse = rows(root, "sft_coarse")
    assert len(coarse) >= len(fine)
    assert {r["source_id"] for r in fine} <= {r["source_id"] for r in coarse}  # fine is a subset of coarse


def test_verified_tests_really_run_in_the_sandbox(graph):
    root, _, _ = graph
    ver = rows(root, "instruct_verified")
    passed = [r for r in ver if r["status"] == "passed" and r["language"] == "python"]
    r = passed[0]
    assert sandbox.execute(r["answer"], "python", tests=r["tests"]).status == "passed"
    broken = r["tests"].replace("==", "!=", 1) if "==" in r["tests"] else r["tests"].replace(" is ", " is not ", 1)
    assert sandbox.execute(r["answer"], "python", tests=broken).status == "failed"
    assert {x["status"] for x in ver} <= {"passed", "failed", "no_tests", "not_run", "syntax_error", "timeout"}


def test_dpo_execution_pairs_rejected_fails_chosen_passes(graph):
    root, _, _ = graph
    pairs = rows(root, "dpo_pairs")
    assert shards.read_schema(shards.shard_set_path(str(root), "dpo_pairs")).equals(DPO_SCHEMA)
    ex = [p for p in pairs if p["pair_source"] == "execution" and p["language"] == "python"]
    assert ex, "mutants that fail the tests must produce execution pairs"
    tests = {r["source_id"]: r["tests"] for r in rows(root, "instruct_verified")}
    p = ex[0]
    code = p["rejected"].split("```python\n", 1)[1].rsplit("```", 1)[0]
    assert sandbox.execute(code, "python", tests=tests[p["source_id"]]).status == "failed"
    assert p["prompt"][-1]["role"] == "user" and p["chosen"] != p["rejected"]
    assert {q["pair_source"] for q in pairs} <= {"execution", "judge"}


def test_java_static_methods_get_verified_tests(graph):
    root, _, _ = graph
    java = [r for r in rows(root, "instruct_verified") if r["language"] == "java" and r["status"] == "passed"]
    assert java, "Java static methods with simple types must get typed-input tests"
    r = java[0]
    assert r["test_origin"] == "typed_inputs" and "public class Solution" in r["answer"]
    assert sandbox.execute(r["answer"], "java", tests=r["tests"]).status == "passed"
    assert "Solution." in r["tests"] and "AssertionError" in r["tests"]


def test_fim_samples_reassemble_to_the_answer(graph):
    root, _, _ = graph
    fim = rows(root, "sft_fim")
    assert fim
    answers = {r["source_id"]: r["answer"] for r in rows(root, "instruct_verified")}
    for r in fim:
        user = r["messages"][0]["content"]
        prefix = user.split("<|fim_prefix|>", 1)[1].split("<|fim_suffix|>", 1)[0]
        suffix = user.split("<|fim_suffix|>", 1)[1].rsplit("<|fim_middle|>", 1)[0]
        assert prefix + r["messages"][1]["content"] + suffix == answers[r["source_id"]]


def test_rerun_is_a_noop(graph):
    _, res, _ = graph
    again = dg.materialize(ASSETS, resources=res, instance=dg.DagsterInstance.ephemeral())
    for a in ASSETS:
        md = again.asset_materializations_for_node(a.key.path[-1])[0].metadata
        assert md["reused_existing"].value is True, a.key

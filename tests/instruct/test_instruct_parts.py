"""Mutation, FIM masking, checklist scoring, language id and stage-level bad input."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from instruct_fixtures import java_rows, js_rows, python_rows

from corpus import shards
from corpus.instruct import fim, langid, mutate
from corpus.instruct.pipeline import mine_snippets, strip_documentation
from corpus.instruct.scoring import (
    CRITERIA,
    DEFAULT_WEIGHTS,
    LLMJudge,
    RuleProxyScorer,
    parse_judgement,
    weighted,
)
from corpus.instruct.snippets import MiningConfig, mine_file
from corpus.llm import OpenAICompatBackend
from corpus.llm.local_server import LocalChatServer
from corpus.schemas import CODE_SCHEMA

PY = "def f(xs):\n    '''Count positives.'''\n    n = 0\n    for x in xs:\n        if x > 0:\n            n += 1\n    return n\n"


def test_mutants_are_single_token_and_seeded():
    muts = mutate.mutants(PY, "python", k=10, seed="a")
    assert muts == mutate.mutants(PY, "python", k=10, seed="a")
    assert {d.split(": ")[1] for _, d in muts} >= {"> -> >=", "0 -> 1", "1 -> 2"}
    for code, _ in muts:
        assert code != PY and "Count positives" in code  # docstrings are never mutated
    java = "class A { static int f(int a) { return a < 3 && a != 0 ? a + 1 : 0; } }"
    assert {d.split(": ")[1] for _, d in mutate.mutants(java, "java", 20, "s")} >= {"< -> <=", "&& -> ||", "+ -> -"}
    assert mutate.mutants("x", "cobol", 3, "s") == []


def test_fim_split_is_a_whole_statement_and_reassembles():
    split = fim.choose_span(PY, "python", seed="x")
    assert split is not None and split.prefix + split.middle + split.suffix == PY
    assert split.middle.split()[0] in {"n", "for", "if", "return"}
    assert '"""' not in split.middle and "Count positives" not in split.middle
    prompt = fim.fim_prompt("Do it.", split)
    assert prompt.index(fim.FIM_PREFIX) < prompt.index(fim.FIM_SUFFIX) < prompt.index(fim.FIM_MIDDLE)
    assert fim.choose_span("def f(:\n", "python", "x") is None


def test_rule_proxies_prefer_documented_verified_code():
    r = {"instruction": "Write a Python function `f` that counts positive numbers in xs, for example f([1]) is 1.",
         "answer": PY, "language": "python", "name": "f", "n_tests": 3, "response": PY}
    s = RuleProxyScorer().score(r)
    assert set(s) == set(CRITERIA) and all(0 <= v <= 1 for v in s.values())
    bare = strip_documentation(PY, "python")
    assert bare is not None and "Count positives" not in bare
    s2 = RuleProxyScorer().score({**r, "answer": bare, "n_tests": 0})
    assert weighted(s, DEFAULT_WEIGHTS) > weighted(s2, DEFAULT_WEIGHTS)
    with pytest.raises(ValueError):
        weighted(s, {"clarity": 0.0})


def test_llm_judge_parses_and_counts_bad_replies():
    replies = {"good": "```json\n" + json.dumps({k: 7 for k in CRITERIA}) + "\n```", "prose": "I think it is fine.",
               "partial": json.dumps({"clarity": 3})}

    def responder(body):
        task = body["messages"][-1]["content"].split("Task:\n", 1)[1].split("\n", 1)[0]
        return replies[task]

    with LocalChatServer(responder) as srv:
        judge = LLMJudge(OpenAICompatBackend(srv.base_url, "judge", max_retries=0))
        skips: dict[str, int] = {}
        out = judge.score_many([{"instruction": k, "response": "r"} for k in ("good", "prose", "partial")], skips)
    assert out[0] == {k: 0.7 for k in CRITERIA} and out[1] is None and out[2] is None
    assert skips == {"judge_unparseable": 2}
    assert parse_judgement('{"' + '": 20, "'.join(CRITERIA) + '": 20}')["clarity"] == 1.0  # clipped to 10


def test_langid_learns_languages_and_prose():
    rows = python_rows() + java_rows() + js_rows()
    prose = [s.docstring for r in rows for s in mine_file(r["content"], r["language"], source_id=r["id"])]
    clf = langid.train(((r["id"], r["language"], r["content"]) for r in rows), prose,
                       langid.LangIdParams(files_per_language=40))
    assert clf.report.accuracy > 0.6 and set(clf.report.per_label) == {"python", "java", "javascript", "text"}
    py = "def mean(xs):\n    \"\"\"Average of xs.\"\"\"\n    total = 0\n    for x in xs:\n        total += x\n    return total / len(xs)\n"
    labels, probs = clf.predict([py, "Compute the sum of the two numbers."])
    assert labels == ["python", "text"] and probs.min() > 0.3
    with pytest.raises(ValueError, match="two labels"):
        langid.train([("a", "python", "x = 1\n" * 30)], [], langid.LangIdParams())


def test_mining_counts_bad_rows_and_keeps_a_bounded_sample(tmp_path):
    good = python_rows(["textwrap.py", "colorsys.py"])
    bad = [dict(good[0], id="empty", content=""), dict(good[0], id="nul", content="x\x00y" * 10),
           dict(good[0], id="none", content=None), dict(good[0], id="cob", language="cobol")]
    src = str(tmp_path / "code")
    with shards.ShardSetWriter(src, CODE_SCHEMA) as w:
        w.write_rows(good + bad)
    out = str(tmp_path / "snips")
    st = mine_snippets([("python", src)], out, mining=MiningConfig(), caps={"python": 5}, default_cap=5,
                       config={}, input_hashes=[])
    assert st.rows_out == 5 == shards.count_rows(out)
    assert st.skips["missing_content"] == 2 and st.skips["binary_content"] == 1 and st.skips["no_grammar:cobol"] == 1
    again = str(tmp_path / "snips2")
    mine_snippets([("python", src)], again, mining=MiningConfig(), caps={"python": 5}, default_cap=5,
                  config={}, input_hashes=[])
    a = [r["id"] for b in shards.iter_batches(out) for r in b.to_pylist()]
    b = [r["id"] for b in shards.iter_batches(again) for r in b.to_pylist()]
    assert a == b  # seeded, deterministic sample
    with open(shards.shard_files(out)[0], "rb") as f1, open(shards.shard_files(again)[0], "rb") as f2:
        assert f1.read() == f2.read()  # same bytes


def test_corrupt_upstream_shard_fails_naming_the_file(tmp_path):
    src = str(tmp_path / "code")
    with shards.ShardSetWriter(src, CODE_SCHEMA) as w:
        w.write_rows(python_rows(["colorsys.py"]))
    part = shards.shard_files(src)[0]
    with open(part, "wb") as fh:
        fh.write(b"garbage")
    with pytest.raises(shards.ShardSetError, match="part-00000.parquet"):
        mine_snippets([("python", src)], str(tmp_path / "o"), mining=MiningConfig(), caps={}, default_cap=5,
                      config={}, input_hashes=[])
    assert not shards.is_committed(str(tmp_path / "o"))


def test_wrong_upstream_schema_is_a_clear_error(tmp_path):
    src = str(tmp_path / "code")
    with shards.ShardSetWriter(src, pa.schema([pa.field("id", pa.string())])) as w:
        w.write_rows([{"id": "x"}])
    with pytest.raises(shards.ShardSetError, match="missing required column"):
        mine_snippets([("python", src)], str(tmp_path / "o"), mining=MiningConfig(), caps={}, default_cap=5,
                      config={}, input_hashes=[])


def test_candidates_are_byte_identical_across_runs(tmp_path):
    from corpus.instruct.candidates import OfflineGenerator
    from corpus.instruct.execution import sandbox_executor
    from corpus.instruct.pipeline import make_candidates

    src = str(tmp_path / "code")
    with shards.ShardSetWriter(src, CODE_SCHEMA) as w:
        w.write_rows(python_rows(["bisect.py", "colorsys.py"]))
    snips = str(tmp_path / "snips")
    mine_snippets([("python", src)], snips, mining=MiningConfig(), caps={"python": 8}, default_cap=0,
                  config={}, input_hashes=[])
    outs = []
    for i in range(2):
        out = str(tmp_path / f"cands{i}")
        st = make_candidates(snips, out, OfflineGenerator(sandbox_executor()), limit=None, config={"k": 1},
                             input_hashes=["h"])
        outs.append(out)
    assert st.counts["test_origin"].get("none", 0) < st.rows_out  # some got generated tests
    blobs = [open(shards.shard_files(o)[0], "rb").read() for o in outs]
    assert blobs[0] == blobs[1]
    assert shards.read_manifest(outs[0]).content_hash == shards.read_manifest(outs[1]).content_hash


def test_sandbox_unavailable_is_a_clear_asset_failure(tmp_path, monkeypatch):
    import dagster as dg
    from instruct_fixtures import write_code_clean

    from assets import instruct as A
    from assets.resources import CorpusResource

    def broken():
        raise RuntimeError("bwrap: setting up uid map: Permission denied")

    monkeypatch.setattr(A.ex, "sandbox_languages", broken)
    write_code_clean(str(tmp_path), {"python": python_rows(["bisect.py"])})
    res = {"corpus": CorpusResource(data_root=str(tmp_path), profile="tiny")}
    result = dg.materialize([A.instruct_snippets, A.instruct_langid, A.instruct_candidates], resources=res,
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "sandbox is not usable" in failure.step_failure_data.error.message
    assert not shards.is_committed(str(tmp_path / "instruct_candidates" / "_all"))


def test_empty_snippet_set_flows_through_langid(tmp_path):
    from corpus.instruct.pipeline import langid_filter
    from corpus.instruct.snippets import SNIPPET_SCHEMA

    snips = str(tmp_path / "snips")
    with shards.ShardSetWriter(snips, SNIPPET_SCHEMA):
        pass
    out = str(tmp_path / "langid")
    st = langid_filter(snips, [], out, params=langid.LangIdParams(), min_prob=0.5, require_match=True, config={},
                       input_hashes=[])
    assert shards.count_rows(out) == 0 and st.skips == {"no_snippets_to_classify": 1}

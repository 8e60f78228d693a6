"""synthetic_code on the tiny profile: offline programs, real sandbox, real decontamination."""

from __future__ import annotations

import gzip
import json
import os
import sys
from collections import Counter

import dagster as dg
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "instruct"))
from instruct_fixtures import python_rows, row, write_code_clean  # noqa: E402

import sandbox  # noqa: E402
from assets import synthetic as S  # noqa: E402
from assets.common import metadata_text
from assets.resources import CorpusResource  # noqa: E402
from corpus import shards  # noqa: E402
from corpus.instruct.execution import sandbox_executor  # noqa: E402
from corpus.synthetic import OfflineProgramSource, build_synthetic  # noqa: E402

HUMANEVAL = os.path.join(os.path.dirname(__file__), "..", "..", "corpus", "decontam", "data", "humaneval.jsonl.gz")


def humaneval_row(i: int = 0) -> dict:
    with gzip.open(HUMANEVAL, "rt") as fh:
        item = [json.loads(line) for line in fh][i]
    return row("python", "leaky/repo", "he.py", item["prompt"] + item["canonical_solution"])


@pytest.fixture(scope="module")
def materialized(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    write_code_clean(str(root), {"python": [humaneval_row(0)] + python_rows(["colorsys.py", "bisect.py",
                                                                              "textwrap.py", "heapq.py"])})
    res = {"corpus": CorpusResource(data_root=str(root), profile="tiny")}
    result = dg.materialize([S.synthetic_code, S.synthetic_code_all_passed], resources=res,
                            instance=dg.DagsterInstance.ephemeral())
    return root, res, result


def test_synthetic_rows_are_passing_programs(materialized):
    root, _, result = materialized
    assert result.success
    rows = [r for b in shards.iter_batches(shards.shard_set_path(str(root), "synthetic_code")) for r in b.to_pylist()]
    assert rows
    for r in rows[:5]:
        assert r["source"] == "synthetic" and r["sandbox_status"] == "passed"
        assert sandbox.execute(r["content"], "python").status == "passed"  # the content re-validates itself
        assert r["generator"] == "offline:corpus-functions"
    md = result.asset_materializations_for_node("synthetic_code")[0].metadata
    assert md["programs_kept"].value == len(rows)
    assert 0 < md["pass_rate"].value <= 1
    assert all(c.passed for c in result.get_asset_check_evaluations())


def test_benchmark_solution_is_decontaminated(materialized):
    root, _, result = materialized
    rows = [r for b in shards.iter_batches(shards.shard_set_path(str(root), "synthetic_code")) for r in b.to_pylist()]
    assert not any("has_close_elements" in r["content"] for r in rows)
    md = result.asset_materializations_for_node("synthetic_code")[0].metadata
    assert "humaneval" in metadata_text(md["decontamination hits"])


def test_rerun_is_noop(materialized):
    _, res, _ = materialized
    again = dg.materialize([S.synthetic_code], resources=res, instance=dg.DagsterInstance.ephemeral())
    assert again.asset_materializations_for_node("synthetic_code")[0].metadata["reused_existing"].value is True


def test_failing_programs_are_dropped_with_status(tmp_path):
    """A reference whose recorded tests are then broken must not be kept (failed status counted)."""

    class Breaking(OfflineProgramSource):
        def generate(self, seeds, skips):
            progs = super().generate(seeds, skips)
            for p in progs[::2]:
                p.tests = p.tests.replace("==", "!=", 1) if "==" in p.tests else "assert False\n"
            return progs

    src = Breaking(sandbox_executor())
    skips = Counter()
    seeds = list(src.seeds(python_rows(["colorsys.py", "bisect.py", "textwrap.py"]), skips))
    out = str(tmp_path / "s")
    st = build_synthetic(seeds, src, sandbox_executor(), out, decontaminator=None, runnable={"python"}, limit=None,
                         timeout_s=10, config={}, input_hashes=[])
    assert st.generated >= 2 and st.status["failed"] >= 1
    assert st.kept == st.status["passed"] == shards.count_rows(out)


def test_llm_backend_via_run_config(tmp_path):
    """The asset's LLM path: topic + snippet seeds, programs executed, failing ones dropped."""
    from corpus.llm.local_server import LocalChatServer

    write_code_clean(str(tmp_path), {"python": python_rows(["bisect.py"])})

    def responder(body):
        user = body["messages"][-1]["content"]
        ok = "binary search" in user  # the topic seed gets a correct program, snippet seeds a wrong one
        tests = "assert find([1, 3, 5], 3) == 1" if ok else "assert find([1, 3, 5], 3) == 2"
        return ("```python\ndef find(xs, x):\n    lo, hi = 0, len(xs)\n    while lo < hi:\n"
                "        mid = (lo + hi) // 2\n        if xs[mid] < x:\n            lo = mid + 1\n"
                f"        else:\n            hi = mid\n    return lo\n```\n\n```python\n{tests}\n```")

    res = {"corpus": CorpusResource(data_root=str(tmp_path), profile="tiny")}
    with LocalChatServer(responder) as srv:
        cfg = {"llm": {"backend": "openai", "base_url": srv.base_url, "model": "fake"},
               "topics": ["binary search over a sorted list"], "languages": ["python"]}
        result = dg.materialize([S.synthetic_code], resources=res, instance=dg.DagsterInstance.ephemeral(),
                                run_config={"ops": {"synthetic_code": {"config": cfg}}})
    assert result.success
    md = result.asset_materializations_for_node("synthetic_code")[0].metadata
    assert md["generator"].value == "llm:openai:fake"
    assert md["programs_kept"].value == 1 and "failed" in metadata_text(md["failure statuses"])
    rows = [r for b in shards.iter_batches(str(tmp_path / "synthetic_code" / "_all")) for r in b.to_pylist()]
    assert len(rows) == 1 and rows[0]["test_origin"] == "llm" and rows[0]["license"] is None

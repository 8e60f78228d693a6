"""Decontaminator.find on planted leaks, real clean files, and bad benchmark input."""

from __future__ import annotations

import gzip
import json
import os
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from decontam_helpers import STDLIB, reformat_whitespace, stdlib_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus.decontam import BUILTIN, BenchmarkSpec, DecontamError, Decontaminator, SetDecontaminator


def test_bundled_benchmarks_load_with_expected_sizes(decon):
    counts = {}
    for it in decon.items:
        counts[it.benchmark] = counts.get(it.benchmark, 0) + 1
    assert counts == {"humaneval": 164, "mbpp": 427, "gsm8k": 1319, "math": 500}
    assert decon.n_ngrams > 100_000
    assert set(decon.fingerprint) >= {"ngram", "benchmarks", "normalization"}


def test_planted_humaneval_solution_with_reformatted_whitespace_is_found(decon, humaneval):
    item = humaneval[12]
    host = stdlib_file("textwrap.py")
    cut = host.index("\ndef ")
    leaked = host[:cut] + "\n\n" + reformat_whitespace(item["prompt"] + item["canonical_solution"]) + host[cut:]
    hits = decon.find(leaked)
    assert [(h.benchmark, h.task_id) for h in hits if h.benchmark == "humaneval"] == [("humaneval", item["task_id"])]
    assert all(len(h.ngram.split()) == 10 for h in hits)


def test_planted_mbpp_code_and_tests_are_found(decon, mbpp):
    item = mbpp[40]
    host = stdlib_file("json/__init__.py")
    leaked = host + "\n\n" + item["code"].replace("    ", "\t") + "\n" + "\n".join(item["test_list"])
    assert ("mbpp", str(item["task_id"])) in {(h.benchmark, h.task_id) for h in decon.find(leaked)}


def test_planted_gsm8k_and_math_text_are_found(decon, gsm8k, math500):
    q = gsm8k[100]
    page = "Homework help forum\n\nUser asks: " + q["question"].upper() + "\nAnswer: " + q["answer"]
    assert ("gsm8k", "gsm8k/101") in {(h.benchmark, h.task_id) for h in decon.find(page)}
    m = math500[17]
    text = "Solution notes.\n" + m["solution"].replace(" ", "\n")
    assert ("math", m["unique_id"]) in {(h.benchmark, h.task_id) for h in decon.find(text)}


@pytest.mark.parametrize(
    "rel",
    ["json/__init__.py", "json/decoder.py", "json/encoder.py", "textwrap.py", "statistics.py", "fractions.py",
     "typing.py", "heapq.py", "bisect.py", "functools.py"],
)
def test_real_files_sharing_only_boilerplate_are_kept(decon, rel):
    """Real stdlib modules use `from typing import List`, `import math`, `for i in range(len(x))`..."""
    assert decon.find(stdlib_file(rel)) == []


def test_short_common_snippets_are_clean(decon):
    for snippet in ["from typing import List\n", "import math\n", "from typing import List\nimport math\n\n"
                    "def f(numbers: List[float]) -> float:\n    return math.sqrt(sum(numbers))\n"]:
        assert decon.find(snippet) == []


def test_empty_and_none_text_are_clean(decon):
    assert decon.find(None) == []
    assert decon.find("") == []
    assert decon.find(b"") == []
    assert decon.find("   \n\t ") == []


def test_vectorized_equals_reference_on_real_files(decon):
    """Independent plain-set implementation flags exactly the same stdlib files."""
    ref = SetDecontaminator(decon.items, ngram=decon.n, min_informative=decon.min_informative)
    texts = []
    for rel in sorted(os.listdir(STDLIB))[:400]:
        path = os.path.join(STDLIB, rel)
        if rel.endswith(".py") and os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as fh:
                texts.append(fh.read())
    he = BUILTIN["humaneval"]
    with gzip.open(he.path, "rt") as fh:
        first = json.loads(fh.readline())
    texts.append("# leak\n" + first["prompt"] + first["canonical_solution"])
    got = decon.find_array(pa.array(texts, type=pa.large_string()))
    want = {i for i, t in enumerate(texts) if not ref.is_clean(t)}
    assert set(got) == want
    assert len(texts) - 1 in want


def test_ngram_length_is_configurable(humaneval):
    item = humaneval[3]
    d5 = Decontaminator.from_config(ngram=5, benchmarks=("humaneval",), min_informative=2)
    d13 = Decontaminator.from_config(ngram=13, benchmarks=("humaneval",))
    text = item["canonical_solution"]
    assert d5.find(text) and all(len(h.ngram.split()) == 5 for h in d5.find(text))
    assert d13.fingerprint["ngram"] == 13


# ----------------------------------------------------------------------------- bad input


def test_malformed_benchmark_file_names_file_and_line(tmp_path):
    bad = tmp_path / "bench.jsonl"
    bad.write_text('{"q": "one two three four five six seven eight nine ten eleven"}\n{"q": "broken\n')
    with pytest.raises(DecontamError) as exc:
        Decontaminator.from_config(benchmarks=(), extra=[f"{bad}:mine:q"])
    assert f"{bad}:2" in str(exc.value) and "invalid JSON" in str(exc.value)


def test_benchmark_missing_field_names_field_and_line(tmp_path):
    bad = tmp_path / "bench.jsonl"
    bad.write_text(json.dumps({"question": "a b c"}) + "\n" + json.dumps({"prompt": "x"}) + "\n")
    with pytest.raises(DecontamError, match=r"bench.jsonl:2: .*lacks field\(s\) \['question'\]"):
        Decontaminator.from_config(benchmarks=(), extra=[{"name": "b", "path": str(bad), "fields": ["question"]}])


def test_benchmark_non_object_line_and_missing_file(tmp_path):
    bad = tmp_path / "b.jsonl"
    bad.write_text("[1, 2]\n")
    with pytest.raises(DecontamError, match=r"b.jsonl:1: expected a JSON object"):
        Decontaminator.from_config(benchmarks=(), extra=[f"{bad}:b:q"])
    with pytest.raises(DecontamError, match="does not exist"):
        Decontaminator.from_config(benchmarks=(), extra=[f"{tmp_path}/nope.jsonl:b:q"])


def test_unknown_benchmark_and_bad_extra_spec():
    with pytest.raises(DecontamError, match="unknown benchmark 'humaneval-x'"):
        Decontaminator.from_config(benchmarks=("humaneval-x",))
    with pytest.raises(DecontamError, match="expected PATH:NAME"):
        BenchmarkSpec.parse("just-a-path.jsonl")
    with pytest.raises(DecontamError, match="given twice"):
        Decontaminator.from_config(benchmarks=("mbpp", "mbpp"))


def test_extra_benchmark_from_parquet_and_gz_jsonl(tmp_path):
    secret = ("the quick brown fox jumps over the lazy dog while seventeen purple elephants "
              "recite obscure poetry about quantum chromodynamics")
    pq.write_table(pa.table({"uid": ["p1"], "body": [secret]}), tmp_path / "b.parquet")
    with gzip.open(tmp_path / "c.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"prob": "zeta " + secret[::-1], "sol": ["alpha", "beta"]}) + "\n")
    d = Decontaminator.from_config(
        benchmarks=(),
        extra=[f"{tmp_path}/b.parquet:private:body:uid", {"name": "gz", "path": str(tmp_path / "c.jsonl.gz"),
                                                         "fields": ["prob", "sol"]}],
    )
    assert [(h.benchmark, h.task_id) for h in d.find("Intro. " + secret.upper() + " outro")] == [("private", "p1")]
    assert d.find(secret[::-1])[0].task_id == "gz/1"


def test_invalid_ngram_settings():
    with pytest.raises(DecontamError, match="ngram must be"):
        Decontaminator.from_config(ngram=0, benchmarks=("mbpp",))
    with pytest.raises(DecontamError, match="min_informative"):
        Decontaminator.from_config(ngram=5, benchmarks=("mbpp",), min_informative=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_planted_solution_survives_reformatting(decon, humaneval, mbpp, data):
    """Property: a benchmark solution pasted anywhere into a real file, with arbitrary whitespace
    and spacing around punctuation, is always found (and attributed to its task)."""
    if data.draw(st.booleans()):
        item = data.draw(st.sampled_from(humaneval))
        code, task = item["prompt"] + item["canonical_solution"], ("humaneval", item["task_id"])
    else:
        item = data.draw(st.sampled_from(mbpp))
        code, task = item["code"] + "\n" + "\n".join(item["test_list"]), ("mbpp", str(item["task_id"]))
    sep = data.draw(st.sampled_from([" ", "  ", "\t", "\n", "\r\n", " \n "]))
    spaced = re.sub(r"([()\[\]{},:=])", lambda m: sep + m.group(1) + sep, code)
    spaced = re.sub(r"[ \t]+", lambda m: sep if sep.strip() == "" else " ", spaced)
    host = stdlib_file(data.draw(st.sampled_from(["textwrap.py", "bisect.py", "heapq.py"])))
    at = data.draw(st.integers(0, len(host)))
    at = host.rfind("\n", 0, at) + 1
    text = host[:at] + spaced + "\n" + host[at:]
    hits = {(h.benchmark, h.task_id) for h in decon.find(text)}
    if decon.find(code):  # items with no indexable n-gram cannot be detected (recorded in metadata)
        assert task in hits


def test_every_benchmark_item_detects_itself(decon):
    """Each indexed item, used verbatim as a training row, is removed and attributed to itself."""
    texts = pa.array([it.text for it in decon.items], type=pa.large_string())
    hits = decon.find_array(texts)
    missed = [(it.benchmark, it.task_id) for i, it in enumerate(decon.items)
              if (it.benchmark, it.task_id) not in {(h.benchmark, h.task_id) for h in hits.get(i, [])}]
    # Only items with no indexable 10-gram could be missed; with the default min_informative=1
    # there are none (min_informative=3 would leave out all-boilerplate items such as MBPP 309,
    # "def maximum(a,b): if a >= b: return a else: return b").
    indexed = set(np.unique(decon._item).tolist())
    assert {(decon.items[i].benchmark, decon.items[i].task_id) for i in range(len(decon.items))
            if i not in indexed} == set(missed)
    assert missed == [] and decon.skipped_short == 0
    strict = Decontaminator.from_config(min_informative=3)
    assert 0 < strict.skipped_short < 20


def test_extra_benchmark_with_byte_order_mark_and_blank_lines(tmp_path):
    secret = "seventeen purple elephants recite obscure poetry about quantum chromodynamics every tuesday"
    p = tmp_path / "bom.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps({"q": secret, "id": 7}).encode() + b"\r\n\r\n")
    d = Decontaminator.from_config(benchmarks=(), extra=[f"{p}:bom:q:id"])
    assert [(h.benchmark, h.task_id) for h in d.find("xx " + secret)] == [("bom", "7")]


def test_no_benchmarks_selected_is_an_error():
    with pytest.raises(DecontamError, match="no benchmarks selected"):
        Decontaminator.from_config(benchmarks=(), extra=[])

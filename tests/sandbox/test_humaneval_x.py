"""HumanEval-X canonical solutions pass through the sandbox (a sample per language; the full
164 x 5 run is benchmarks/humaneval_x_bench.py), and wrong completions fail."""

from __future__ import annotations

import pytest

import sandbox
from sandbox import humaneval_x as hx

# Tasks chosen for what they exercise: 0 the plain layout, 2 Go tests importing the prompt's
# package (math), 22 C++ boost/any.hpp, 162 Rust md5 / the other languages' library hashing.
SAMPLE = (0, 2, 22, 162)


@pytest.mark.parametrize("lang", list(hx.LANGUAGES))
def test_canonical_solutions_pass(lang, bwrap_backend, need):
    need(hx.LANGUAGES[lang], bwrap_backend)
    rows = hx.load(lang)
    assert len(rows) == 164
    tasks = [hx.task(rows[i]) for i in SAMPLE]
    results = sandbox.execute_many([sandbox.Request(code=t.code, language=t.language, tests=t.tests,
                                                    timeout_s=20, memory_mb=1024) for t in tasks],
                                   workers=2, backend=bwrap_backend)
    bad = [(t.task_id, r.status, r.message, r.stderr[-500:]) for t, r in zip(tasks, results, strict=True)
           if r.status != "passed"]
    assert not bad, bad


@pytest.mark.parametrize("lang,wrong", [
    ("java", "        return false;\n    }\n}\n"),
    ("rust", "\n    return false;\n}\n"),
    ("go", "    return false\n}\n"),
    ("cpp", "    return false;\n}\n"),
    ("js", "  return false;\n};\n"),
])
def test_wrong_completion_fails(lang, wrong, bwrap_backend, need):
    """has_close_elements answering false: some tests expect true, so the run must fail."""
    need(hx.LANGUAGES[lang], bwrap_backend)
    t = hx.task(hx.load(lang)[0], completion=wrong)
    r = sandbox.execute(t.code, t.language, tests=t.tests, timeout_s=20, memory_mb=1024, backend=bwrap_backend)
    assert r.status == "failed", (r.status, r.message, r.stderr[-500:])


def test_unknown_language_is_named():
    with pytest.raises(ValueError, match="choose one of"):
        hx.load("cobol")


@pytest.mark.docker
def test_go_runs_in_the_docker_image(docker_backend, need):
    """Go and testify are in the sandbox image too (sandbox/image/build_image.sh)."""
    need("go", docker_backend)
    tasks = [hx.task(hx.load("go")[i]) for i in (0, 2)]
    tasks.append(hx.task(hx.load("go")[0], completion="    return false\n}\n"))
    results = sandbox.execute_many([sandbox.Request(code=t.code, language=t.language, tests=t.tests,
                                                    timeout_s=20, memory_mb=1024) for t in tasks],
                                   workers=2, backend=docker_backend)
    assert [r.status for r in results] == ["passed", "passed", "failed"], [(r.status, r.message, r.stderr[-300:])
                                                                          for r in results]

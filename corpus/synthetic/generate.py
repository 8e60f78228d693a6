"""Synthetic programs: generate -> execute in the sandbox -> keep passing -> decontaminate.

Two sources of programs:

- ``ChatProgramSource``: an LLM backend writes a self-contained program plus unit tests for
  each seed (a topic from config, or a documented corpus snippet to take inspiration from).
- ``OfflineProgramSource``: no model. Programs are *derived from corpus functions*: a
  self-contained Python function plus assertions recorded by running it in the sandbox on
  doctest / hypothesis / probe inputs. This is honest re-packaging of real code with
  generated tests, not novel code; rows say so in ``generator``.

Each kept row is a code row (``CODE_SCHEMA``) whose ``content`` is the program followed by
its tests, so executing the content re-validates it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from corpus import shards
from corpus.instruct import pyfunc
from corpus.instruct.candidates import DISPLAY, TEST_STYLE, code_blocks
from corpus.instruct.execution import ExecRequest, Executor
from corpus.instruct.snippets import MiningConfig, mine_file
from corpus.llm.base import ChatBackend, LLMError
from corpus.schemas import CODE_SCHEMA, code_row_id, content_sha256, extend_schema

SYNTHETIC_SCHEMA = extend_schema(
    CODE_SCHEMA,
    pa.field("seed_id", pa.string()),
    pa.field("generator", pa.string()),
    pa.field("tests", pa.large_string()),
    pa.field("test_origin", pa.string()),
    pa.field("sandbox_status", pa.string()),
)
EXT = {"python": "py", "java": "java", "javascript": "js", "cpp": "cpp", "c": "c", "typescript": "ts", "go": "go",
       "rust": "rs"}


@dataclass
class Program:
    seed_id: str
    language: str
    name: str
    code: str
    tests: str
    test_origin: str
    generator: str
    license: str | None = None

    @property
    def content(self) -> str:
        return f"{self.code.rstrip()}\n\n\n{self.tests.rstrip()}\n"


@dataclass
class SynthStats:
    seeds: int = 0
    generated: int = 0
    kept: int = 0
    skips: Counter = field(default_factory=Counter)
    status: Counter = field(default_factory=Counter)
    languages: Counter = field(default_factory=Counter)
    decontam_hits: Counter = field(default_factory=Counter)
    manifest: shards.Manifest | None = None

    @property
    def pass_rate(self) -> float:
        ran = sum(self.status.values())
        return round(self.status.get("passed", 0) / ran, 4) if ran else 0.0


# ----------------------------------------------------------------------------- offline


class OfflineProgramSource:
    """Self-contained Python functions from the corpus plus tests recorded in the sandbox."""

    name = "offline:corpus-functions"

    def __init__(self, executor: Executor, n_hypothesis: int = 6, seed: int = 0, timeout_s: float = 10.0) -> None:
        self.executor = executor
        self.n_hypothesis = n_hypothesis
        self.seed = seed
        self.timeout_s = timeout_s

    def seeds(self, rows: Iterable[Mapping[str, Any]], skips: Counter) -> Iterator[dict[str, Any]]:
        """Testable Python functions mined from code rows."""
        for r in rows:
            if r.get("language") != "python" or not isinstance(r.get("content"), str):
                skips["not_python"] += 1
                continue
            s: dict[str, int] = {}
            for snip in mine_file(r["content"], "python", source_id=r["id"], cfg=MiningConfig(), skips=s):
                if snip.kind != "function":
                    skips[f"untestable:{snip.kind}"] += 1
                    continue
                try:
                    pyfunc.analyze(snip.code, snip.context)  # cheap static check: nothing runs
                except pyfunc.Unsupported as exc:
                    skips[f"untestable:{exc}"] += 1
                    continue
                yield snip.row() | {"license": r.get("license")}
            skips.update({f"mining:{k}": v for k, v in s.items()})

    def generate(self, seeds: Sequence[Mapping[str, Any]], skips: Counter) -> list[Program]:
        pending = []
        for s in seeds:
            try:
                info = pyfunc.analyze(s["code"], s.get("context") or "")
            except pyfunc.Unsupported as exc:
                skips[f"untestable:{exc}"] += 1
                continue
            seed = (self.seed * 1_000_003 + int(s["id"][:8], 16)) % (2**32)
            calls = list(dict.fromkeys(info.doctest_calls + pyfunc.generated_calls(info, self.n_hypothesis, seed)))
            pending.append((s, info, calls))
        results = self.executor([ExecRequest(pyfunc.harness(i, c), "python", timeout_s=self.timeout_s)
                                 for _, i, c in pending]) if pending else []
        out = []
        for (s, info, calls), res in zip(pending, results):
            if res.status != "passed":
                skips[f"reference_{res.status}"] += 1
                continue
            groups = {c: g for c, g in pyfunc.probe_groups(info).items() if c not in info.doctest_calls} \
                if info.probe else None
            cases = pyfunc.cases_from_output(res.stdout, calls, groups=groups)
            if not cases:
                skips["no_literal_results"] += 1
                continue
            origin = "probe" if info.probe else ("doctest" if set(c.call for c in cases) <= set(info.doctest_calls)
                                                 else "hypothesis")
            out.append(Program(seed_id=s["id"], language="python", name=info.name, code=info.program,
                               tests=pyfunc.render_tests(cases), test_origin=origin, generator=self.name,
                               license=s.get("license")))
        return out


# ----------------------------------------------------------------------------- LLM

PROGRAM_SYSTEM = "You are an expert programmer who writes small, correct, self-contained programs with tests."


def program_prompt(seed: Mapping[str, Any]) -> list[dict[str, str]]:
    lang = seed["language"]
    name = DISPLAY.get(lang, lang)
    style = TEST_STYLE.get(lang, "a self-checking program that exits non-zero on failure")
    if seed.get("topic"):
        ask = f"Write a self-contained {name} program about: {seed['topic']}."
    else:
        ask = (f"Here is a {name} snippet for inspiration:\n```{lang}\n{seed['code']}\n```\n"
               f"Write a new, different, self-contained {name} program exercising a related idea.")
    return [{"role": "system", "content": PROGRAM_SYSTEM},
            {"role": "user", "content": f"{ask}\nGive the program in one fenced code block, then unit tests in a "
                                        f"second fenced code block written as {style}. The tests are appended "
                                        "to the program and run; use only the standard library."}]


class ChatProgramSource:
    """Programs + tests written by an LLM for each seed (topic or snippet)."""

    def __init__(self, backend: ChatBackend, max_tokens: int = 1024, temperature: float = 0.0, seed: int = 0) -> None:
        self.backend = backend
        self.name = f"llm:{backend.name}"
        self.kw = {"max_tokens": max_tokens, "temperature": temperature, "seed": seed}

    def generate(self, seeds: Sequence[Mapping[str, Any]], skips: Counter) -> list[Program]:
        replies = self.backend.chat_many([program_prompt(s) for s in seeds], **self.kw)
        out = []
        for s, rep in zip(seeds, replies):
            if isinstance(rep, LLMError):
                skips[f"llm_error:{rep.reason}"] += 1
                continue
            blocks = code_blocks(rep.text)
            if len(blocks) < 2:
                skips["llm_no_tests_block" if blocks else "llm_no_code_block"] += 1
                continue
            out.append(Program(seed_id=s["id"], language=s["language"], name=s.get("name") or "program",
                               code=blocks[0][1], tests=blocks[1][1], test_origin="llm", generator=self.name,
                               license=None))
        return out


# Seed topics for the LLM path (configurable in the asset and the CLI).
DEFAULT_TOPICS = [
    "parsing and evaluating arithmetic expressions", "run-length encoding and decoding of strings",
    "binary search over a sorted list", "merging overlapping intervals", "validating balanced brackets",
    "computing edit distance between two strings", "a least-recently-used cache", "topological sort of a graph",
    "matrix multiplication", "prime sieve and factorisation", "converting between number bases",
    "word frequency counting", "Dijkstra shortest paths", "a min-heap priority queue", "roman numerals",
]


def topic_seeds(topics: Sequence[str], languages: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for t in topics:
        for lang in languages:
            sid = hashlib.sha256(f"topic\x00{lang}\x00{t}".encode()).hexdigest()[:32]
            out.append({"id": sid, "language": lang, "topic": t, "name": "program"})
    return out


# ----------------------------------------------------------------------------- build


def program_row(p: Program, status: str) -> dict[str, Any]:
    content = p.content
    sha = content_sha256(content)
    path = f"synthetic/{p.name}_{p.seed_id[:8]}.{EXT.get(p.language, 'txt')}"
    return {
        "id": code_row_id("synthetic", path, sha), "repo": "synthetic", "path": path, "language": p.language,
        "content": content, "size_bytes": len(content.encode("utf-8", "surrogatepass")), "sha256": sha,
        "license": p.license, "stars": 0, "forks": 0, "revision_date": None, "source": "synthetic",
        "seed_id": p.seed_id, "generator": p.generator, "tests": p.tests, "test_origin": p.test_origin,
        "sandbox_status": status,
    }


def build_synthetic(
    seeds: Iterable[Mapping[str, Any]], source: Any, executor: Executor, out_path: str, *,
    decontaminator: Any | None, runnable: set[str], limit: int | None, timeout_s: float,
    config: Mapping[str, Any], input_hashes: Iterable[str], batch: int = 32, inputs: Sequence[str] = (),
) -> SynthStats:
    """Generate, execute (program + tests, in the sandbox), keep passing, decontaminate, write."""
    st = SynthStats()
    with shards.ShardSetWriter(out_path, SYNTHETIC_SCHEMA, config=config, input_hashes=input_hashes,
                               inputs=inputs) as w:
        buf: list[Mapping[str, Any]] = []

        def flush() -> None:
            progs = source.generate(buf, st.skips)
            st.generated += len(progs)
            runnable_progs = []
            for p in progs:
                if p.language not in runnable:
                    st.skips[f"language_not_runnable:{p.language}"] += 1
                else:
                    runnable_progs.append(p)
            results = executor([ExecRequest(p.code, p.language, p.tests,
                                            timeout_s * (3 if p.language in {"java", "cpp", "c", "rust", "go"} else 1))
                                for p in runnable_progs])
            rows = []
            for p, res in zip(runnable_progs, results):
                st.status[res.status] += 1
                if res.status != "passed":
                    st.skips[f"execution_{res.status}"] += 1
                    continue
                if decontaminator is not None:
                    hits = decontaminator.find(p.content)
                    if hits:
                        st.decontam_hits[hits[0].benchmark] += 1
                        st.skips["decontaminated"] += 1
                        continue
                rows.append(program_row(p, res.status))
                st.languages[p.language] += 1
            w.write_rows(rows)
            st.kept += len(rows)
            buf.clear()

        for s in seeds:
            if limit is not None and st.seeds >= limit:
                break
            st.seeds += 1
            buf.append(s)
            if len(buf) >= batch:
                flush()
        if buf:
            flush()
    st.manifest = shards.read_manifest(out_path)
    return st

"""Instruction candidates: (instruction, answer, tests) for a snippet, and the row schema.

Two generators produce them. ``OfflineGenerator`` (no model) writes the instruction from the
signature and docstring, answers with the snippet itself, and makes tests by running the
reference in the sandbox on generated inputs: doctest / hypothesis / probe inputs for Python
(``pyfunc``), typed random inputs for Java static methods (``javafunc``).
``ChatGenerator`` asks an LLM backend to write the instruction, then to answer it with code
and unit tests. Both keep ``source_id`` = the snippet id (lineage).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import pyarrow as pa

from corpus.instruct import javafunc, pyfunc
from corpus.instruct.execution import ExecOutcome, ExecRequest, Executor
from corpus.llm.base import ChatBackend, Completion, LLMError

DISPLAY = {"python": "Python", "java": "Java", "javascript": "JavaScript", "typescript": "TypeScript",
           "c": "C", "cpp": "C++", "go": "Go", "rust": "Rust", "shell": "shell"}
FENCE = {"cpp": "cpp", "c": "c", "shell": "bash"}

CANDIDATE_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source_id", pa.string()),
        pa.field("language", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("name", pa.string()),
        pa.field("instruction", pa.large_string()),
        pa.field("response", pa.large_string()),
        pa.field("answer", pa.large_string()),
        pa.field("tests", pa.large_string()),
        pa.field("test_origin", pa.string()),
        pa.field("n_tests", pa.int32()),
        pa.field("generator", pa.string()),
    ]
)


@dataclass
class Candidate:
    id: str
    source_id: str
    language: str
    kind: str
    name: str
    instruction: str
    response: str  # the assistant message (prose + fenced code)
    answer: str  # the code alone
    tests: str
    test_origin: str  # doctest | hypothesis | probe | doctest+probe | typed_inputs (Java) | llm | none
    n_tests: int
    generator: str

    def row(self) -> dict[str, Any]:
        return asdict(self)


def candidate_id(source_id: str, generator: str) -> str:
    return hashlib.sha256(f"{source_id}\x00{generator}".encode()).hexdigest()[:32]


def fenced(code: str, language: str) -> str:
    return f"```{FENCE.get(language, language)}\n{code.rstrip()}\n```"


class Generator(Protocol):
    name: str

    def generate(self, snippets: Sequence[dict[str, Any]], skips: dict[str, int]) -> list[Candidate]: ...


def _skip(skips: dict[str, int], reason: str) -> None:
    skips[reason] = skips.get(reason, 0) + 1


# ============================================================================ offline

_VERB = re.compile(r"^(return|compute|calculate|convert|check|test|get|find|create|make|build|parse|format|"
                   r"split|join|count|determine|generate|remove|replace|encode|decode|normalize|read|write|"
                   r"apply|add|append|escape|quote|strip|merge|validate|extract|turn|produce|yield|emit)s?\b", re.I)


def offline_instruction(snippet: dict[str, Any], examples: Sequence[pyfunc.Case] = ()) -> str:
    """An instruction written from the signature and docstring only (no model)."""
    lang = DISPLAY.get(snippet["language"], snippet["language"])
    doc = _strip_doctests(snippet["docstring"]) if snippet["language"] == "python" else clean_doc_comment(
        snippet["docstring"])
    summary, _, rest = doc.partition("\n\n")
    summary = " ".join(summary.split())
    rest = rest.strip()
    sig = re.sub(r"@\w+(\([^)]*\))?\s*", "", snippet["signature"]).strip()
    kind = {"function": "function", "method": "method", "class": "class"}.get(snippet["kind"], "function")
    m = _VERB.match(summary)
    variant = int(hashlib.sha256(snippet["id"].encode()).hexdigest()[:8], 16) % 3
    if m and kind != "class":
        verb = m.group(1).lower()
        verb = verb + ("es" if verb.endswith(("s", "sh", "ch", "x", "z")) else "s")
        body = summary[m.end():].strip()
        head = f"Write a {lang} {kind} `{sig}` that {verb} {body}".rstrip()
        if variant == 1:
            head = f"Implement `{sig}` in {lang}. It {verb} {body}".rstrip()
    elif kind == "class":
        head = f"Implement the {lang} class `{snippet['name']}`. {summary}"
    else:
        head = f"Implement the {lang} {kind} `{sig}`. Its documentation says: {summary}"
    if variant == 2 and kind != "class":
        head = f"In {lang}, define `{sig}`.\n\nSpecification: {summary}"
    parts = [head if head.endswith((".", "?", "!", ":")) else head + "."]
    if rest:
        parts.append(_trim(rest, 700))
    if snippet.get("parent") and kind == "method":
        parts.append(f"It is a method of the class `{snippet['parent']}`.")
    shown = [c for c in examples if c.expected is not None][:2]
    if shown:
        parts.append("Examples:\n" + "\n".join(f"- `{c.call}` returns `{c.expected}`" for c in shown))
    return "\n\n".join(parts)


_INLINE_TAG = re.compile(r"\{@(?:code|literal)\s+([^}]*)\}")
_LINK_TAG = re.compile(r"\{@(?:link|linkplain)\s+([^}\s]*)[^}]*\}")
_HTML = re.compile(r"</?(?:p|ul|ol|li|b|i|em|strong|code|pre|br|tt|blockquote|table|tr|td|th|dl|dt|dd)\b[^>]*>", re.I)
_BLOCK_TAG = re.compile(r"^@(param|return|returns|throws|exception)\b\s*(.*)$")


def clean_doc_comment(doc: str) -> str:
    """Javadoc / JSDoc / Doxygen to plain text: inline tags become code, HTML goes, and the
    @param / @return / @throws block becomes a short list (other @tags are dropped)."""
    text = _INLINE_TAG.sub(lambda m: f"`{m.group(1).strip()}`", doc)
    text = _LINK_TAG.sub(lambda m: f"`{m.group(1).replace('#', '.').strip('.')}`", text)
    text = _HTML.sub("", text).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    body, tags = [], []
    in_tags = False
    for line in text.splitlines():
        s = line.strip()
        m = _BLOCK_TAG.match(s)
        if m:
            in_tags = True
            kind, rest = m.group(1), " ".join(m.group(2).split())
            if kind == "param" and rest:
                name, _, desc = rest.partition(" ")
                tags.append(f"- parameter `{name.strip('{}')}`: {desc}".rstrip(": "))
            elif rest:
                tags.append(f"- {'returns' if kind.startswith('return') else 'throws'}: {rest}")
        elif s.startswith("@"):
            in_tags = True  # @since, @see, @apiNote ...: not part of the task
        elif in_tags and s and tags and not s.startswith("@"):
            tags[-1] += " " + s
        elif not in_tags:
            body.append(line)
    out = re.sub(r"\n{3,}", "\n\n", "\n".join(body)).strip()
    return out + ("\n\n" + "\n".join(tags) if tags else "")


def _strip_doctests(doc: str) -> str:
    out, skipping = [], False
    for line in doc.splitlines():
        s = line.strip()
        if s.startswith(">>>") or (skipping and s.startswith("...")):
            skipping = True
            continue
        if skipping and s:
            continue  # expected output of the example
        skipping = False
        out.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def _trim(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n].rsplit(" ", 1)[0] + " ..."


@dataclass
class _Plan:
    snippet: dict[str, Any]
    info: Any  # pyfunc.FuncInfo | javafunc.JavaMethod
    calls: list[str]
    request: ExecRequest
    slot: int = -1


class OfflineGenerator:
    """Candidates without a model: instruction from the docs, answer = the snippet.

    Python functions and Java static methods get tests from running the reference in the
    sandbox on generated inputs; other snippets get no tests (``test_origin='none'``): they can
    reach the coarse SFT set but never the fine (verified) one.
    """

    name = "offline"

    def __init__(self, executor: Executor | None, n_hypothesis: int = 6, seed: int = 0,
                 timeout_s: float = 10.0) -> None:
        self.executor = executor
        self.n_hypothesis = n_hypothesis
        self.seed = seed
        self.timeout_s = timeout_s

    def generate(self, snippets: Sequence[dict[str, Any]], skips: dict[str, int]) -> list[Candidate]:
        out: list[Candidate | None] = []
        plans: list[_Plan] = []
        for s in snippets:
            plan = self._plan(s, skips)
            if plan is None:
                out.append(self._candidate(s, s["code"], "", "none", 0, ()))
                continue
            plan.slot = len(out)
            plans.append(plan)
            out.append(None)
        if plans:
            assert self.executor is not None
            results = self.executor([p.request for p in plans])
            for p, res in zip(plans, results):
                out[p.slot] = self._finish(p, res, skips)
        return [c for c in out if c is not None]

    def _plan(self, s: dict[str, Any], skips: dict[str, int]) -> _Plan | None:
        """What to run in the sandbox to learn the reference's behaviour (None: no tests possible)."""
        lang, ctx = s["language"], s.get("context") or ""
        seed = (self.seed * 1_000_003 + int(s["id"][:8], 16)) % (2**32)
        if self.executor is None:
            _skip(skips, "no_tests:no_executor")
            return None
        try:
            if lang == "python" and s["kind"] == "function":
                info = pyfunc.analyze(s["code"], ctx)
                calls = list(dict.fromkeys(info.doctest_calls + pyfunc.generated_calls(info, self.n_hypothesis, seed)))
                req = ExecRequest(pyfunc.harness(info, calls), "python", timeout_s=self.timeout_s)
                return _Plan(s, info, calls, req)
            if lang == "java" and s["kind"] in {"function", "method"}:
                m = javafunc.analyze(s["code"], ctx)
                calls = javafunc.generated_calls(m, self.n_hypothesis, seed)
                req = ExecRequest(m.program, "java", javafunc.harness_tests(calls), timeout_s=self.timeout_s * 3)
                return _Plan(s, m, calls, req)
        except pyfunc.Unsupported as exc:
            _skip(skips, f"no_tests:{lang}:{exc}")
            return None
        _skip(skips, f"no_tests:{lang}:{s['kind']}" if lang in {"python", "java"} else f"no_tests:{lang}")
        return None

    def _finish(self, p: _Plan, res: ExecOutcome, skips: dict[str, int]) -> Candidate:
        s, info = p.snippet, p.info
        if res.status != "passed":
            _skip(skips, f"reference_{res.status}")
            return self._candidate(s, info.program, "", "none", 0, ())
        if isinstance(info, javafunc.JavaMethod):
            jcases = javafunc.cases_from_output(res.stdout, p.calls)
            if not jcases:
                _skip(skips, "no_literal_results")
                return self._candidate(s, info.program, "", "none", 0, ())
            return self._candidate(s, info.program, javafunc.render_tests(info, jcases), "typed_inputs",
                                   len(jcases), jcases)
        doc_calls = info.doctest_calls
        groups = {c: g for c, g in pyfunc.probe_groups(info).items() if c not in doc_calls} if info.probe else None
        cases = pyfunc.cases_from_output(res.stdout, p.calls, groups=groups)
        if not cases:
            _skip(skips, "no_literal_results")
            return self._candidate(s, info.program, "", "none", 0, ())
        used = {c.call for c in cases}
        rest = "probe" if info.probe else "hypothesis"
        origin = "+".join(k for k, v in (("doctest", used & set(doc_calls)), (rest, used - set(doc_calls))) if v)
        return self._candidate(s, info.program, pyfunc.render_tests(cases), origin, len(cases), cases)

    def _candidate(self, s: dict[str, Any], answer: str, tests: str, origin: str, n: int,
                   cases: Sequence[Any]) -> Candidate:
        instruction = offline_instruction(s, cases)
        if s["language"] == "java" and answer.lstrip().startswith(("public class", "import")):
            instruction += f"\n\nWrite it as a static method of `public class {javafunc.CLASS_NAME}`."
        lang = DISPLAY.get(s["language"], s["language"])
        response = f"Here is a {lang} implementation:\n\n{fenced(answer, s['language'])}"
        return Candidate(
            id=candidate_id(s["id"], self.name), source_id=s["id"], language=s["language"], kind=s["kind"],
            name=s["name"], instruction=instruction, response=response, answer=answer, tests=tests,
            test_origin=origin, n_tests=n, generator=self.name,
        )


# ============================================================================ LLM

INSTRUCTION_SYSTEM = "You write clear, self-contained programming tasks for a coding textbook."
ANSWER_SYSTEM = "You are an expert programmer. You answer with correct, well-commented code and unit tests."
TEST_STYLE = {
    "python": "plain `assert` statements at top level (no test framework)",
    "javascript": "plain `console.assert`-free checks that `throw new Error(...)` on failure (no framework)",
    "java": "a `public class Main` with a `main` method that throws an `AssertionError` on failure",
    "cpp": "a `main` function that uses `assert` from <cassert>",
}
_CODE_BLOCK = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)```", re.S)


def code_blocks(text: str) -> list[tuple[str, str]]:
    return [(m.group(1).lower(), m.group(2).rstrip()) for m in _CODE_BLOCK.finditer(text)]


def instruction_prompt(s: dict[str, Any]) -> list[dict[str, str]]:
    lang = DISPLAY.get(s["language"], s["language"])
    return [
        {"role": "system", "content": INSTRUCTION_SYSTEM},
        {"role": "user", "content": (
            f"Here is a {lang} {s['kind']} from an open-source project:\n\n{fenced(s['code'], s['language'])}\n\n"
            f"Write one programming task, answerable with a self-contained {lang} solution, that this code "
            "would solve. Do not mention the original project. Reply with the task text only."
        )},
    ]


def answer_prompt(instruction: str, language: str) -> list[dict[str, str]]:
    lang = DISPLAY.get(language, language)
    style = TEST_STYLE.get(language, "a small self-checking program that exits non-zero on failure")
    return [
        {"role": "system", "content": ANSWER_SYSTEM},
        {"role": "user", "content": (
            f"{instruction}\n\nAnswer in {lang}. Give the solution in one fenced code block, then unit tests "
            f"in a second fenced code block written as {style}. The tests will be appended to the solution "
            "and run."
        )},
    ]


class ChatGenerator:
    """Candidates from an LLM backend: instruction from the code, then an answer with tests."""

    def __init__(self, backend: ChatBackend, max_tokens: int = 768, temperature: float = 0.0, seed: int = 0) -> None:
        self.backend = backend
        self.name = backend.name
        self.kw = {"max_tokens": max_tokens, "temperature": temperature, "seed": seed}

    def generate(self, snippets: Sequence[dict[str, Any]], skips: dict[str, int]) -> list[Candidate]:
        instr = self.backend.chat_many([instruction_prompt(s) for s in snippets], **self.kw)
        keep = []
        for s, c in zip(snippets, instr):
            if isinstance(c, LLMError):
                _skip(skips, f"llm_error:{c.reason}")
            elif not c.text.strip():
                _skip(skips, "llm_empty_instruction")
            else:
                keep.append((s, c.text.strip()))
        answers = self.backend.chat_many([answer_prompt(t, s["language"]) for s, t in keep], **self.kw)
        out = []
        for (s, instruction), a in zip(keep, answers):
            if isinstance(a, LLMError):
                _skip(skips, f"llm_error:{a.reason}")
                continue
            cand = self._parse(s, instruction, a)
            if cand is None:
                _skip(skips, "llm_no_code_block")
                continue
            out.append(cand)
        return out

    def alternatives(self, rows: Sequence[dict[str, Any]], temperature: float = 0.8,
                     seed: int = 1) -> list[tuple[str, str] | None]:
        """A second, sampled answer per candidate row: (response, code) or None. DPO pairs a
        sampled answer that fails the row's tests against the verified one."""
        kw = {**self.kw, "temperature": temperature, "seed": seed}
        replies = self.backend.chat_many([answer_prompt(r["instruction"], r["language"]) for r in rows], **kw)
        out: list[tuple[str, str] | None] = []
        for r, a in zip(rows, replies):
            blocks = [] if isinstance(a, LLMError) else code_blocks(a.text)
            if not blocks:
                out.append(None)
                continue
            code = blocks[0][1]
            out.append((a.text.split("```")[0].rstrip() + "\n\n" + fenced(code, r["language"]), code))
        return out

    def _parse(self, s: dict[str, Any], instruction: str, a: Completion) -> Candidate | None:
        blocks = code_blocks(a.text)
        if not blocks:
            return None
        answer = blocks[0][1]
        tests = blocks[1][1] if len(blocks) > 1 else ""
        n_tests = _count_tests(tests, s["language"])
        response = a.text.split("```")[0].rstrip() + "\n\n" + fenced(answer, s["language"])
        return Candidate(
            id=candidate_id(s["id"], self.name), source_id=s["id"], language=s["language"], kind=s["kind"],
            name=s["name"], instruction=instruction, response=response.strip(), answer=answer, tests=tests,
            test_origin="llm" if tests else "none", n_tests=n_tests, generator=self.name,
        )


def _count_tests(tests: str, language: str) -> int:
    if not tests.strip():
        return 0
    pat = {"python": r"^\s*assert\b", "cpp": r"\bassert\s*\(", "java": r"\bthrow new AssertionError|\bassert\b"}
    n = len(re.findall(pat.get(language, r"\bthrow\b|\bassert"), tests, re.M))
    return max(n, 1)

"""HumanEval pass@1: generate a completion per problem, execute it in the sandbox.

The program run for each problem is the standard one (Chen et al. 2021): ``prompt +
completion`` as code and ``test + check(entry_point)`` as the tests, executed by
``sandbox.execute_many`` (isolated, time- and memory-limited). Greedy decoding gives one
sample per problem, so pass@1 is the fraction that pass. The completion function is
pluggable: a model (:class:`ModelCompleter`) or, to validate the harness itself, the
canonical solutions (which must score 1.0).
"""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from training.model import Qwen2ForCausalLM

# Codex-paper stop sequences: the function body ends where top-level code starts again.
STOP_SEQUENCES = ("\nclass ", "\ndef ", "\n#", "\nif __name__", "\nprint(", "\nassert ")
_HERE = os.path.dirname(os.path.abspath(__file__))
_CANDIDATES = (
    os.path.join(_HERE, "..", "corpus", "decontam", "data", "humaneval.jsonl.gz"),
    os.path.join(_HERE, "..", "..", "shared", "benchmarks", "humaneval.jsonl.gz"),
)


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    canonical_solution: str
    test: str
    entry_point: str


@dataclass
class HumanEvalResult:
    pass_at_1: float
    passed: int
    total: int
    statuses: Counter = field(default_factory=Counter)
    per_task: list[dict[str, Any]] = field(default_factory=list)


def default_path() -> str:
    env = os.environ.get("CODECORPUS_HUMANEVAL")
    if env:
        return env
    for p in _CANDIDATES:
        if os.path.exists(p):
            return os.path.normpath(p)
    raise FileNotFoundError(f"humaneval.jsonl.gz not found (looked in {list(_CANDIDATES)}); set CODECORPUS_HUMANEVAL")


def load_problems(path: str | None = None, limit: int | None = None) -> list[Problem]:
    """HumanEval problems from a (gzipped) JSONL file; a malformed line raises naming it."""
    path = path or default_path()
    opener = gzip.open if path.endswith(".gz") else open
    out = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                out.append(Problem(raw["task_id"], raw["prompt"], raw.get("canonical_solution", ""), raw["test"],
                                   raw["entry_point"]))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{n}: not a HumanEval record ({exc})") from exc
            if limit and len(out) >= limit:
                break
    return out


def truncate(completion: str) -> str:
    """Cut a completion at the first stop sequence (end of the function body)."""
    cut = len(completion)
    for s in STOP_SEQUENCES:
        i = completion.find(s)
        if i != -1:
            cut = min(cut, i)
    return completion[:cut]


def program(problem: Problem, completion: str) -> tuple[str, str]:
    """(code, tests) for the sandbox."""
    return problem.prompt + completion, problem.test + f"\n\ncheck({problem.entry_point})\n"


Executor = Callable[[list[tuple[str, str]], float], list[str]]


def sandbox_executor(workers: int = 2, memory_mb: int = 512, retries: int = 2) -> Executor:
    """Run (code, tests) pairs through ``sandbox.execute_many``; returns each status.

    ``sandbox_error`` is the infrastructure failing (not the program), so those requests are
    retried up to ``retries`` times before the status is reported."""

    def run(jobs: list[tuple[str, str]], timeout_s: float) -> list[str]:
        import sandbox

        reqs = [sandbox.Request(code=c, language="python", tests=t, timeout_s=timeout_s, memory_mb=memory_mb)
                for c, t in jobs]
        statuses = [r.status for r in sandbox.execute_many(reqs, workers=workers)]
        for _ in range(retries):
            again = [i for i, st in enumerate(statuses) if st == "sandbox_error"]
            if not again:
                break
            for i, r in zip(again, sandbox.execute_many([reqs[i] for i in again], workers=workers)):
                statuses[i] = r.status
        return statuses

    return run


def evaluate(problems: Sequence[Problem], complete: Callable[[Problem], str], executor: Executor | None = None,
             timeout_s: float = 10.0) -> HumanEvalResult:
    """pass@1 of ``complete`` over ``problems`` (one greedy sample each)."""
    executor = executor or sandbox_executor()
    completions = [truncate(complete(p)) for p in problems]
    statuses = executor([program(p, c) for p, c in zip(problems, completions)], timeout_s)
    per_task = [{"task_id": p.task_id, "passed": s == "passed", "status": s, "completion": c}
                for p, c, s in zip(problems, completions, statuses)]
    passed = sum(t["passed"] for t in per_task)
    return HumanEvalResult(passed / len(problems) if problems else float("nan"), passed, len(problems),
                           Counter(statuses), per_task)


def canonical_completer(problem: Problem) -> str:
    """The reference solution as the "model": the harness must score 1.0 with it."""
    return problem.canonical_solution


class ModelCompleter:
    """Greedy completion of a prompt with our model and a ``tokenizers`` tokenizer."""

    def __init__(self, model: Qwen2ForCausalLM, tokenizer: Any, max_new_tokens: int = 256,
                 stop_tokens: Sequence[str] = ("<|endoftext|>", "<|im_end|>", "<|fim_pad|>", "<|file_sep|>")) -> None:
        self.model, self.tok, self.max_new_tokens = model, tokenizer, max_new_tokens
        self.stop_ids = {i for i in (tokenizer.token_to_id(s) for s in stop_tokens) if i is not None}

    @torch.no_grad()
    def __call__(self, problem: Problem) -> str:
        ids = self.tok.encode(problem.prompt).ids
        checked = [0]

        def stop(new: list[int]) -> bool:
            # Decoding is cheap for short outputs; check every 8 tokens for a stop sequence.
            if len(new) - checked[0] < 8:
                return False
            checked[0] = len(new)
            return truncate(self.tok.decode(new)) != self.tok.decode(new)

        out = self.model.generate(ids, self.max_new_tokens, stop_ids=self.stop_ids, stop=stop)
        return self.tok.decode(out)

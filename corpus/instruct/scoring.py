"""Checklist scoring of (instruction, answer) pairs, weighted into one score.

The report's judge rates eight aspects. ``LLMJudge`` asks a chat backend for 0-10 ratings
as JSON; ``RuleProxyScorer`` computes cheap *proxies* for the same aspects from program
analysis (named ``proxy`` everywhere so nobody mistakes them for a model's judgement).
Both return per-criterion values in [0, 1]; ``weighted`` folds them with config weights.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from corpus.instruct import treesit
from corpus.llm.base import ChatBackend, LLMError

CRITERIA = ("consistency", "relevance", "difficulty", "code_presence", "correctness", "clarity", "comments",
            "educational_value")
DEFAULT_WEIGHTS: dict[str, float] = {
    "consistency": 2.0, "relevance": 1.0, "difficulty": 0.5, "code_presence": 1.0, "correctness": 2.0,
    "clarity": 1.0, "comments": 0.5, "educational_value": 1.0,
}
BRANCHES = {"if_statement", "for_statement", "while_statement", "elif_clause", "try_statement", "except_clause",
            "conditional_expression", "switch_statement", "case_statement", "for_in_statement", "catch_clause",
            "match_statement", "list_comprehension", "do_statement", "if_expression", "for_expression",
            "while_expression", "match_expression", "enhanced_for_statement", "ternary_expression"}
COMMENTS = {"comment", "line_comment", "block_comment"}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]+")


def weighted(scores: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """Weighted mean over the criteria present in ``weights`` (missing scores count as 0)."""
    total = sum(max(0.0, w) for w in weights.values())
    if total <= 0:
        raise ValueError("checklist weights must contain at least one positive weight")
    return round(sum(max(0.0, w) * float(scores.get(k, 0.0)) for k, w in weights.items()) / total, 4)


class RuleProxyScorer:
    """Rule-based proxies for the checklist (no model): cheap, deterministic, explainable."""

    name = "rule_proxy"

    def score_many(self, rows: Sequence[Mapping[str, Any]], skips: dict[str, int]) -> list[dict[str, float] | None]:
        return [self.score(r) for r in rows]

    def score(self, r: Mapping[str, Any]) -> dict[str, float]:
        instr, answer, lang = r["instruction"] or "", r["answer"] or "", r["language"]
        src = answer.encode("utf-8", "surrogatepass")
        parsed = treesit.supported(lang)
        root = treesit.parse(src, lang).root_node if parsed else None
        parse_ok = root is not None and not root.has_error
        n_lines = len([ln for ln in answer.splitlines() if ln.strip()])
        branches = comments = 0
        if root is not None:
            for n in treesit.walk(root):
                branches += n.type in BRANCHES
                comments += n.type in COMMENTS
        doc_lines = _docstring_lines(answer) if lang == "python" else 0
        iw = {w.lower() for w in _WORD.findall(instr)}
        aw = {w.lower() for w in _WORD.findall(answer)}
        name = (r.get("name") or "").lower()
        consistency = 0.5 * (name in iw if name else 0.0) + 0.5 * (len(iw & aw) / max(1, min(len(iw), 12)) > 0.3)
        relevance = min(1.0, len(iw & aw) / 8)
        difficulty = min(1.0, (branches + n_lines / 15) / 6)
        code_presence = 1.0 if parse_ok and n_lines >= 2 else 0.5 if n_lines >= 2 else 0.0
        n_tests = int(r.get("n_tests") or 0)
        correctness = (0.5 if parse_ok else 0.0) + (0.5 if n_tests >= 2 else 0.25 if n_tests == 1 else 0.0)
        words = len(instr.split())
        clarity = (1.0 if 12 <= words <= 250 else 0.5 if 5 <= words <= 500 else 0.1) * (
            1.0 if _avg_line_len(answer) <= 100 else 0.6)
        comment_ratio = (comments + doc_lines) / max(1, n_lines)
        comments_score = min(1.0, comment_ratio / 0.25)
        examples = "example" in instr.lower() or ">>>" in answer
        educational = min(1.0, 0.4 * (doc_lines + comments > 0) + 0.3 * examples + 0.3 * (branches > 0))
        return {
            "consistency": round(consistency, 4), "relevance": round(relevance, 4),
            "difficulty": round(difficulty, 4), "code_presence": code_presence,
            "correctness": correctness, "clarity": round(clarity, 4), "comments": round(comments_score, 4),
            "educational_value": round(educational, 4),
        }


def _docstring_lines(code: str) -> int:
    m = re.search(r'("""|\'\'\')(.*?)\1', code, re.S)
    return m.group(2).count("\n") + 1 if m else 0


def _avg_line_len(code: str) -> float:
    lines = [ln for ln in code.splitlines() if ln.strip()]
    return sum(len(ln) for ln in lines) / max(1, len(lines))


JUDGE_SYSTEM = "You are a strict reviewer of programming exercises and their solutions."


def judge_prompt(r: Mapping[str, Any]) -> list[dict[str, str]]:
    keys = ", ".join(f'"{k}"' for k in CRITERIA)
    return [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": (
            f"Task:\n{r['instruction']}\n\nAnswer:\n{r['response']}\n\n"
            "Rate the pair on each criterion from 0 (worst) to 10 (best): question/answer consistency, "
            "relevance, difficulty, code presence, correctness, clarity, comments, educational value. "
            f"Reply with one JSON object with exactly these keys: {keys}."
        )},
    ]


def parse_judgement(text: str) -> dict[str, float]:
    """Scores in [0, 1] from the judge's reply; raises ValueError if no usable JSON is found."""
    m = re.search(r"\{.*\}", text, re.S)
    if not m:
        raise ValueError("no JSON object in the judge reply")
    raw = json.loads(m.group(0))
    out = {}
    for k in CRITERIA:
        v = raw.get(k)
        if not isinstance(v, (int, float)):
            raise ValueError(f"judge reply lacks a number for {k!r}")
        out[k] = round(min(10.0, max(0.0, float(v))) / 10.0, 4)
    return out


class LLMJudge:
    """Checklist scores from a chat backend; unusable replies are skipped with a reason."""

    def __init__(self, backend: ChatBackend, max_tokens: int = 256, seed: int = 0) -> None:
        self.backend = backend
        self.name = f"llm_judge:{backend.name}"
        self.kw = {"max_tokens": max_tokens, "temperature": 0.0, "seed": seed}

    def score_many(self, rows: Sequence[Mapping[str, Any]], skips: dict[str, int]) -> list[dict[str, float] | None]:
        replies = self.backend.chat_many([judge_prompt(r) for r in rows], **self.kw)
        out: list[dict[str, float] | None] = []
        for rep in replies:
            if isinstance(rep, LLMError):
                skips[f"judge_error:{rep.reason}"] = skips.get(f"judge_error:{rep.reason}", 0) + 1
                out.append(None)
                continue
            try:
                out.append(parse_judgement(rep.text))
            except (ValueError, json.JSONDecodeError):
                skips["judge_unparseable"] = skips.get("judge_unparseable", 0) + 1
                out.append(None)
        return out

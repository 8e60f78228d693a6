"""The instruction-synthesis stages as plain functions over shard sets.

Each stage streams its input shard set batch by batch, writes its output with
ShardSetWriter (atomic, deterministic) and returns ``StageStats`` for asset metadata. The
Dagster assets and the ``codecorpus instruct`` verb are thin wrappers around these.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from corpus import shards
from corpus.instruct import fim, javafunc, langid, mutate, pyfunc, treesit
from corpus.instruct.candidates import CANDIDATE_SCHEMA, Generator, fenced
from corpus.instruct.execution import ExecRequest, Executor
from corpus.instruct.scoring import weighted
from corpus.instruct.sets import DPO_SCHEMA, SFT_SCHEMA, conversation, sample_id
from corpus.instruct.snippets import SNIPPET_SCHEMA, MiningConfig, mine_file
from corpus.schemas import extend_schema

BATCH = 64
COMPILED = {"java", "cpp", "c", "rust", "go", "typescript"}  # compile step: allow 3x the run timeout
FAILING = {"failed", "timeout", "memory_limit", "output_limit"}  # behaviour bugs, not compile errors

LANGID_SCHEMA = extend_schema(SNIPPET_SCHEMA, pa.field("langid_label", pa.string()),
                              pa.field("langid_prob", pa.float32()))
SCORED_SCHEMA = extend_schema(CANDIDATE_SCHEMA, pa.field("checklist", pa.string()), pa.field("score", pa.float64()),
                              pa.field("scorer", pa.string()))
VERIFIED_SCHEMA = extend_schema(SCORED_SCHEMA, pa.field("parse_ok", pa.bool_()), pa.field("status", pa.string()),
                                pa.field("verified", pa.bool_()), pa.field("stderr_tail", pa.string()))
# Run times are not row data: they differ between runs, and rows must be byte-identical.


def _timeout(language: str, timeout_s: float) -> float:
    return timeout_s * (3 if language in COMPILED else 1)


@dataclass
class StageStats:
    rows_in: int = 0
    rows_out: int = 0
    skips: Counter = field(default_factory=Counter)
    counts: dict[str, Counter] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    manifest: shards.Manifest | None = None

    def count(self, table: str, key: str, n: int = 1) -> None:
        self.counts.setdefault(table, Counter())[key] += n


def _rows(path: str, columns: list[str] | None = None, batch_size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
    """Row batches of a committed shard set, or of a single Parquet file (CLI inputs)."""
    if path.endswith(".parquet"):
        batches = shards.iter_parquet_file(path, columns=columns, batch_size=batch_size)
    else:
        batches = shards.iter_batches(path, columns=columns, batch_size=batch_size)
    for b in batches:
        yield b.to_pylist()


def _writer(out_path: str, schema: pa.Schema, config: Mapping[str, Any], input_hashes: Iterable[str],
            extra: Mapping[str, Any] | None = None, *, inputs: Sequence[str]) -> shards.ShardSetWriter:
    """Every stage's writer; ``inputs`` (the stage's input paths) must not overlap ``out_path``."""
    return shards.ShardSetWriter(out_path, schema, config=config, input_hashes=input_hashes, extra=extra,
                                 inputs=inputs)


# ----------------------------------------------------------------------------- 1. mining


def _priority(s: Mapping[str, Any]) -> int:
    """Lower first: functions that can get generated (hence verified) tests are the most valuable.

    A cheap static check (``pyfunc.analyze`` / ``javafunc.analyze``: nothing runs) ranks
    Python functions with doctests or type hints and self-contained Java static methods (0),
    Python functions callable with probe inputs (1), other functions (2), the rest (3-4).
    """
    if s["language"] == "python" and s["kind"] == "function":
        try:
            info = pyfunc.analyze(s["code"], s["context"])
        except pyfunc.Unsupported:
            return 3
        return 0 if info.doctest_calls or info.strategies is not None else 1
    if s["language"] == "java" and s["kind"] in {"function", "method"}:
        try:
            javafunc.analyze(s["code"], s["context"])
        except pyfunc.Unsupported:
            return 2
        return 0
    return 2 if s["kind"] in {"function", "method"} else 4


def mine_snippets(
    inputs: Sequence[tuple[str, str]], out_path: str, *, mining: MiningConfig, caps: Mapping[str, int],
    default_cap: int, config: Mapping[str, Any], input_hashes: Iterable[str],
) -> StageStats:
    """Mine documented definitions from code shard sets (``(partition, path)`` pairs).

    A bounded, seeded sample per language is kept: the ``cap`` snippets with the best
    (priority, id-hash) key, so memory is O(cap) however large the corpus.
    """
    st = StageStats()
    heaps: dict[str, list[tuple[tuple[int, str, int], dict[str, Any]]]] = {}
    for partition, path in inputs:
        for rows in _rows(path, ["id", "repo", "path", "language", "content"], batch_size=256):
            for r in rows:
                st.rows_in += 1
                content, lang = r.get("content"), r.get("language") or partition
                if not isinstance(content, str) or not content.strip():
                    st.skips["missing_content"] += 1
                    continue
                if "\x00" in content[:8192]:
                    st.skips["binary_content"] += 1
                    continue
                if not treesit.supported(lang):
                    st.skips[f"no_grammar:{lang}"] += 1
                    continue
                cap = caps.get(lang, default_cap)
                if cap <= 0:
                    st.skips[f"language_cap_zero:{lang}"] += 1
                    continue
                heap = heaps.setdefault(lang, [])
                skips: dict[str, int] = {}
                for snip in mine_file(content, lang, source_id=r["id"], repo=r.get("repo") or "",
                                      path=r.get("path") or "", cfg=mining, skips=skips):
                    row = snip.row()
                    st.count("mined_by_language", lang)
                    # min-heap whose root is the worst kept snippet: largest (priority, id)
                    item = ((-_priority(row), _neg(snip.id), st.rows_in), row)
                    if len(heap) < cap:
                        heapq.heappush(heap, item)
                    elif item[0] > heap[0][0]:
                        heapq.heapreplace(heap, item)
                st.skips.update(skips)
    kept = sorted((row for heap in heaps.values() for _, row in heap), key=lambda r: (r["language"], r["id"]))
    with _writer(out_path, SNIPPET_SCHEMA, config, input_hashes, inputs=[p for _, p in inputs]) as w:
        for i in range(0, len(kept), 1000):
            w.write_rows(kept[i:i + 1000])
    st.manifest = shards.read_manifest(out_path)
    st.rows_out = len(kept)
    for r in kept:
        st.count("kept_by_language", r["language"])
        st.count("kept_by_kind", r["kind"])
    return st


def _neg(hex_id: str) -> str:
    """Order-reversing map on hex strings, so the heap keeps the *smallest* ids."""
    return hex_id.translate(str.maketrans("0123456789abcdef", "fedcba9876543210"))


# ----------------------------------------------------------------------------- 2. language id


def langid_filter(
    snippets_path: str, code_inputs: Sequence[tuple[str, str]], out_path: str, *, params: langid.LangIdParams,
    min_prob: float, require_match: bool, config: Mapping[str, Any], input_hashes: Iterable[str],
    workdir: str | None = None,
) -> StageStats:
    """Train the language identifier on the corpus, then keep snippets that are real code."""
    st = StageStats()

    def files() -> Iterator[tuple[str, str, str]]:
        for partition, path in code_inputs:
            for rows in _rows(path, ["id", "language", "content"], batch_size=256):
                for r in rows:
                    if isinstance(r.get("content"), str) and r["content"].strip():
                        # a prefix is enough for chunking and bounds the sample's memory
                        yield r["id"], r.get("language") or partition, r["content"][:32_768]

    def prose() -> Iterator[str]:
        for rows in _rows(snippets_path, ["docstring"], batch_size=512):
            for r in rows:
                yield r["docstring"] or ""

    if shards.count_rows(snippets_path) == 0:  # nothing to filter: an empty set, no model to train
        with _writer(out_path, LANGID_SCHEMA, config, input_hashes, extra={"langid_accuracy": None},
                     inputs=[snippets_path]):
            pass
        st.manifest = shards.read_manifest(out_path)
        st.extra.update(langid_accuracy=float("nan"), langid_n_train=0, langid_n_test=0, langid_per_label={})
        st.skips["no_snippets_to_classify"] += 1
        return st
    clf = langid.train(files(), prose(), params, workdir=workdir)
    rep = clf.report
    assert rep is not None
    st.extra["langid_accuracy"] = rep.accuracy
    st.extra["langid_n_train"] = rep.n_train
    st.extra["langid_n_test"] = rep.n_test
    st.extra["langid_per_label"] = rep.per_label
    same_family = {("c", "cpp"), ("cpp", "c"), ("javascript", "typescript"), ("typescript", "javascript")}
    with _writer(out_path, LANGID_SCHEMA, config, input_hashes, inputs=[snippets_path, *[p for _, p in code_inputs]],
                 extra={"langid_accuracy": rep.accuracy, "langid_per_label": rep.per_label}) as w:
        model_path = w.side_file_path("langid.bin")
        clf.save(model_path)
        for rows in _rows(snippets_path):
            st.rows_in += len(rows)
            labels, probs = clf.predict([r["code"] for r in rows])
            keep = []
            for r, lab, p in zip(rows, labels, probs):
                r["langid_label"], r["langid_prob"] = lab, float(p)
                st.count("predicted", lab)
                if lab == langid.TEXT_LABEL:
                    if p >= min_prob:
                        st.skips["no_real_code"] += 1
                    else:
                        keep.append(r)  # unsure: keep (the parse check and the sandbox come later)
                        st.count("kept_uncertain", lab)
                elif lab not in langid.MAINSTREAM:
                    st.skips[f"not_mainstream:{lab}"] += 1
                elif require_match and lab != r["language"] and (lab, r["language"]) not in same_family and p >= min_prob:
                    st.skips["language_mismatch"] += 1
                else:
                    keep.append(r)
            w.write_rows(keep)
            st.rows_out += len(keep)
    st.manifest = shards.read_manifest(out_path)
    return st


# ----------------------------------------------------------------------------- 3. candidates


def make_candidates(in_path: str, out_path: str, generator: Generator, *, limit: int | None,
                    config: Mapping[str, Any], input_hashes: Iterable[str], batch_size: int = BATCH,
                    decontaminator: Any | None = None) -> StageStats:
    """Generate candidates batch by batch; with a ``decontaminator`` (corpus.decontam), drop any
    whose instruction or response shares an n-gram with a benchmark (LLM output can leak them)."""
    st = StageStats()
    with _writer(out_path, CANDIDATE_SCHEMA, config, input_hashes, inputs=[in_path]) as w:
        for rows in _rows(in_path, batch_size=batch_size):
            if limit is not None:
                rows = rows[: max(0, limit - st.rows_in)]
                if not rows:
                    break
            st.rows_in += len(rows)
            skips: dict[str, int] = {}
            cands = generator.generate(rows, skips)
            st.skips.update(skips)
            if decontaminator is not None:
                clean = []
                for c in cands:
                    hits = decontaminator.find(c.instruction + "\n" + c.response)
                    if hits:
                        st.skips[f"decontaminated:{hits[0].benchmark}"] += 1
                    else:
                        clean.append(c)
                cands = clean
            w.write_rows([c.row() for c in cands])
            st.rows_out += len(cands)
            for c in cands:
                st.count("test_origin", c.test_origin)
                st.count("language", c.language)
    st.manifest = shards.read_manifest(out_path)
    return st


# ----------------------------------------------------------------------------- 4. scoring


def score_candidates(in_path: str, out_path: str, scorer: Any, weights: Mapping[str, float], *,
                     config: Mapping[str, Any], input_hashes: Iterable[str]) -> StageStats:
    st = StageStats()
    hist = Counter()
    with _writer(out_path, SCORED_SCHEMA, config, input_hashes, inputs=[in_path]) as w:
        for rows in _rows(in_path):
            st.rows_in += len(rows)
            skips: dict[str, int] = {}
            scores = scorer.score_many(rows, skips)
            st.skips.update(skips)
            out = []
            for r, s in zip(rows, scores):
                if s is None:
                    continue
                r["checklist"] = json.dumps(s, sort_keys=True)
                r["score"] = weighted(s, weights)
                r["scorer"] = scorer.name
                hist[f"{min(9, int(r['score'] * 10)) / 10:.1f}"] += 1
                out.append(r)
            w.write_rows(out)
            st.rows_out += len(out)
    st.counts["score_histogram"] = hist
    st.manifest = shards.read_manifest(out_path)
    return st


# ----------------------------------------------------------------------------- 5. verification


def verify_candidates(in_path: str, out_path: str, executor: Executor | None, runnable: set[str], *,
                      timeout_s: float, config: Mapping[str, Any], input_hashes: Iterable[str]) -> StageStats:
    """Parse check, then the unit tests in the sandbox; the status is kept on every row."""
    st = StageStats()
    with _writer(out_path, VERIFIED_SCHEMA, config, input_hashes, inputs=[in_path]) as w:
        for rows in _rows(in_path):
            st.rows_in += len(rows)
            todo = []
            for r in rows:
                r["parse_ok"] = treesit.parses_cleanly(r["answer"], r["language"])
                r["stderr_tail"] = ""
                if not r["parse_ok"]:
                    r["status"] = "syntax_error"
                elif not (r["tests"] or "").strip():
                    r["status"] = "no_tests"
                elif executor is None or r["language"] not in runnable:
                    r["status"] = "not_run"
                else:
                    todo.append(r)
            results = executor([ExecRequest(r["answer"], r["language"], r["tests"], _timeout(r["language"], timeout_s))
                                for r in todo]) if todo else []
            for r, res in zip(todo, results):
                r["status"], r["stderr_tail"] = res.status, res.stderr[-500:]
            for r in rows:
                r["verified"] = r["status"] == "passed"
                st.count("status", r["status"])
                st.count(f"status:{r['language']}", r["status"])
            w.write_rows(rows)
            st.rows_out += len(rows)
    st.manifest = shards.read_manifest(out_path)
    return st


# ----------------------------------------------------------------------------- 6. sets


def _sft_row(r: Mapping[str, Any], messages: list[dict[str, str]], kind: str) -> dict[str, Any]:
    return {"id": sample_id(kind, r["id"]), "source_id": r["source_id"], "language": r["language"],
            "messages": messages, "score": float(r["score"]), "verified": bool(r["verified"]), "status": r["status"]}


def build_sft(in_path: str, out_path: str, keep: Callable[[Mapping[str, Any]], str | None], kind: str, *,
              config: Mapping[str, Any], input_hashes: Iterable[str]) -> StageStats:
    """An SFT set; ``keep(row)`` returns None to keep the row or a skip reason."""
    st = StageStats()
    with _writer(out_path, SFT_SCHEMA, config, input_hashes, inputs=[in_path]) as w:
        for rows in _rows(in_path):
            st.rows_in += len(rows)
            out = []
            for r in rows:
                why = keep(r)
                if why:
                    st.skips[why] += 1
                    continue
                out.append(_sft_row(r, conversation(r["instruction"], r["response"]), kind))
                st.count("language", r["language"])
            w.write_rows(out)
            st.rows_out += len(out)
    st.manifest = shards.read_manifest(out_path)
    return st


def coarse_filter(min_score: float) -> Callable[[Mapping[str, Any]], str | None]:
    """sft_coarse: broad. Score above a low bar, parses, and did not *fail* its tests."""

    def keep(r: Mapping[str, Any]) -> str | None:
        if r["score"] < min_score:
            return "score_below_threshold"
        if not r["parse_ok"]:
            return "parse_error"
        return None if r["status"] in {"passed", "no_tests", "not_run"} else f"tests_{r['status']}"

    return keep


def fine_filter(min_score: float) -> Callable[[Mapping[str, Any]], str | None]:
    """sft_fine: verified (tests passed in the sandbox) and a high checklist score."""

    def keep(r: Mapping[str, Any]) -> str | None:
        if not r["verified"]:
            return f"not_verified:{r['status']}"
        return "score_below_threshold" if r["score"] < min_score else None

    return keep


def build_fim(in_path: str, out_path: str, *, min_score: float, config: Mapping[str, Any],
              input_hashes: Iterable[str]) -> StageStats:
    st = StageStats()
    with _writer(out_path, SFT_SCHEMA, config, input_hashes, inputs=[in_path]) as w:
        for rows in _rows(in_path):
            st.rows_in += len(rows)
            out = []
            for r in rows:
                if not r["verified"]:
                    st.skips["not_verified"] += 1
                    continue
                if r["score"] < min_score:
                    st.skips["score_below_threshold"] += 1
                    continue
                split = fim.choose_span(r["answer"], r["language"], seed=r["id"])
                if split is None:
                    st.skips["no_maskable_block"] += 1
                    continue
                msgs = conversation(r["instruction"], split.middle, system=None)
                msgs[0]["content"] = fim.fim_prompt(r["instruction"], split)
                out.append(_sft_row(r, msgs, "fim"))
                st.count("language", r["language"])
            w.write_rows(out)
            st.rows_out += len(out)
    st.manifest = shards.read_manifest(out_path)
    return st


def strip_documentation(code: str, language: str) -> str | None:
    """``code`` without comments and (Python) docstrings; None if that breaks it."""
    if not treesit.supported(language):
        return None
    src = code.encode("utf-8", "surrogatepass")
    root = treesit.parse(src, language).root_node
    cut = []
    for n in treesit.walk(root):
        if n.type in {"comment", "line_comment", "block_comment"}:
            cut.append((n.start_byte, n.end_byte))
        elif (language == "python" and n.type == "expression_statement" and n.named_child_count == 1
              and n.named_children[0].type == "string" and n.parent is not None and n.parent.type == "block"
              and n.parent.named_children[0] == n):
            cut.append((n.start_byte, n.end_byte))
        elif language == "python" and n.type == "string" and n.parent is not None and n.parent.type == "block" \
                and n.parent.named_children[0] == n:
            cut.append((n.start_byte, n.end_byte))
    if not cut:
        return None
    out, pos = [], 0
    for a, b in sorted(cut):
        if a >= pos:
            out.append(src[pos:a])
            pos = b
    out.append(src[pos:])
    lines = [ln for ln in b"".join(out).decode("utf-8", "surrogatepass").splitlines() if ln.strip()]
    stripped = "\n".join(lines)
    return stripped if treesit.parses_cleanly(stripped, language) and stripped.strip() else None


def build_dpo(in_path: str, out_path: str, executor: Executor | None, runnable: set[str], scorer: Any,
              weights: Mapping[str, float], *, min_score: float, n_mutants: int, judge_margin: float,
              timeout_s: float, config: Mapping[str, Any], input_hashes: Iterable[str],
              sampler: Callable[[list[dict[str, Any]]], list[tuple[str, str] | None]] | None = None) -> StageStats:
    """Execution pairs and judge pairs.

    Execution pairs: chosen = the verified answer; rejected = a failing answer to the same
    instruction: first a sampled model answer (``sampler``, LLM backends) that fails the tests,
    else a one-token mutant that the sandbox shows failing. Judge pairs: see below."""
    st = StageStats()
    with _writer(out_path, DPO_SCHEMA, config, input_hashes, inputs=[in_path]) as w:
        for rows in _rows(in_path):
            st.rows_in += len(rows)
            out: list[dict[str, Any]] = []
            good = [r for r in rows if r["verified"] and r["score"] >= min_score]
            st.skips["not_verified_or_low_score"] += len(rows) - len(good)
            # --- execution pairs: mutants tried in rounds (seeded order); a row stops at its first
            # mutant that the sandbox shows failing, so most rows cost one extra run, not n_mutants
            todo = {r["id"]: (r, mutate.mutants(r["answer"], r["language"], n_mutants, seed=r["id"])) for r in good
                    if executor is not None and r["language"] in runnable}
            paired: set[str] = set()
            if sampler is not None and todo:
                rs = [r for r, _ in todo.values()]
                alts = [(r, alt) for r, alt in zip(rs, sampler(rs)) if alt is not None and alt[1] != r["answer"]]
                st.count("sampled_answers", "usable", len(alts))
                assert executor is not None
                results = executor([ExecRequest(code, r["language"], r["tests"], _timeout(r["language"], timeout_s))
                                    for r, (_, code) in alts]) if alts else []
                for (r, (resp, _)), res in zip(alts, results):
                    st.count("sampled_status", res.status)
                    if res.status in FAILING:
                        paired.add(r["id"])
                        out.append({"id": sample_id("dpo-exec", r["id"]), "source_id": r["source_id"],
                                    "language": r["language"], "prompt": conversation(r["instruction"]),
                                    "chosen": r["response"], "rejected": resp, "pair_source": "execution"})
            for k in range(n_mutants):
                jobs = [(r, muts[k][0]) for rid, (r, muts) in todo.items() if rid not in paired and k < len(muts)]
                if not jobs:
                    break
                assert executor is not None
                results = executor([ExecRequest(code, r["language"], r["tests"], _timeout(r["language"], timeout_s))
                                    for r, code in jobs])
                for (r, code), res in zip(jobs, results):
                    st.count("mutant_status", res.status)
                    if res.status not in FAILING:
                        continue
                    paired.add(r["id"])
                    prefix = r["response"][: r["response"].find("```")] if "```" in r["response"] else ""
                    out.append({"id": sample_id("dpo-exec", r["id"]), "source_id": r["source_id"],
                                "language": r["language"], "prompt": conversation(r["instruction"]),
                                "chosen": r["response"], "rejected": prefix + fenced(code, r["language"]),
                                "pair_source": "execution"})
            st.skips["no_failing_mutant"] += sum(1 for r in good if r["id"] not in paired and r["language"] in runnable)
            # --- judge pairs: documented answer vs the same code stripped of its documentation
            variants = []
            for r in good:
                bare = strip_documentation(r["answer"], r["language"])
                if bare is None:
                    st.skips["judge_no_variant"] += 1
                    continue
                prefix = r["response"][: r["response"].find("```")] if "```" in r["response"] else ""
                variants.append((r, prefix + fenced(bare, r["language"]), bare))
            if variants:
                skips: dict[str, int] = {}
                a = scorer.score_many([r for r, _, _ in variants], skips)
                b = scorer.score_many([{**r, "answer": bare, "response": resp} for r, resp, bare in variants], skips)
                st.skips.update(skips)
                for (r, resp, _), sa, sb in zip(variants, a, b):
                    if sa is None or sb is None:
                        continue
                    margin = weighted(sa, weights) - weighted(sb, weights)
                    if margin < judge_margin:
                        st.skips["judge_margin_too_small"] += 1
                        continue
                    out.append({"id": sample_id("dpo-judge", r["id"]), "source_id": r["source_id"],
                                "language": r["language"], "prompt": conversation(r["instruction"]),
                                "chosen": r["response"], "rejected": resp, "pair_source": "judge"})
            for o in out:
                st.count("pair_source", o["pair_source"])
                st.count("language", o["language"])
            w.write_rows(out)
            st.rows_out += len(out)
    st.manifest = shards.read_manifest(out_path)
    return st

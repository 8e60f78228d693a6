"""Instruction-synthesis graph: snippets -> language id -> candidates -> checklist scores ->
sandbox verification -> SFT (coarse, fine, FIM) and DPO sets. Group ``instruct``.

All computing is in ``corpus.instruct``; these assets choose inputs, caps and backends, skip
unchanged work (``shards.up_to_date``) and report rich metadata.
"""

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from pydantic import Field

from assets.common import all_partition_hashes, counts_table, manifest_metadata, md_table, upstream_hashes
from assets.resources import CorpusResource
from corpus import shards
from corpus.decontam import Decontaminator
from corpus.instruct import execution as ex
from corpus.instruct import langid
from corpus.instruct.candidates import ChatGenerator, OfflineGenerator
from corpus.instruct.pipeline import (
    StageStats,
    build_dpo,
    build_fim,
    build_sft,
    coarse_filter,
    fine_filter,
    langid_filter,
    make_candidates,
    mine_snippets,
    score_candidates,
    verify_candidates,
)
from corpus.instruct.scoring import DEFAULT_WEIGHTS, LLMJudge, RuleProxyScorer
from corpus.instruct.snippets import MiningConfig
from corpus.llm import LLMSpec, make_backend

GROUP = "instruct"
CODE_UPSTREAM = "code_clean"


class LLMConfig(dg.Config):
    """Which generator writes instructions / judges them: `offline` needs no model."""

    # Defaults read CODECORPUS_LLM_* when the code location loads (each run worker loads it), so
    # the Launchpad shows the value a run will use.
    backend: str = Field(default=os.environ.get("CODECORPUS_LLM_BACKEND", "offline"),
                         description="offline | openai | hf (default: $CODECORPUS_LLM_BACKEND or offline)")
    base_url: str = Field(default=os.environ.get("CODECORPUS_LLM_BASE_URL", LLMSpec.base_url))
    model: str = Field(default=os.environ.get("CODECORPUS_LLM_MODEL", LLMSpec.model))
    # Defaults come from the library's LLMSpec so the two cannot drift apart.
    api_key_env: str = LLMSpec.api_key_env
    max_concurrency: int = LLMSpec.max_concurrency
    max_retries: int = LLMSpec.max_retries
    timeout_s: float = LLMSpec.timeout_s
    price_in_per_mtok: float = LLMSpec.price_in_per_mtok
    price_out_per_mtok: float = LLMSpec.price_out_per_mtok
    model_dir: str = Field(default=LLMSpec.model_dir, description="hf backend: Hugging Face-format model directory")
    tokenizer_path: str = LLMSpec.tokenizer_path
    max_tokens: int = LLMSpec.max_tokens
    temperature: float = LLMSpec.temperature

    def spec(self) -> LLMSpec:
        return LLMSpec(**{k: getattr(self, k) for k in LLMSpec.__dataclass_fields__ if hasattr(self, k)})


def llm_spec(config: LLMConfig, corpus: CorpusResource) -> LLMSpec:
    """The spec, with the hf backend defaulting to the project tokenizer when the model dir has none."""
    spec = config.spec()
    if spec.backend == "hf" and not spec.tokenizer_path and spec.model_dir and not os.path.isfile(
            os.path.join(spec.model_dir, "tokenizer.json")):
        spec = dataclasses.replace(spec, tokenizer_path=os.path.join(corpus.path("tokenizer"), "tokenizer.json"))
    return spec


def llm_cache_dir(corpus: CorpusResource) -> str | None:
    return os.path.join(corpus.data_root, "_llm_cache") if "://" not in corpus.data_root else None


def code_inputs(corpus: CorpusResource) -> tuple[list[tuple[str, str]], list[str]]:
    """Every committed language partition of code_clean, and their hashes."""
    parts = shards.committed_partitions(corpus.data_root, CODE_UPSTREAM)
    if not parts:
        raise dg.Failure(description=f"no committed partition of {CODE_UPSTREAM!r} under {corpus.data_root}: "
                                     f"materialize {CODE_UPSTREAM} first")
    return [(p, corpus.path(CODE_UPSTREAM, p)) for p in parts], all_partition_hashes(corpus, CODE_UPSTREAM)


def runnable_languages() -> set[str]:
    try:
        return {k for k, v in ex.sandbox_languages().items() if v}
    except Exception as exc:  # noqa: BLE001 - sandbox missing/broken: say so, run nothing
        raise dg.Failure(description=f"the sandbox is not usable ({exc}); run `python -m sandbox languages` to see what the sandbox can run") from exc


def _executor(workers: int) -> ex.Executor:
    return ex.sandbox_executor(workers=workers)


def stage_metadata(st: StageStats, out: str) -> dict[str, Any]:
    assert st.manifest is not None
    md: dict[str, Any] = manifest_metadata(out, st.manifest)
    md["rows_in"] = st.rows_in
    md["rows_out"] = st.rows_out
    md["skip_reasons"] = counts_table(dict(st.skips))
    md["skipped"] = sum(st.skips.values())
    for name, counts in sorted(st.counts.items()):
        md[name] = counts_table(dict(counts), key=name.split(":")[0], value="rows")
    return md


def _reuse(path: str, config: Mapping[str, Any], hashes: list[str]) -> dg.MaterializeResult | None:
    m = shards.up_to_date(path, shards.stable_hash(dict(config)), hashes)
    return dg.MaterializeResult(metadata=manifest_metadata(path, m, reused=True)) if m else None


def _usage_md(backend: Any) -> dict[str, Any]:
    if backend is None:
        return {}
    u = backend.usage.as_dict()
    return {"llm_backend": backend.name, "llm_usage": md_table(["metric", "value"], sorted(u.items())),
            "llm_cost_usd": u["cost_usd"]}


# ============================================================================ snippets


class SnippetsConfig(dg.Config):
    max_per_language: int = Field(80, description="snippets kept per language (seeded sample)")
    python_cap: int = Field(250, description="snippets kept for Python (the language with generated tests)")
    min_lines: int = 3
    max_lines: int = 120
    min_doc_words: int = 3


@dg.asset(deps=[CODE_UPSTREAM], group_name=GROUP)
def instruct_snippets(context: dg.AssetExecutionContext, config: SnippetsConfig,
                      corpus: CorpusResource) -> dg.MaterializeResult:
    """Documented functions, methods and classes mined with tree-sitter from every language of code_clean."""
    inputs, hashes = code_inputs(corpus)
    cap, py_cap = (4, 24) if corpus.tiny else (config.max_per_language, config.python_cap)
    cfg = {**config.model_dump(), "tiny": corpus.tiny}
    out = corpus.path("instruct_snippets")
    if (r := _reuse(out, cfg, hashes)) is not None:
        return r
    st = mine_snippets(inputs, out, mining=MiningConfig(min_lines=config.min_lines, max_lines=config.max_lines,
                                                        min_doc_words=config.min_doc_words),
                       caps={"python": py_cap}, default_cap=cap, config=cfg, input_hashes=hashes)
    context.log.info(f"mined {st.rows_out} snippets from {st.rows_in} files")
    return dg.MaterializeResult(metadata=stage_metadata(st, out) | {"files_read": st.rows_in})


# ============================================================================ language id


class LangIdConfig(dg.Config):
    files_per_language: int = 300
    min_prob: float = Field(0.5, description="drop only predictions at least this confident")
    require_match: bool = Field(True, description="drop snippets predicted as another language")
    epoch: int = 25


@dg.asset(deps=["instruct_snippets", CODE_UPSTREAM], group_name=GROUP)
def instruct_langid(context: dg.AssetExecutionContext, config: LangIdConfig,
                    corpus: CorpusResource) -> dg.MaterializeResult:
    """Keeps mainstream-language snippets with real code, using a fastText model trained on code_clean."""
    inputs, code_hashes = code_inputs(corpus)
    hashes = upstream_hashes(corpus, ["instruct_snippets"], None) + code_hashes
    cfg = {**config.model_dump(), "tiny": corpus.tiny}
    out = corpus.path("instruct_langid")
    if (r := _reuse(out, cfg, hashes)) is not None:
        return r
    params = langid.LangIdParams(files_per_language=40 if corpus.tiny else config.files_per_language,
                                 epoch=config.epoch)
    try:
        st = langid_filter(corpus.path("instruct_snippets"), inputs, out, params=params, min_prob=config.min_prob,
                           require_match=config.require_match, config=cfg, input_hashes=hashes)
    except ValueError as exc:
        raise dg.Failure(description=f"language identification cannot train: {exc}") from exc
    md = stage_metadata(st, out)
    md["langid_accuracy"] = float(st.extra["langid_accuracy"])  # NaN when there was nothing to classify
    md["langid_held_out"] = md_table(["label", "test samples", "accuracy"],
                                     [(k, n, a) for k, (n, a) in st.extra["langid_per_label"].items()])
    md["langid_train_examples"] = st.extra["langid_n_train"]
    return dg.MaterializeResult(metadata=md)


# ============================================================================ candidates


class CandidatesConfig(dg.Config):
    llm: LLMConfig = Field(default_factory=LLMConfig)
    n_hypothesis: int = Field(6, description="offline: hypothesis inputs per typed function")
    seed: int = 0
    timeout_s: float = 10.0
    sandbox_workers: int = 2
    limit: int = Field(0, description="at most this many snippets (0 = all)")
    decontaminate: bool = Field(True, description="drop candidates sharing a 10-gram with a benchmark")
    decontam_benchmarks: list[str] = Field(default=["humaneval", "mbpp", "gsm8k", "math"])


@dg.asset(deps=["instruct_langid"], group_name=GROUP, pool="sandbox")
def instruct_candidates(context: dg.AssetExecutionContext, config: CandidatesConfig,
                        corpus: CorpusResource) -> dg.MaterializeResult:
    """Instruction + answer + unit tests per snippet (LLM, or offline: docs + tests from running the reference)."""
    spec = llm_spec(config.llm, corpus)
    hashes = upstream_hashes(corpus, ["instruct_langid"], None)
    cfg = {"llm": spec.identity(), "n_hypothesis": config.n_hypothesis, "seed": config.seed,
           "limit": config.limit, "tiny": corpus.tiny, "decontaminate": config.decontaminate,
           "benchmarks": list(config.decontam_benchmarks)}
    out = corpus.path("instruct_candidates")
    if (r := _reuse(out, cfg, hashes)) is not None:
        return r
    backend = make_backend(spec, llm_cache_dir(corpus))
    if backend is None:
        runnable_languages()
        gen = OfflineGenerator(_executor(config.sandbox_workers), n_hypothesis=config.n_hypothesis,
                               seed=config.seed, timeout_s=config.timeout_s)
    else:
        gen = ChatGenerator(backend, max_tokens=spec.max_tokens, temperature=spec.temperature, seed=config.seed)
    limit = config.limit or (40 if corpus.tiny else None)
    decon = Decontaminator.from_config(benchmarks=tuple(config.decontam_benchmarks)) if config.decontaminate else None
    st = make_candidates(corpus.path("instruct_langid"), out, gen, limit=limit, config=cfg, input_hashes=hashes,
                         decontaminator=decon)
    md = stage_metadata(st, out) | {"generator": gen.name} | _usage_md(backend)
    if backend is None:
        md["note"] = dg.MetadataValue.md(
            "Offline generator: instruction from signature + docstring, answer = the original code, tests = "
            "assertions recorded by running the reference in the sandbox on doctest / hypothesis / probe inputs.")
    return dg.MaterializeResult(metadata=md)


# ============================================================================ scoring


class ScoringConfig(dg.Config):
    llm: LLMConfig = Field(default_factory=LLMConfig)
    weights: dict[str, float] = Field(default=dict(DEFAULT_WEIGHTS))


def _scorer(spec: LLMSpec, corpus: CorpusResource) -> Any:
    backend = make_backend(spec, llm_cache_dir(corpus))
    return (RuleProxyScorer() if backend is None else LLMJudge(backend)), backend


@dg.asset(deps=["instruct_candidates"], group_name=GROUP)
def instruct_scored(context: dg.AssetExecutionContext, config: ScoringConfig,
                    corpus: CorpusResource) -> dg.MaterializeResult:
    """Checklist scores (8 criteria, weighted): LLM judge, or rule-based proxies offline."""
    spec = llm_spec(config.llm, corpus)
    hashes = upstream_hashes(corpus, ["instruct_candidates"], None)
    cfg = {"llm": spec.identity(), "weights": dict(config.weights)}
    out = corpus.path("instruct_scored")
    if (r := _reuse(out, cfg, hashes)) is not None:
        return r
    scorer, backend = _scorer(spec, corpus)
    st = score_candidates(corpus.path("instruct_candidates"), out, scorer, config.weights, config=cfg,
                          input_hashes=hashes)
    md = stage_metadata(st, out) | {"scorer": scorer.name} | _usage_md(backend)
    md["weights"] = md_table(["criterion", "weight"], sorted(config.weights.items()))
    return dg.MaterializeResult(metadata=md)


# ============================================================================ verification


class VerifyConfig(dg.Config):
    timeout_s: float = 10.0
    sandbox_workers: int = 2


@dg.asset(deps=["instruct_scored"], group_name=GROUP, pool="sandbox")
def instruct_verified(context: dg.AssetExecutionContext, config: VerifyConfig,
                      corpus: CorpusResource) -> dg.MaterializeResult:
    """Parse check, then each candidate's unit tests run in the sandbox; the status is kept per sample."""
    hashes = upstream_hashes(corpus, ["instruct_scored"], None)
    runnable = runnable_languages()
    cfg = {"timeout_s": config.timeout_s, "runnable": sorted(runnable)}
    out = corpus.path("instruct_verified")
    if (r := _reuse(out, cfg, hashes)) is not None:
        return r
    st = verify_candidates(corpus.path("instruct_scored"), out, _executor(config.sandbox_workers), runnable,
                           timeout_s=config.timeout_s, config=cfg, input_hashes=hashes)
    md = stage_metadata(st, out)
    ran = sum(v for k, v in st.counts.get("status", {}).items() if k not in {"no_tests", "not_run", "syntax_error"})
    passed = st.counts.get("status", {}).get("passed", 0)
    md["pass_rate"] = round(passed / ran, 4) if ran else 0.0
    md["verified"] = passed
    md["sandbox_languages"] = ", ".join(sorted(runnable))
    return dg.MaterializeResult(metadata=md)


# ============================================================================ sets


class SFTConfig(dg.Config):
    coarse_min_score: float = Field(0.35, description="sft_coarse: broad, lower threshold")
    fine_min_score: float = Field(0.5, description="sft_fine: high score and verified")
    fim_min_score: float = 0.4


def _sft_asset(name: str, corpus: CorpusResource, cfg: dict[str, Any], keep) -> dg.MaterializeResult:  # noqa: ANN001
    hashes = upstream_hashes(corpus, ["instruct_verified"], None)
    out = corpus.path(name)
    if (r := _reuse(out, cfg, hashes)) is not None:
        return r
    st = build_sft(corpus.path("instruct_verified"), out, keep, name, config=cfg, input_hashes=hashes)
    return dg.MaterializeResult(metadata=stage_metadata(st, out))


@dg.asset(deps=["instruct_verified"], group_name=GROUP)
def sft_coarse(config: SFTConfig, corpus: CorpusResource) -> dg.MaterializeResult:
    """Broad SFT set (ChatML messages): score above a low bar, parses, did not fail its tests."""
    t = config.coarse_min_score
    return _sft_asset("sft_coarse", corpus, {"min_score": t}, coarse_filter(t))


@dg.asset(deps=["instruct_verified"], group_name=GROUP)
def sft_fine(config: SFTConfig, corpus: CorpusResource) -> dg.MaterializeResult:
    """High-quality SFT set: high checklist score AND unit tests passed in the sandbox."""
    t = config.fine_min_score
    return _sft_asset("sft_fine", corpus, {"min_score": t}, fine_filter(t))


@dg.asset(deps=["instruct_verified"], group_name=GROUP)
def sft_fim(config: SFTConfig, corpus: CorpusResource) -> dg.MaterializeResult:
    """FIM-format instruction samples: tree-sitter masks one block of a verified answer."""
    hashes = upstream_hashes(corpus, ["instruct_verified"], None)
    cfg = {"min_score": config.fim_min_score}
    out = corpus.path("sft_fim")
    if (r := _reuse(out, cfg, hashes)) is not None:
        return r
    st = build_fim(corpus.path("instruct_verified"), out, min_score=config.fim_min_score, config=cfg,
                   input_hashes=hashes)
    return dg.MaterializeResult(metadata=stage_metadata(st, out))


class DPOConfig(dg.Config):
    llm: LLMConfig = Field(default_factory=LLMConfig)
    weights: dict[str, float] = Field(default=dict(DEFAULT_WEIGHTS))
    min_score: float = 0.4
    n_mutants: int = Field(6, description="mutants tried per answer until one fails the tests")
    judge_margin: float = Field(0.03, description="judge pairs need chosen - rejected >= this")
    sample_temperature: float = Field(0.8, description="LLM backends: temperature of the second, sampled answer "
                                                       "whose test failures make rejected answers (0 = mutants only)")
    seed: int = 0
    timeout_s: float = 10.0
    sandbox_workers: int = 2


@dg.asset(deps=["instruct_verified"], group_name=GROUP, pool="sandbox")
def dpo_pairs(context: dg.AssetExecutionContext, config: DPOConfig, corpus: CorpusResource) -> dg.MaterializeResult:
    """Preference pairs: passing answer vs a mutant the sandbox shows failing, plus judge preferences."""
    spec = llm_spec(config.llm, corpus)
    hashes = upstream_hashes(corpus, ["instruct_verified"], None)
    runnable = runnable_languages()
    cfg = {"llm": spec.identity(), "weights": dict(config.weights), "min_score": config.min_score,
           "n_mutants": config.n_mutants, "judge_margin": config.judge_margin, "runnable": sorted(runnable),
           "sample_temperature": config.sample_temperature, "seed": config.seed}
    out = corpus.path("dpo_pairs")
    if (r := _reuse(out, cfg, hashes)) is not None:
        return r
    scorer, backend = _scorer(spec, corpus)
    sampler = None
    if backend is not None and config.sample_temperature > 0:
        gen = ChatGenerator(backend, max_tokens=spec.max_tokens, seed=config.seed)

        def sampler(rows: list[dict[str, Any]]) -> list[tuple[str, str] | None]:
            return gen.alternatives(rows, temperature=config.sample_temperature, seed=config.seed + 1)
    st = build_dpo(corpus.path("instruct_verified"), out, _executor(config.sandbox_workers), runnable, scorer,
                   config.weights, min_score=config.min_score, n_mutants=config.n_mutants,
                   judge_margin=config.judge_margin, timeout_s=config.timeout_s, config=cfg, input_hashes=hashes,
                   sampler=sampler)
    return dg.MaterializeResult(metadata=stage_metadata(st, out) | {"judge": scorer.name} | _usage_md(backend))


# ============================================================================ checks


class PassRateCheckConfig(dg.Config):
    min_pass_rate: float = 0.5


@dg.asset_check(asset=instruct_verified,
                description="most generated tests pass in the sandbox (a low rate means flaky tests or a broken sandbox)")
def instruct_verified_pass_rate(config: PassRateCheckConfig, corpus: CorpusResource) -> dg.AssetCheckResult:
    ran = passed = 0
    for b in shards.iter_batches(corpus.path("instruct_verified"), columns=["status"]):
        for st in b.column("status").to_pylist():
            if st not in {"no_tests", "not_run", "syntax_error"}:
                ran += 1
                passed += st == "passed"
    rate = passed / ran if ran else 1.0
    return dg.AssetCheckResult(passed=rate >= config.min_pass_rate, severity=dg.AssetCheckSeverity.WARN,
                               metadata={"ran": ran, "passed": passed, "pass_rate": round(rate, 4)})


@dg.asset_check(asset=sft_fine, description="every fine SFT sample passed its tests and keeps its snippet id")
def sft_fine_verified_with_lineage(corpus: CorpusResource) -> dg.AssetCheckResult:
    bad = total = 0
    for b in shards.iter_batches(corpus.path("sft_fine"), columns=["verified", "status", "source_id"]):
        for r in b.to_pylist():
            total += 1
            bad += (not r["verified"]) or r["status"] != "passed" or not r["source_id"]
    return dg.AssetCheckResult(passed=bad == 0, metadata={"rows": total, "violations": bad})


@dg.asset_check(asset=instruct_langid, description="the language identifier beats chance on held-out files")
def instruct_langid_beats_chance(corpus: CorpusResource) -> dg.AssetCheckResult:
    m = shards.read_manifest(corpus.path("instruct_langid"))
    per = (m.extra.get("langid_per_label") or {}) if m else {}
    if m is not None and m.rows == 0 and not per:
        return dg.AssetCheckResult(passed=True, metadata={"note": "no snippets: nothing was classified"})
    acc = float((m.extra.get("langid_accuracy") if m else None) or 0.0)
    chance = 1.0 / max(1, len(per))
    return dg.AssetCheckResult(passed=acc > chance, severity=dg.AssetCheckSeverity.WARN,
                               metadata={"accuracy": acc, "chance": round(chance, 4), "labels": len(per)})


@dg.asset_check(asset=dpo_pairs, description="chosen and rejected differ and the prompt ends with the user turn")
def dpo_pairs_well_formed(corpus: CorpusResource) -> dg.AssetCheckResult:
    bad = total = 0
    for b in shards.iter_batches(corpus.path("dpo_pairs"), columns=["prompt", "chosen", "rejected"]):
        for r in b.to_pylist():
            total += 1
            bad += r["chosen"] == r["rejected"] or not r["prompt"] or r["prompt"][-1]["role"] != "user"
    return dg.AssetCheckResult(passed=bad == 0, metadata={"rows": total, "violations": bad})


# NB: no module-level name may shadow a Dagster type (e.g. `Executor`): Dagster compiles its
# record constructors against the calling frame's globals.
defs = dg.Definitions(
    assets=[instruct_snippets, instruct_langid, instruct_candidates, instruct_scored, instruct_verified, sft_coarse,
            sft_fine, sft_fim, dpo_pairs],
    asset_checks=[instruct_langid_beats_chance, instruct_verified_pass_rate, sft_fine_verified_with_lineage,
                  dpo_pairs_well_formed],
)

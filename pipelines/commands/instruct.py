"""``codecorpus instruct``: the instruction-synthesis graph as a library run, no Dagster.

Reads code rows (CODE_SCHEMA Parquet: a code_clean shard set or any folder of Parquet files)
and writes every stage's shard set under OUT: instruct_snippets ... sft_coarse, sft_fine,
sft_fim, dpo_pairs. Unchanged stages are reused, like the assets.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

NAME = "instruct"
HELP = "mine snippets and build verified SFT / DPO sets from code Parquet (offline or with an LLM)"
DESCRIPTION = (
    "Run the instruction-synthesis stages on code Parquet files: tree-sitter snippet mining, fastText "
    "language id trained on the input, instruction/answer/test generation (offline program analysis, an "
    "OpenAI-compatible endpoint, or a local Hugging Face model), checklist scoring, sandbox verification, "
    "then SFT (coarse, fine, FIM) and DPO sets in ChatML. Example:\n"
    "  codecorpus instruct data/code_clean/python out/ --limit 100\n"
    "  codecorpus instruct data/code_clean out/ --backend openai --base-url http://localhost:8000/v1 "
    "--model Qwen/Qwen2.5-Coder-7B-Instruct"
)
STAGES = ("instruct_snippets", "instruct_langid", "instruct_candidates", "instruct_scored", "instruct_verified",
          "sft_coarse", "sft_fine", "sft_fim", "dpo_pairs")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("input", help="code Parquet: a file, a folder of files, or a committed shard set (any depth)")
    p.add_argument("output", help="folder for the output shard sets (one sub-folder per stage)")
    p.add_argument("--backend", choices=["offline", "openai", "hf"], default="offline",
                   help="who writes instructions and judges them (default: offline, no model)")
    p.add_argument("--base-url", default="http://localhost:8000/v1", help="openai: endpoint base URL")
    p.add_argument("--model", default="Qwen/Qwen2.5-Coder-7B-Instruct", help="openai: model name")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="openai: env var holding the API key")
    p.add_argument("--concurrency", type=int, default=4, help="openai: concurrent requests")
    p.add_argument("--model-dir", default="", help="hf: Hugging Face-format model directory")
    p.add_argument("--tokenizer", default="", help="hf: tokenizer.json if not inside --model-dir")
    p.add_argument("--per-language", type=int, default=80, help="snippets kept per language (default 80)")
    p.add_argument("--python-cap", type=int, default=250, help="snippets kept for Python (default 250)")
    p.add_argument("--limit", type=int, default=0, help="at most this many candidates (0 = all)")
    p.add_argument("--workers", type=int, default=2, help="sandbox workers (default 2)")
    p.add_argument("--fine-min-score", type=float, default=0.5, help="sft_fine score threshold")
    p.add_argument("--coarse-min-score", type=float, default=0.35, help="sft_coarse score threshold")
    p.add_argument("--no-decontam", action="store_true",
                   help="keep candidates that share a 10-gram with HumanEval/MBPP/GSM8K/MATH (default: drop them)")
    p.add_argument("--until", choices=STAGES, help="stop after this stage")
    p.add_argument("--json", action="store_true", help="print the per-stage stats as JSON")


def main(args: argparse.Namespace) -> int:
    from corpus import shards
    from corpus.instruct import execution, langid, pipeline
    from corpus.instruct.candidates import ChatGenerator, OfflineGenerator
    from corpus.instruct.scoring import DEFAULT_WEIGHTS, LLMJudge, RuleProxyScorer
    from corpus.instruct.snippets import MiningConfig
    from corpus.llm import LLMError, LLMSpec, make_backend

    try:
        files = shards.list_parquet_inputs(args.input)
    except shards.ShardSetError as exc:
        print(f"codecorpus instruct: {exc}", file=sys.stderr)
        return 2
    spec = LLMSpec(backend=args.backend, base_url=args.base_url, model=args.model, api_key_env=args.api_key_env,
                   max_concurrency=args.concurrency, model_dir=args.model_dir, tokenizer_path=args.tokenizer)
    os.makedirs(args.output, exist_ok=True)
    try:
        backend = make_backend(spec, cache_dir=os.path.join(args.output, "_llm_cache"))
    except (LLMError, ValueError) as exc:
        print(f"codecorpus instruct: cannot start the {args.backend} backend: {exc}", file=sys.stderr)
        return 2
    runnable = {k for k, v in execution.sandbox_languages().items() if v}
    executor = execution.sandbox_executor(workers=args.workers)
    scorer = RuleProxyScorer() if backend is None else LLMJudge(backend)
    weights = dict(DEFAULT_WEIGHTS)
    inputs = [("", f) for f in files]
    in_hashes = [shards.stable_hash([f, os.path.getsize(f), os.path.getmtime(f)]) for f in files]
    path = {s: shards.shard_set_path(args.output, s) for s in STAGES}
    report: dict[str, dict] = {}

    def stage(name: str, cfg: dict, upstream: list[str], fn) -> bool:  # noqa: ANN001
        hashes = in_hashes + [shards.read_manifest(path[u]).content_hash for u in upstream]
        t0 = time.time()
        if shards.up_to_date(path[name], shards.stable_hash(cfg), hashes):
            report[name] = {"reused": True, "rows": shards.count_rows(path[name])}
        else:
            st = fn(cfg, hashes)
            report[name] = {"rows_in": st.rows_in, "rows": st.rows_out, "skips": dict(st.skips),
                            **{k: dict(v) for k, v in st.counts.items()}, **st.extra}
        report[name]["seconds"] = round(time.time() - t0, 2)
        print(f"{name}: {report[name]['rows']} rows ({report[name]['seconds']}s)", flush=True)
        return name != args.until

    gen_cfg = {"llm": spec.identity(), "limit": args.limit, "decontaminate": not args.no_decontam}
    decon = None
    if not args.no_decontam:
        from corpus.decontam import Decontaminator

        decon = Decontaminator.from_config()
    steps = [
        ("instruct_snippets", {"per_language": args.per_language, "python_cap": args.python_cap}, [],
         lambda c, h: pipeline.mine_snippets(inputs, path["instruct_snippets"], mining=MiningConfig(),
                                             caps={"python": args.python_cap}, default_cap=args.per_language,
                                             config=c, input_hashes=h)),
        ("instruct_langid", {"min_prob": 0.5}, ["instruct_snippets"],
         lambda c, h: pipeline.langid_filter(path["instruct_snippets"], inputs, path["instruct_langid"],
                                             params=langid.LangIdParams(), min_prob=0.5, require_match=True,
                                             config=c, input_hashes=h)),
        ("instruct_candidates", gen_cfg, ["instruct_langid"],
         lambda c, h: pipeline.make_candidates(
             path["instruct_langid"], path["instruct_candidates"],
             OfflineGenerator(executor) if backend is None else ChatGenerator(backend),
             limit=args.limit or None, config=c, input_hashes=h, decontaminator=decon)),
        ("instruct_scored", {"llm": spec.identity(), "weights": weights}, ["instruct_candidates"],
         lambda c, h: pipeline.score_candidates(path["instruct_candidates"], path["instruct_scored"], scorer,
                                                weights, config=c, input_hashes=h)),
        ("instruct_verified", {"runnable": sorted(runnable)}, ["instruct_scored"],
         lambda c, h: pipeline.verify_candidates(path["instruct_scored"], path["instruct_verified"], executor,
                                                 runnable, timeout_s=10.0, config=c, input_hashes=h)),
        ("sft_coarse", {"min_score": args.coarse_min_score}, ["instruct_verified"],
         lambda c, h: pipeline.build_sft(path["instruct_verified"], path["sft_coarse"], pipeline.coarse_filter(args.coarse_min_score),
                                         "sft_coarse", config=c, input_hashes=h)),
        ("sft_fine", {"min_score": args.fine_min_score}, ["instruct_verified"],
         lambda c, h: pipeline.build_sft(path["instruct_verified"], path["sft_fine"], pipeline.fine_filter(args.fine_min_score),
                                         "sft_fine", config=c, input_hashes=h)),
        ("sft_fim", {"min_score": 0.4}, ["instruct_verified"],
         lambda c, h: pipeline.build_fim(path["instruct_verified"], path["sft_fim"], min_score=0.4, config=c,
                                         input_hashes=h)),
        ("dpo_pairs", {"llm": spec.identity(), "weights": weights, "runnable": sorted(runnable)}, ["instruct_verified"],
         lambda c, h: pipeline.build_dpo(path["instruct_verified"], path["dpo_pairs"], executor, runnable, scorer,
                                         weights, min_score=0.4, n_mutants=6, judge_margin=0.03, timeout_s=10.0,
                                         config=c, input_hashes=h,
                                         sampler=None if backend is None else ChatGenerator(backend).alternatives)),
    ]
    try:
        for name, cfg, upstream, fn in steps:
            if not stage(name, cfg, upstream, fn):
                break
    except (shards.ShardSetError, ValueError) as exc:
        print(f"codecorpus instruct: {exc}", file=sys.stderr)
        return 1
    if backend is not None:
        report["llm_usage"] = backend.usage.as_dict()
        print(f"llm usage: {json.dumps(report['llm_usage'])}")
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True, default=str))
    return 0


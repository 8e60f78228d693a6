"""``codecorpus synth``: executor-validated synthetic code from code Parquet, no Dagster."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections import Counter

NAME = "synth"
HELP = "generate programs + tests, keep those passing in the sandbox, decontaminate (offline or LLM)"
DESCRIPTION = (
    "Write executor-validated synthetic code rows (CODE_SCHEMA + seed_id, generator, tests, test_origin, "
    "sandbox_status) to OUTPUT as a shard set. Offline (default): self-contained Python functions from INPUT "
    "re-packaged with tests recorded by running them in the sandbox. With --backend openai|hf: an LLM writes "
    "new programs + tests for seed topics and corpus snippets. Only passing, benchmark-clean programs are kept.\n"
    "  codecorpus synth data/code_clean/python out/synthetic --max-programs 100\n"
    "  codecorpus synth data/code_clean out/synthetic --backend openai --base-url http://localhost:8000/v1 "
    "--topics-file topics.txt --languages python cpp"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("input", help="code Parquet: a file, a folder, or a committed shard set")
    p.add_argument("output", help="output shard-set folder")
    p.add_argument("--backend", choices=["offline", "openai", "hf"], default="offline")
    p.add_argument("--base-url", default="http://localhost:8000/v1", help="openai: endpoint base URL")
    p.add_argument("--model", default="Qwen/Qwen2.5-Coder-7B-Instruct", help="openai: model name")
    p.add_argument("--model-dir", default="", help="hf: Hugging Face-format model directory")
    p.add_argument("--topics-file", help="LLM path: one seed topic per line (default: a built-in list)")
    p.add_argument("--languages", nargs="*", default=["python"], help="LLM path: languages to write programs in")
    p.add_argument("--max-programs", type=int, default=200, help="seeds to try (default 200)")
    p.add_argument("--workers", type=int, default=2, help="sandbox workers")
    p.add_argument("--no-decontam", action="store_true", help="skip benchmark decontamination")


def main(args: argparse.Namespace) -> int:
    from corpus import shards
    from corpus.instruct import execution
    from corpus.instruct.snippets import mine_file
    from corpus.llm import LLMError, LLMSpec, make_backend
    from corpus.synthetic import ChatProgramSource, OfflineProgramSource, build_synthetic
    from corpus.synthetic.generate import DEFAULT_TOPICS, topic_seeds

    try:
        files = shards.list_parquet_inputs(args.input)
    except shards.ShardSetError as exc:
        print(f"codecorpus synth: {exc}", file=sys.stderr)
        return 2

    def rows():
        for f in files:
            for b in shards.iter_parquet_file(f, columns=["id", "language", "content", "license"]):
                yield from b.to_pylist()

    spec = LLMSpec(backend=args.backend, base_url=args.base_url, model=args.model, model_dir=args.model_dir)
    try:
        backend = make_backend(spec, cache_dir=os.path.join(os.path.dirname(os.path.abspath(args.output)), "_llm_cache"))
    except (LLMError, ValueError) as exc:
        print(f"codecorpus synth: cannot start the {args.backend} backend: {exc}", file=sys.stderr)
        return 2
    runnable = {k for k, v in execution.sandbox_languages().items() if v}
    executor = execution.sandbox_executor(workers=args.workers)
    seed_skips: Counter = Counter()
    if backend is None:
        source = OfflineProgramSource(executor)
        seeds = source.seeds(rows(), seed_skips)
    else:
        topics = DEFAULT_TOPICS
        if args.topics_file:
            with open(args.topics_file, encoding="utf-8") as fh:
                topics = [t.strip() for t in fh if t.strip()]
        langs = [lang for lang in args.languages if lang in runnable]
        source = ChatProgramSource(backend)
        seeds = itertools.chain(topic_seeds(topics, langs), (
            s.row() for r in rows() if r.get("language") in langs and isinstance(r.get("content"), str)
            for s in mine_file(r["content"], r["language"], source_id=r["id"]) if s.kind != "class"))
    decon = None
    if not args.no_decontam:
        from corpus.decontam import Decontaminator

        decon = Decontaminator.from_config()
    cfg = {"llm": spec.identity(), "limit": args.max_programs, "languages": args.languages,
           "decontam": not args.no_decontam}
    st = build_synthetic(seeds, source, executor, args.output, decontaminator=decon, runnable=runnable,
                         inputs=[args.input],
                         limit=args.max_programs, timeout_s=10.0, config=cfg,
                         input_hashes=[shards.stable_hash([f, os.path.getsize(f)]) for f in files])
    st.skips.update(seed_skips)
    print(json.dumps({"seeds": st.seeds, "generated": st.generated, "kept": st.kept, "pass_rate": st.pass_rate,
                      "status": dict(st.status), "languages": dict(st.languages),
                      "decontam_hits": dict(st.decontam_hits), "skips": dict(st.skips)}, indent=2, sort_keys=True))
    return 0

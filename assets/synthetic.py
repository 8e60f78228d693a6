"""``synthetic_code``: executor-validated, decontaminated synthetic programs (group ``instruct``).

Offline (default) the programs are corpus functions re-packaged with generated tests; with an
LLM backend they are new programs written for seed topics and corpus snippets. Either way a
row is kept only if its tests pass in the sandbox and it shares no benchmark 10-gram.
"""

import itertools
from collections import Counter
from collections.abc import Iterator
from typing import Any

import dagster as dg
from pydantic import Field

from assets.common import counts_table, manifest_metadata, md_table
from assets.instruct import LLMConfig, code_inputs, llm_cache_dir, llm_spec, runnable_languages
from assets.resources import CorpusResource
from corpus import shards
from corpus.decontam import Decontaminator
from corpus.instruct import execution as ex
from corpus.instruct.snippets import mine_file
from corpus.llm import make_backend
from corpus.synthetic import ChatProgramSource, OfflineProgramSource, build_synthetic
from corpus.synthetic.generate import DEFAULT_TOPICS, topic_seeds


class SyntheticConfig(dg.Config):
    llm: LLMConfig = Field(default_factory=LLMConfig)
    max_programs: int = Field(200, description="seeds to try (tiny profile: 20)")
    topics: list[str] = Field(default=list(DEFAULT_TOPICS))
    languages: list[str] = Field(default=["python", "javascript", "java", "cpp"],
                                 description="LLM path: languages to write programs in")
    n_hypothesis: int = 6
    seed: int = 0
    timeout_s: float = 10.0
    sandbox_workers: int = 2
    decontam_ngram: int = 10
    decontam_benchmarks: list[str] = Field(default=["humaneval", "mbpp", "gsm8k", "math"])


def _rows(paths: list[tuple[str, str]], only: str | None = None) -> Iterator[dict[str, Any]]:
    for lang, path in paths:
        if only and lang != only:
            continue
        for b in shards.iter_batches(path, columns=["id", "language", "content", "license"], batch_size=256):
            yield from b.to_pylist()


def _snippet_seeds(paths: list[tuple[str, str]], languages: set[str]) -> Iterator[dict[str, Any]]:
    for r in _rows(paths):
        lang = r.get("language")
        if lang in languages and isinstance(r.get("content"), str):
            yield from (s.row() for s in mine_file(r["content"], lang, source_id=r["id"]) if s.kind != "class")


@dg.asset(deps=["code_clean"], group_name="instruct", pool="sandbox")
def synthetic_code(context: dg.AssetExecutionContext, config: SyntheticConfig,
                   corpus: CorpusResource) -> dg.MaterializeResult:
    """Programs + tests executed in the sandbox; only passing, decontaminated programs are kept."""
    inputs, hashes = code_inputs(corpus)
    spec = llm_spec(config.llm, corpus)
    limit = 20 if corpus.tiny else config.max_programs
    cfg = {"llm": spec.identity(), "limit": limit, "topics": list(config.topics), "languages": list(config.languages),
           "n_hypothesis": config.n_hypothesis, "seed": config.seed, "ngram": config.decontam_ngram,
           "benchmarks": list(config.decontam_benchmarks)}
    out = corpus.path("synthetic_code")
    existing = shards.up_to_date(out, shards.stable_hash(cfg), hashes)
    if existing:
        return dg.MaterializeResult(metadata=manifest_metadata(out, existing, reused=True))
    runnable = runnable_languages()
    executor = ex.sandbox_executor(workers=config.sandbox_workers)
    backend = make_backend(spec, llm_cache_dir(corpus))
    skips_seed: Counter = Counter()
    if backend is None:
        source: Any = OfflineProgramSource(executor, n_hypothesis=config.n_hypothesis, seed=config.seed,
                                           timeout_s=config.timeout_s)
        seeds: Any = source.seeds(_rows(inputs, only="python"), skips_seed)
    else:
        source = ChatProgramSource(backend, max_tokens=spec.max_tokens, temperature=spec.temperature, seed=config.seed)
        langs = [lang for lang in config.languages if lang in runnable]
        seeds = itertools.chain(topic_seeds(config.topics, langs), _snippet_seeds(inputs, set(langs)))
    decon = Decontaminator.from_config(ngram=config.decontam_ngram, benchmarks=tuple(config.decontam_benchmarks))
    st = build_synthetic(seeds, source, executor, out, decontaminator=decon, runnable=runnable, limit=limit,
                         timeout_s=config.timeout_s, config=cfg, input_hashes=hashes)
    st.skips.update(skips_seed)
    assert st.manifest is not None
    md: dict[str, Any] = manifest_metadata(out, st.manifest)
    md |= {
        "generator": source.name,
        "seeds_tried": st.seeds,
        "programs_generated": st.generated,
        "programs_kept": st.kept,
        "pass_rate": st.pass_rate,
        "failure statuses": counts_table(dict(st.status), key="status"),
        "language mix": counts_table(dict(st.languages), key="language", value="programs"),
        "decontamination hits": counts_table(dict(st.decontam_hits), key="benchmark"),
        "skip_reasons": counts_table(dict(st.skips)),
    }
    if backend is not None:
        u = backend.usage.as_dict()
        md["llm_usage"] = md_table(["metric", "value"], sorted(u.items()))
    else:
        md["note"] = dg.MetadataValue.md(
            "Offline path: programs are self-contained corpus functions re-packaged with tests recorded by "
            "running them in the sandbox (doctest / hypothesis / probe inputs). Not novel code.")
    context.log.info(f"synthetic_code: kept {st.kept}/{st.generated} programs (pass rate {st.pass_rate})")
    return dg.MaterializeResult(metadata=md)


@dg.asset_check(asset=synthetic_code, description="every kept program passed in the sandbox and is decontaminated")
def synthetic_code_all_passed(corpus: CorpusResource) -> dg.AssetCheckResult:
    bad = total = 0
    for b in shards.iter_batches(corpus.path("synthetic_code"), columns=["sandbox_status", "content"]):
        for r in b.to_pylist():
            total += 1
            bad += r["sandbox_status"] != "passed" or not r["content"]
    return dg.AssetCheckResult(passed=bad == 0, metadata={"rows": total, "violations": bad})


defs = dg.Definitions(assets=[synthetic_code], asset_checks=[synthetic_code_all_passed])

"""Text-code grounding data (group ``text``): web pages -> staged fastText filtering.

Graph (N = ``CODECORPUS_TEXTCODE_STAGES``, default 4; [b] = per text batch)::

    web_text[b] ─► text_code_stage_1[b] ─► text_code_stage_2[b] ─► ... ─► text_code[b]   (= stage N)
                        ▲          │             ▲          │                 ▲
    textcode_classifier ┘          └─► textcode_classifier_stage_2 ... ─► textcode_classifier_stage_N
    math_text, general_text   (unpartitioned, configured sources)

Each filter stage and each retrained classifier is its own asset, so re-materializing one
stage (new threshold) re-runs only the stages and classifiers downstream of it, and the
up-to-date check makes everything else a no-op. Batches are dynamic partitions
(``text_batches``): one input WARC / WET / JSONL / Parquet file each, registered by
``prepare_run`` (``codecorpus run``) or by the ``text_batch_sensor``.
"""

# No ``from __future__ import annotations`` here: Dagster resolves Config annotations at runtime.

import os
from typing import Any

import dagster as dg
from pydantic import Field

from assets.common import counts_table, manifest_metadata, md_table, upstream_hashes
from assets.partitions import text_batch_partitions
from assets.resources import CorpusResource
from corpus import shards
from corpus.textcode import classifier as clf_mod
from corpus.textcode import pipeline
from corpus.textcode.ingest import ReadOptions, discover_batches, expand_spec, iter_file, split_shard
from corpus.textcode.seeds import build_local_batches
from corpus.textcode.skips import SkipCounter
from corpus.textcode.staged import RecallConfig, score_column
from corpus.textcode.webtext import IngestConfig

GROUP = "text"
SOURCES_ENV = "CODECORPUS_TEXTCODE_SOURCES"
STAGES_ENV = "CODECORPUS_TEXTCODE_STAGES"
LOCAL_SOURCES_DIR = "_sources"


def configured_stage_count() -> int:
    raw = os.environ.get(STAGES_ENV, "4").strip() or "4"
    try:
        n = int(raw)
    except ValueError as exc:
        raise ValueError(f"{STAGES_ENV}={raw!r}: must be an integer between 1 and 8") from exc
    if not 1 <= n <= 8:
        raise ValueError(f"{STAGES_ENV}={n}: must be between 1 and 8")
    return n


N_STAGES = configured_stage_count()


def stage_asset_name(stage: int, n_stages: int = N_STAGES) -> str:
    return "text_code" if stage == n_stages else f"text_code_stage_{stage}"


def classifier_asset_name(stage: int) -> str:
    return "textcode_classifier" if stage == 1 else f"textcode_classifier_stage_{stage}"


def default_threshold(stage: int) -> float:
    """Stricter each stage: 0.5, 0.6, 0.7, 0.8, ... (capped at 0.9)."""
    return round(min(0.9, 0.5 + 0.1 * (stage - 1)), 2)


# --------------------------------------------------------------------------- batches


def configured_sources() -> list[str]:
    raw = os.environ.get(SOURCES_ENV, "")
    return [s.strip() for s in raw.split(",") if s.strip()]


def local_batch_dir(corpus: CorpusResource) -> str:
    if "://" in corpus.data_root:
        raise dg.Failure(
            description=f"no web-text sources configured and the data root {corpus.data_root} is not local: "
            f"set {SOURCES_ENV} to WARC/WET/JSONL/Parquet files or folders"
        )
    return os.path.join(corpus.data_root, LOCAL_SOURCES_DIR, f"textcode-{corpus.profile}")


def batch_files(corpus: CorpusResource) -> dict[str, str]:
    """Batch key -> input file: the configured sources, or (none configured) real local
    pages wrapped into WARC/WET files under ``<data_root>/_sources/`` (built once)."""
    sources = configured_sources()
    if sources:
        return discover_batches(sources)
    n, pages = (2, 24) if corpus.tiny else (3, 200)
    build_local_batches(local_batch_dir(corpus), n_batches=n, pages_per_batch=pages)
    return discover_batches([local_batch_dir(corpus)])


def prepare_run(instance: dg.DagsterInstance, corpus: CorpusResource) -> list[str]:
    """Register every discovered batch as a ``text_batches`` partition; returns new keys."""
    keys = list(batch_files(corpus))
    have = set(instance.get_dynamic_partitions(text_batch_partitions.name))
    new = [k for k in keys if k not in have]
    if new:
        instance.add_dynamic_partitions(text_batch_partitions.name, new)
    return new


def _file_identity(path: str) -> dict[str, Any]:
    st = os.stat(path)
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _skip_metadata(skips: dict[str, int]) -> dict[str, Any]:
    return {"skipped": sum(skips.values()), "skip_reasons": counts_table(skips)}


# --------------------------------------------------------------------------- web_text


class WebTextConfig(dg.Config):
    min_chars: int = Field(200, description="drop documents with less main text than this")
    max_chars: int = Field(500_000, description="drop documents with more main text than this")
    languages: list[str] = Field(["en"], description="keep these natural languages ([] = all)")
    min_lang_score: float = Field(0.15, description="minimum language-id confidence")
    lid_model_path: str = Field("", description="fastText lid.176.bin / GlotLID model; empty = built-in fallback")
    max_doc_bytes: int = Field(4 * 1024 * 1024, description="skip records with larger payloads")
    text_field: str = Field("text", description="JSONL / Parquet text column")
    url_field: str = Field("url", description="JSONL / Parquet URL column")
    dedup_earlier_batches: bool = Field(
        True, description="also drop URLs / texts already kept by committed batches with smaller keys"
    )


@dg.asset(
    partitions_def=text_batch_partitions,
    group_name=GROUP,
    kinds={"python", "parquet"},
    description="One web batch (WARC / WET / JSONL / Parquet file) -> main text rows: HTML extraction "
    "(resiliparse), language id, URL + exact dedup; TEXT_SCHEMA + lang, lang_score, text_hash.",
)
def web_text(context: dg.AssetExecutionContext, config: WebTextConfig, corpus: CorpusResource) -> dg.MaterializeResult:
    key = context.partition_key
    files = batch_files(corpus)
    if key not in files:
        raise dg.Failure(
            description=f"text batch {key!r} has no input file; sources: {configured_sources() or 'local default'} "
            f"(found {sorted(files)[:10]}). Remove the stale partition or restore the file."
        )
    src = files[key]
    out = corpus.path("web_text", key)
    earlier = []
    if config.dedup_earlier_batches:
        earlier = [k for k in shards.committed_partitions(corpus.data_root, "web_text") if k < key]
    earlier_hashes = [f"{k}:{shards.read_manifest(corpus.path('web_text', k)).content_hash}" for k in earlier]
    cfg = IngestConfig(
        min_chars=config.min_chars, max_chars=config.max_chars, languages=tuple(config.languages),
        min_lang_score=config.min_lang_score, lid_model_path=config.lid_model_path or None,
        max_docs=200 if corpus.tiny else None,
    )
    run_config = {"asset": "web_text", **config.model_dump(), "input": _file_identity(src), "tiny": corpus.tiny}
    if config.lid_model_path:
        if not os.path.isfile(config.lid_model_path):
            raise dg.Failure(description=f"web_text: lid_model_path {config.lid_model_path!r} does not exist; give "
                             "a fastText language-id model (lid.176.bin) or leave it empty for the built-in fallback")
        run_config["lid_model"] = _file_identity(config.lid_model_path)
    existing = shards.up_to_date(out, shards.stable_hash(run_config), earlier_hashes)
    if existing:
        return dg.MaterializeResult(metadata=manifest_metadata(out, existing, reused=True))
    dedup = pipeline.earlier_batch_keys([corpus.path("web_text", k) for k in earlier]) if earlier else None
    skips = SkipCounter()
    opts = ReadOptions(text_field=config.text_field, url_field=config.url_field, max_doc_bytes=config.max_doc_bytes)
    try:
        manifest, stats = pipeline.ingest(
            iter_file(src, skips, opts), out, cfg, skips, config=run_config, input_hashes=earlier_hashes,
            dedup=dedup, extra={"input": src, "batch": key}, inputs=[src],
        )
    except pipeline.InputsFailedError as exc:
        raise dg.Failure(description=f"web_text[{key}]: {exc}", metadata=_skip_metadata(skips.as_dict())) from exc
    context.log.info(f"web_text[{key}]: {stats.kept}/{stats.docs_seen} documents kept from {src}")
    if stats.docs_seen == 0:
        context.log.warning(f"web_text[{key}]: no usable documents in {src}; skip reasons {skips.as_dict()}")
    return dg.MaterializeResult(
        metadata={
            **manifest_metadata(out, manifest),
            "input": dg.MetadataValue.path(src),
            "docs_seen": stats.docs_seen,
            "kept": stats.kept,
            "chars": stats.chars,
            "language id": manifest.extra.get("lid", ""),
            "dedup against batches": len(earlier),
            "languages": counts_table(dict(stats.languages), "lang"),
            "record kinds": counts_table(dict(stats.sources), "kind"),
            **_skip_metadata(skips.as_dict()),
        }
    )


# --------------------------------------------------------------------------- classifiers


class FastTextParams(dg.Config):
    dim: int = Field(32, description="embedding size")
    epoch: int = Field(10, description="training epochs")
    lr: float = Field(0.5, description="learning rate")
    word_ngrams: int = Field(2, description="word n-gram length")
    min_count: int = Field(2, description="minimum token count")
    bucket: int = Field(100_000, description="hash buckets for n-grams (model size ~ bucket x dim x 4 bytes)")
    max_tokens: int = Field(1024, description="tokens of each document the model sees")
    seed: int = Field(0, description="training seed (single-threaded training is reproducible)")

    def params(self) -> clf_mod.TrainParams:
        return clf_mod.TrainParams(dim=self.dim, epoch=self.epoch, lr=self.lr, word_ngrams=self.word_ngrams,
                                   min_count=self.min_count, bucket=self.bucket, max_tokens=self.max_tokens,
                                   seed=self.seed)


class SeedClassifierConfig(FastTextParams):
    positives: list[str] = Field(
        ["local:python-docs@0/2", "local:debian-html-docs@0/2"],
        description="code-related seed sources (docs, Q&A, tutorials): files, folders, globs, local:<name>[@i/n]",
    )
    negatives: list[str] = Field(
        ["local:debian-changelogs@0/2", "local:debian-copyright@0/2", "local:common-licenses"],
        description="general (non-code) seed sources",
    )
    holdout_fraction: float = Field(0.2, description="share of seed documents held out for evaluation")
    max_docs_per_class: int = Field(20_000, description="cap per class")
    min_chars: int = Field(200, description="drop shorter seed documents")
    threshold: float = Field(0.5, description="decision threshold for the reported precision / recall / F1")


def _metrics_metadata(report: clf_mod.EvalReport) -> dict[str, Any]:
    return {
        "holdout precision": report.precision,
        "holdout recall": report.recall,
        "holdout F1": report.f1,
        "holdout accuracy": report.accuracy,
        "holdout AUC": report.auc,
        "holdout docs": report.n,
        "evaluation": md_table(
            ["metric", "value"],
            [("precision", report.precision), ("recall", report.recall), ("F1", report.f1),
             ("accuracy", report.accuracy), ("ROC AUC", report.auc), ("threshold", report.threshold),
             ("holdout docs (positive)", f"{report.n} ({report.positives})")],
        ),
    }


@dg.asset(
    group_name=GROUP,
    kinds={"python", "fasttext"},
    description="Seed fastText text-code classifier: trained on code-related vs general seed text, evaluated "
    "on a held-out split; model.bin + eval table (+ labelled seed table textcode_classifier_examples).",
)
def textcode_classifier(
    context: dg.AssetExecutionContext, config: SeedClassifierConfig, corpus: CorpusResource
) -> dg.MaterializeResult:
    out = corpus.path("textcode_classifier")
    ex_path = corpus.path("textcode_classifier_examples")
    cap = min(config.max_docs_per_class, 60) if corpus.tiny else config.max_docs_per_class
    ex_config = {"asset": "textcode_classifier_examples", "positives": config.positives,
                 "negatives": config.negatives, "holdout_fraction": config.holdout_fraction, "cap": cap,
                 "min_chars": config.min_chars, "seed": config.seed}
    ex_manifest = shards.up_to_date(ex_path, shards.stable_hash(ex_config), [])
    skips = SkipCounter()
    if ex_manifest is None:
        try:
            ex_manifest, _ = pipeline.build_seed_examples(
                config.positives, config.negatives, ex_path, skips, holdout_fraction=config.holdout_fraction,
                max_docs_per_class=cap, min_chars=config.min_chars, seed=config.seed, config=ex_config,
            )
        except (ValueError, FileNotFoundError) as exc:
            raise dg.Failure(description=f"textcode_classifier seed data: {exc}") from exc
    run_config = {"asset": "textcode_classifier", **config.model_dump(), "tiny": corpus.tiny}
    inputs = [ex_manifest.content_hash]
    existing = shards.up_to_date(out, shards.stable_hash(run_config), inputs)
    if existing:
        return dg.MaterializeResult(metadata={**manifest_metadata(out, existing, reused=True),
                                              **_metrics_metadata(clf_mod.EvalReport(**existing.extra["metrics"]))})
    result = pipeline.train_and_write(
        pipeline.seed_examples(ex_path, "train"), ex_path, out, config.params(), threshold=config.threshold,
        config=run_config, input_hashes=inputs, extra={"stage": 1},
    )
    ex = ex_manifest.extra
    context.log.info(f"textcode_classifier: holdout F1 {result.report.f1} (P {result.report.precision}, "
                     f"R {result.report.recall})")
    return dg.MaterializeResult(
        metadata={
            **manifest_metadata(out, result.manifest),
            **_metrics_metadata(result.report),
            "model bytes": result.model_bytes,
            "model": dg.MetadataValue.path(pipeline.model_path(out)),
            "seed documents": md_table(
                ["class", "train", "holdout"],
                [("code-related", ex["positives"].get("train", 0), ex["positives"].get("holdout", 0)),
                 ("general", ex["negatives"].get("train", 0), ex["negatives"].get("holdout", 0))],
            ),
            **_skip_metadata(ex.get("skips", {})),
        }
    )


class RetrainConfig(FastTextParams):
    batches: list[str] = Field([], description="train on the recall of these batches ([] = every committed batch)")
    domain_min_recall: float = Field(
        0.5, description="site sections with at least this share of pages recalled become positive as a whole"
    )
    domain_min_docs: int = Field(3, description="minimum pages in a site section for the rule above")
    url_depth: int = Field(1, description="path segments after the host that define a site section")
    max_recalled: int = Field(20_000, description="cap on recalled (positive) training pages")
    max_negatives: int = Field(20_000, description="cap on not-recalled (negative) training pages")
    include_seed: bool = Field(True, description="also train on the seed classifier's training split")


def _make_retrain_asset(stage: int) -> dg.AssetsDefinition:
    name = classifier_asset_name(stage)
    prev_stage = stage_asset_name(stage - 1)

    @dg.asset(
        name=name,
        deps=[prev_stage, "web_text", "textcode_classifier"],
        group_name=GROUP,
        kinds={"python", "fasttext"},
        description=f"Stage-{stage} classifier, retrained on what stage {stage - 1} recalled (iterative recall: "
        "recalled pages + pages of mostly-recalled site sections vs the rest), evaluated on the seed holdout.",
    )
    def _retrain(context: dg.AssetExecutionContext, config: RetrainConfig, corpus: CorpusResource) -> dg.MaterializeResult:
        out = corpus.path(name)
        ex_path = corpus.path("textcode_classifier_examples")
        available = [k for k in shards.committed_partitions(corpus.data_root, prev_stage)
                     if shards.is_committed(corpus.path("web_text", k))]
        missing = sorted(set(config.batches) - set(available))
        if missing:
            raise dg.Failure(description=f"{name}: config.batches names {missing}, which have no committed "
                             f"web_text + {prev_stage}; committed: {available[:20]}")
        committed = [k for k in available if not config.batches or k in config.batches]
        if not committed:
            raise dg.Failure(description=f"{name}: no committed {prev_stage} batches to learn from; "
                             f"materialize {prev_stage} for at least one text batch first")
        pairs = [(corpus.path("web_text", k), corpus.path(prev_stage, k)) for k in committed]
        inputs = upstream_hashes(corpus, ["textcode_classifier_examples"], None) + [
            f"{k}:{shards.read_manifest(w).content_hash}:{shards.read_manifest(p).content_hash}"
            for k, (w, p) in zip(committed, pairs)
        ]
        cap_pos = min(config.max_recalled, 200) if corpus.tiny else config.max_recalled
        cap_neg = min(config.max_negatives, 200) if corpus.tiny else config.max_negatives
        run_config = {"asset": name, **config.model_dump(), "tiny": corpus.tiny}
        existing = shards.up_to_date(out, shards.stable_hash(run_config), inputs)
        if existing:
            return dg.MaterializeResult(
                metadata={**manifest_metadata(out, existing, reused=True),
                          **_metrics_metadata(clf_mod.EvalReport(**existing.extra["metrics"]))}
            )
        recall = RecallConfig(domain_min_recall=config.domain_min_recall, domain_min_docs=config.domain_min_docs,
                              max_recalled=cap_pos, max_negatives=cap_neg, seed=config.seed)
        try:
            result, rstats = pipeline.retrain(
                pairs, ex_path, out, config.params(), recall, include_seed=config.include_seed,
                url_depth=config.url_depth, config=run_config, input_hashes=inputs,
            )
        except ValueError as exc:
            raise dg.Failure(description=f"{name}: {exc}") from exc
        context.log.info(f"{name}: holdout F1 {result.report.f1} from {rstats.recalled} recalled pages")
        return dg.MaterializeResult(
            metadata={
                **manifest_metadata(out, result.manifest),
                **_metrics_metadata(result.report),
                "model bytes": result.model_bytes,
                "model": dg.MetadataValue.path(pipeline.model_path(out)),
                "batches": len(committed),
                "web pages": rstats.web_docs,
                "recalled by previous stage": rstats.recalled,
                "training examples": md_table(
                    ["kind", "count"],
                    [("recalled pages (positive)", rstats.positives_recalled),
                     ("pages of recalled site sections (positive)", rstats.positives_domain),
                     ("other pages (negative)", rstats.negatives),
                     ("all positives incl. seed", result.train_examples[1]),
                     ("all negatives incl. seed", result.train_examples[0])],
                ),
                "site sections (code / all)": f"{rstats.code_groups} / {rstats.groups}",
                "top site sections": md_table(["section", "pages", "recalled"], rstats.top_groups),
            }
        )

    return _retrain


# --------------------------------------------------------------------------- filter stages


class StageConfig(dg.Config):
    threshold: float | None = Field(
        None, description="keep documents whose stage score (P(code)) is at least this; "
        "default 0.5 + 0.1 x (stage - 1), stricter each stage"
    )


def _histogram_table(hist_all: list[int], hist_kept: list[int]) -> dg.MetadataValue:
    bins = len(hist_all)
    return md_table(
        ["score bin", "all", "kept"],
        [(f"{i / bins:.1f}-{(i + 1) / bins:.1f}", a, k) for i, (a, k) in enumerate(zip(hist_all, hist_kept))],
    )


def _funnel(corpus: CorpusResource, key: str, upto: int) -> list[tuple[str, int, str]]:
    rows = []
    base = shards.read_manifest(corpus.path("web_text", key))
    total = base.rows if base else 0
    rows.append(("web_text", total, "100%"))
    for s in range(1, upto + 1):
        m = shards.read_manifest(corpus.path(stage_asset_name(s), key))
        if m is None:
            break
        rows.append((f"stage {s} (>= {m.extra.get('threshold')})", m.rows, f"{m.rows / total:.1%}" if total else "-"))
    return rows


def _make_stage_asset(stage: int) -> dg.AssetsDefinition:
    name = stage_asset_name(stage)
    prev = "web_text" if stage == 1 else stage_asset_name(stage - 1)
    model_asset = classifier_asset_name(stage)

    @dg.asset(
        name=name,
        partitions_def=text_batch_partitions,
        deps=[prev, model_asset],
        group_name=GROUP,
        kinds={"python", "parquet"},
        description=f"Hierarchical filter stage {stage}/{N_STAGES}: scores {prev} with {model_asset} and keeps "
        f"documents at or above the threshold; adds column {score_column(stage)}."
        + (" The final text-code grounding set (TEXT_SCHEMA + per-stage scores)." if name == "text_code" else ""),
    )
    def _stage(context: dg.AssetExecutionContext, config: StageConfig, corpus: CorpusResource) -> dg.MaterializeResult:
        key = context.partition_key
        threshold = default_threshold(stage) if config.threshold is None else config.threshold
        if not 0.0 <= threshold <= 1.0:
            raise dg.Failure(description=f"{name}: threshold {threshold} must be within [0, 1]")
        in_path, out = corpus.path(prev, key), corpus.path(name, key)
        inputs = upstream_hashes(corpus, [prev], key) + upstream_hashes(corpus, [model_asset], None)
        run_config = {"asset": name, "stage": stage, "threshold": threshold}
        existing = shards.up_to_date(out, shards.stable_hash(run_config), inputs)
        reused = existing is not None
        if existing is None:
            model_file = pipeline.model_path(corpus.path(model_asset))
            existing, _ = pipeline.run_stage(in_path, out, model_file, stage, threshold, config=run_config,
                                             input_hashes=inputs)
        ex = existing.extra
        docs_in, kept = ex["docs_in"], ex["kept"]
        context.log.info(f"{name}[{key}]: kept {kept}/{docs_in} at threshold {threshold}")
        return dg.MaterializeResult(
            metadata={
                **manifest_metadata(out, existing, reused=reused),
                "stage": stage,
                "threshold": threshold,
                "docs in": docs_in,
                "kept": kept,
                "retention": round(kept / docs_in, 4) if docs_in else 0.0,
                "score histogram": _histogram_table(ex["hist_all"], ex["hist_kept"]),
                "funnel": md_table(["set", "documents", "of web_text"], _funnel(corpus, key, stage)),
            }
        )

    return _stage


# --------------------------------------------------------------------------- math / general


class MathTextConfig(dg.Config):
    sources: list[str] = Field(
        ["local:math-docstrings"],
        description="math text sources (JSONL / Parquet / WET / folders / local:<name>); the default is "
        "sympy + mpmath docstrings (real math prose, not a web corpus)",
    )
    min_chars: int = Field(300, description="drop shorter documents")
    languages: list[str] = Field(["en"], description="keep these languages ([] = all)")
    min_lang_score: float = Field(0.1, description="minimum language-id confidence")
    lid_model_path: str = Field("", description="fastText lid model; empty = built-in fallback")
    min_math_score: float = Field(0.2, description="minimum lexical math score (LaTeX, equations, vocabulary)")
    text_field: str = Field("text", description="JSONL / Parquet text column")
    max_docs: int = Field(0, description="cap on kept documents (0 = no cap)")


def _sources_identity(specs: list[str]) -> list[Any]:
    """What the config hash records about sources: each spec and, for files / folders / globs,
    every file's path, size and mtime (so new or changed files make the asset stale)."""
    out: list[Any] = []
    for spec in specs:
        base, _, _ = split_shard(spec)
        if base.startswith("local:"):
            out.append(spec)
            continue
        try:
            out.append([spec, [_file_identity(p) for p in expand_spec(base)]])
        except FileNotFoundError:
            out.append([spec, "missing"])
    return out


def _plain_text_setup(
    name: str, config: "MathTextConfig | GeneralTextConfig", corpus: CorpusResource
) -> tuple[str, dict[str, Any], IngestConfig]:
    """math_text and general_text share their set-up: the tiny-mode cap, a config hash that also
    records the sources' file identities, and the IngestConfig built from the same fields.
    Returns (output path, run config to hash, ingest config)."""
    out = corpus.path(name)
    cap = 60 if corpus.tiny else (config.max_docs or None)
    run_config = {"asset": name, **config.model_dump(), "cap": cap,
                  "sources_identity": _sources_identity(config.sources)}
    cfg = IngestConfig(min_chars=config.min_chars, languages=tuple(config.languages),
                       min_lang_score=config.min_lang_score, lid_model_path=config.lid_model_path or None,
                       max_docs=cap)
    return out, run_config, cfg


@dg.asset(
    group_name=GROUP,
    kinds={"python", "parquet"},
    description="Math text from configured sources, filtered by a lexical math score, language and exact dedup.",
)
def math_text(context: dg.AssetExecutionContext, config: MathTextConfig, corpus: CorpusResource) -> dg.MaterializeResult:
    out, run_config, cfg = _plain_text_setup("math_text", config, corpus)
    existing = shards.up_to_date(out, shards.stable_hash(run_config), [])
    if existing:
        return dg.MaterializeResult(metadata=manifest_metadata(out, existing, reused=True))
    skips = SkipCounter()
    try:
        manifest, stats, hist = pipeline.math_text(
            config.sources, out, cfg, skips, min_math_score=config.min_math_score,
            opts=ReadOptions(text_field=config.text_field), config=run_config,
        )
    except (ValueError, FileNotFoundError) as exc:
        raise dg.Failure(description=f"math_text: {exc}") from exc
    return dg.MaterializeResult(
        metadata={
            **manifest_metadata(out, manifest),
            "docs_seen": stats.docs_seen,
            "kept": stats.kept,
            "math score histogram": md_table(["score bin", "docs"], [(f"{i / 10:.1f}", c) for i, c in enumerate(hist)]),
            **_skip_metadata(skips.as_dict()),
        }
    )


class GeneralTextConfig(dg.Config):
    sources: list[str] = Field(
        ["local:debian-changelogs@1/2", "local:debian-copyright@1/2", "local:common-licenses"],
        description="general text sources (JSONL / Parquet / WET / folders / local:<name>)",
    )
    max_code_ratio: float = Field(0.3, description="drop documents whose code-like share of characters is above this")
    min_chars: int = Field(200, description="drop shorter documents (after code removal)")
    languages: list[str] = Field(["en"], description="keep these languages ([] = all)")
    min_lang_score: float = Field(0.15, description="minimum language-id confidence")
    lid_model_path: str = Field("", description="fastText lid model; empty = built-in fallback")
    text_field: str = Field("text", description="JSONL / Parquet text column")
    max_docs: int = Field(0, description="cap on kept documents (0 = no cap)")


@dg.asset(
    group_name=GROUP,
    kinds={"python", "parquet"},
    description="General text with code removed (code-like lines / blocks stripped, documents above "
    "max_code_ratio dropped) so that code enters the corpus only through the code path.",
)
def general_text(
    context: dg.AssetExecutionContext, config: GeneralTextConfig, corpus: CorpusResource
) -> dg.MaterializeResult:
    out, run_config, cfg = _plain_text_setup("general_text", config, corpus)
    existing = shards.up_to_date(out, shards.stable_hash(run_config), [])
    if existing:
        return dg.MaterializeResult(metadata=manifest_metadata(out, existing, reused=True))
    skips = SkipCounter()
    try:
        manifest, stats, sstats = pipeline.general_text(
            config.sources, out, cfg, skips, max_code_ratio=config.max_code_ratio,
            opts=ReadOptions(text_field=config.text_field), config=run_config,
        )
    except (ValueError, FileNotFoundError) as exc:
        raise dg.Failure(description=f"general_text: {exc}") from exc
    return dg.MaterializeResult(
        metadata={
            **manifest_metadata(out, manifest),
            "docs_seen": sstats.docs,
            "kept": stats.kept,
            "code removal": md_table(
                ["measure", "value"],
                [("documents dropped (code ratio > max)", sstats.dropped_code_ratio),
                 ("code lines removed", sstats.lines_removed), ("code characters removed", sstats.chars_removed)],
            ),
            **_skip_metadata(skips.as_dict()),
        }
    )


# --------------------------------------------------------------------------- checks, sensor


@dg.asset_check(asset="textcode_classifier", description="Seed classifier is well above chance on held-out data.")
def textcode_classifier_beats_chance(corpus: CorpusResource) -> dg.AssetCheckResult:
    m = shards.read_manifest(corpus.path("textcode_classifier"))
    if m is None:
        return dg.AssetCheckResult(passed=False, description="textcode_classifier is not committed")
    metrics = m.extra.get("metrics", {})
    f1, auc = metrics.get("f1", 0.0), metrics.get("auc", 0.5)
    return dg.AssetCheckResult(passed=f1 >= 0.7 and auc >= 0.75, severity=dg.AssetCheckSeverity.WARN,
                               metadata={"F1": f1, "AUC": auc})


@dg.asset_check(
    asset="text_code",
    description="For every committed batch: stage counts are monotone non-increasing and each stage's "
    "scores respect its threshold.",
)
def text_code_stages_monotone(corpus: CorpusResource) -> dg.AssetCheckResult:
    rows = []
    problems: list[str] = []
    for key in shards.committed_partitions(corpus.data_root, "text_code"):
        counts = _stage_counts(corpus, key, problems)
        rows.append((key, " > ".join(str(c) for _, c in counts)))
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"batches": len(rows), "counts (web_text > stages)": md_table(["batch", "rows"], rows),
                  "problems": "; ".join(problems[:20]) or "none"},
    )


def _stage_counts(corpus: CorpusResource, key: str, problems: list[str]) -> list[tuple[str, int]]:
    counts: list[tuple[str, int]] = []
    for asset in ["web_text"] + [stage_asset_name(s) for s in range(1, N_STAGES + 1)]:
        m = shards.read_manifest(corpus.path(asset, key))
        if m is None:
            problems.append(f"{key}: {asset} not committed")
            continue
        if counts and m.rows > counts[-1][1]:
            problems.append(f"{key}: {asset} has more rows ({m.rows}) than {counts[-1][0]} ({counts[-1][1]})")
        counts.append((asset, m.rows))
        if asset != "web_text":
            stage, thr = m.extra.get("stage"), m.extra.get("threshold")
            for b in shards.iter_batches(corpus.path(asset, key), columns=[score_column(stage)]):
                low = [s for s in b.column(0).to_pylist() if s is None or s < thr - 1e-6]
                if low:
                    problems.append(f"{key}: {asset} has {len(low)} rows below its threshold {thr}")
                    break
    return counts


@dg.asset_check(asset="general_text", description="Little code is left in general text after stripping.")
def general_text_code_free(corpus: CorpusResource) -> dg.AssetCheckResult:
    from corpus.textcode.codestrip import code_line

    path = corpus.path("general_text")
    if not shards.is_committed(path):
        return dg.AssetCheckResult(passed=False, description="general_text is not committed")
    lines = code = 0
    for b in shards.iter_batches(path, columns=["text"]):
        for text in b.column(0).to_pylist():
            for line in text.split("\n"):
                if line.strip():
                    lines += 1
                    code += code_line(line)
    ratio = code / lines if lines else 0.0
    return dg.AssetCheckResult(passed=ratio <= 0.02, severity=dg.AssetCheckSeverity.WARN,
                               metadata={"code_like_lines_left": code, "code_line_ratio": round(ratio, 5)})


# On by default: the text assets are partitioned by batch, and a batch exists only once this
# sensor registered it. A new user running `dagster dev` sees the demo batches appear (and
# web_text materialize for them) within a minute instead of seven empty text assets.
@dg.sensor(
    name="text_batch_sensor",
    minimum_interval_seconds=300,
    asset_selection=["web_text"],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Registers new web-text batches (files under {SOURCES_ENV}, or the local demo pages) as "
    "text_batches partitions and requests web_text for them; downstream stages follow by automation or backfill.",
)
def text_batch_sensor(context: dg.SensorEvaluationContext, corpus: CorpusResource) -> dg.SensorResult | dg.SkipReason:
    try:
        keys = list(batch_files(corpus))
    except FileNotFoundError as exc:
        return dg.SkipReason(str(exc))
    have = set(context.instance.get_dynamic_partitions(text_batch_partitions.name))
    new = [k for k in keys if k not in have]
    if not new:
        return dg.SkipReason(f"no new batches ({len(keys)} known)")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=k, asset_selection=[dg.AssetKey("web_text")], run_key=f"web_text:{k}")
                      for k in new],
        dynamic_partitions_requests=[text_batch_partitions.build_add_request(new)],
    )


STAGE_ASSETS = [_make_stage_asset(s) for s in range(1, N_STAGES + 1)]
RETRAIN_ASSETS = [_make_retrain_asset(s) for s in range(2, N_STAGES + 1)]

defs = dg.Definitions(
    assets=[web_text, textcode_classifier, *RETRAIN_ASSETS, *STAGE_ASSETS, math_text, general_text],
    asset_checks=[textcode_classifier_beats_chance, text_code_stages_monotone, general_text_code_free],
    sensors=[text_batch_sensor],
)

"""``mixture``: code / text-code / general / math / synthetic combined by token budget.

Reads every committed partition of the cleaned sources (missing ones are recorded, not fatal),
samples each source to its share of the budget (corpus.mix) and shows exact per-source and
per-language token accounting (proxy tokens, see corpus.mix.budget).
"""


import dagster as dg
from pydantic import Field

from assets.common import all_partition_hashes, counts_table, manifest_metadata, md_table
from assets.resources import CorpusResource
from corpus import shards
from corpus.mix import MIX_SCHEMA, SOURCES, Shares, discover_inputs, plan_and_write
from corpus.tokenize.encoder import FastEncoder
from corpus.tokenize.tokenizer import TokenizerError

TINY_DOCS_PER_INPUT = 150
RATIO_TOLERANCE = 0.01


class MixtureConfig(dg.Config):
    code_share: float = Field(default=0.7, description="share of code (incl. synthetic) in the token budget")
    text_share: float = Field(default=0.2, description="share of text (code-grounded web text + general)")
    math_share: float = Field(default=0.1, description="share of math text")
    general_of_text: float = Field(default=0.25, description="fraction of the text share given to general text")
    synthetic_of_code: float = Field(default=0.05, description="fraction of the code share given to synthetic code")
    total_tokens: int = Field(default=0, description="token budget (proxy tokens); 0 = size of the corpus")
    max_epochs: float = Field(default=4.0, description="most times a source may be repeated to fill its share")
    seed: int = 0
    max_docs_per_input: int = Field(default=-1, description="cap per upstream partition; -1 = profile default")
    count_with_tokenizer: str = Field(
        default="", description="tokenizer.json (e.g. Qwen2.5's) for exact token budgeting instead of the byte proxy"
    )


def bar_chart(values: dict[str, float], width: int = 40) -> str:
    """A markdown (code block) bar chart of shares."""
    top = max(values.values(), default=0) or 1
    lines = [f"{k:<10} {'█' * round(width * v / top):<{width}} {v * 100:5.1f}%" for k, v in values.items()]
    return "```\n" + "\n".join(lines) + "\n```"


@dg.asset(
    deps=["code_clean", "text_code_clean", "math_clean", "general_clean", "synthetic_code"],
    group_name="train",
    description="Pre-training mixture by token budget (code:text:math = 70:20:10), seeded up/down-sampling.",
)
def mixture(context: dg.AssetExecutionContext, config: MixtureConfig, corpus: CorpusResource) -> dg.MaterializeResult:
    out = corpus.path("mixture")
    inputs, status = discover_inputs(corpus.data_root)
    if not inputs:
        raise dg.Failure(
            description="mixture: no upstream data at all: none of "
            + ", ".join(a for _, a in SOURCES.values())
            + f" has a committed partition under {corpus.data_root}; materialize the cleaning assets first"
        )
    cap = config.max_docs_per_input if config.max_docs_per_input >= 0 else (TINY_DOCS_PER_INPUT if corpus.tiny else 0)
    cfg = config.model_dump() | {"max_docs_per_input": cap}
    hashes = [f"{a}/{h}" for a in sorted({a for _, a in SOURCES.values()}) for h in all_partition_hashes(corpus, a)]
    counter, counter_name = None, "proxy: ceil(utf8_bytes / 4)"
    if config.count_with_tokenizer:
        try:
            enc = FastEncoder.from_file(config.count_with_tokenizer)
        except TokenizerError as exc:
            raise dg.Failure(description=f"mixture: count_with_tokenizer: {exc}") from exc
        hashes.append(f"counter:{enc.info.sha256}")
        counter = lambda texts: [len(x) for x in enc.encode_batch(texts)]  # noqa: E731
        counter_name = f"exact: {config.count_with_tokenizer} (sha256 {enc.info.sha256[:12]})"
    existing = shards.up_to_date(out, shards.stable_hash(cfg), hashes)
    if existing is not None:
        context.log.info("mixture: inputs and config unchanged; keeping %s", out)
        return dg.MaterializeResult(metadata=manifest_metadata(out, existing, reused=True))
    shares = Shares(config.code_share, config.text_share, config.math_share, config.general_of_text,
                    config.synthetic_of_code)
    try:
        with shards.ShardSetWriter(out, MIX_SCHEMA, config=cfg, input_hashes=hashes) as w:
            report = plan_and_write(inputs, w, shares=shares, total_tokens=config.total_tokens,
                                    max_epochs=config.max_epochs, seed=config.seed, max_docs_per_input=cap,
                                    count_tokens=counter)
            w.extra.update(
                target_shares=report.shares, targets=report.targets, tokens=report.tokens,
                actual_shares=report.actual_shares(), available_tokens=report.available_tokens,
                token_counter=counter_name, notes=report.notes, source_status=status,
            )
    except ValueError as exc:  # nothing usable (every source empty) or a bad share setting
        raise dg.Failure(description=f"mixture: {exc} (inputs: {status})") from exc
    manifest = shards.read_manifest(out)
    assert manifest is not None
    for note in report.notes:
        context.log.warning("mixture: %s", note)
    actual = report.actual_shares()
    rows = []
    for s in SOURCES:
        avail = report.available_tokens.get(s, 0)
        tok = report.tokens.get(s, 0)
        rows.append([
            s, status.get(s, "-"), f"{avail:,}", f"{report.shares.get(s, 0) * 100:.2f}%",
            f"{report.targets.get(s, 0):,}", f"{tok:,}", f"{actual.get(s, 0) * 100:.2f}%",
            report.docs.get(s, 0), report.unique_docs.get(s, 0), f"{(tok / avail) if avail else 0:.2f}",
        ])
    lang_rows = sorted(report.tokens_by_language.items(), key=lambda kv: (-kv[1], kv[0]))
    total = sum(report.tokens.values()) or 1
    return dg.MaterializeResult(
        metadata=manifest_metadata(out, manifest)
        | {
            "tokens_total": sum(report.tokens.values()),
            "token_budget": report.total_target,
            "token_counter": counter_name + ("" if counter else "; exact counts in tokens_stage1 metadata"),
            "sources": md_table(
                ["source", "upstream", "available tokens", "target share", "target tokens", "tokens",
                 "share", "docs", "unique docs", "epochs"], rows),
            "tokens_by_language": md_table(
                ["source", "language", "tokens", "share"],
                [[s, lang, f"{n:,}", f"{n / total * 100:.2f}%"] for (s, lang), n in lang_rows]),
            "share_chart": dg.MetadataValue.md(bar_chart({s: actual[s] for s in actual})),
            "missing_sources": [s for s in SOURCES if report.available_tokens.get(s, 0) == 0],
            "notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in report.notes) or "none"),
            "skip_reasons": counts_table(dict(report.skipped)),
            "inputs": len(inputs),
        }
    )


@dg.asset_check(asset=mixture, description="every source's token share is within 1 point of its target")
def mixture_ratios_on_target(corpus: CorpusResource) -> dg.AssetCheckResult:
    m = shards.read_manifest(corpus.path("mixture"))
    if m is None:
        return dg.AssetCheckResult(passed=False, metadata={"error": "mixture not committed"})
    target, actual = m.extra.get("target_shares", {}), m.extra.get("actual_shares", {})
    off = {s: actual.get(s, 0.0) - t for s, t in target.items()}
    worst = max((abs(v) for v in off.values()), default=0.0)
    return dg.AssetCheckResult(
        passed=worst <= RATIO_TOLERANCE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"max_abs_deviation": worst,
                  "deviation": md_table(["source", "target", "actual"],
                                        [[s, f"{t:.4f}", f"{actual.get(s, 0):.4f}"] for s, t in target.items()])},
    )


defs = dg.Definitions(assets=[mixture], asset_checks=[mixture_ratios_on_target])

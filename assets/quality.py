"""``code_quality`` + ``code_quality_dropped``: rule-based filters per language partition.

Rules are data (corpus/quality/rules.yaml, each with its source); the asset config can point to
another rules file, override thresholds or disable rules. The rules file's sha256 and the
overrides are part of the config hash, so an unchanged config is a no-op and a changed one
re-filters. Two automations keep the output current (see docs/quality.md):

* an automation condition (eager: upstream ``code_dedup`` changed, or the asset's code version
  changed; the code version is derived from the bundled rules file's content);
* a schedule ``code_filters_nightly`` (cron ``CODECORPUS_FILTER_CRON``, default ``0 3 * * *``)
  that requests every language partition of the filter job; partitions whose rules and inputs
  are unchanged return immediately (``reused_existing=True``).

Backfill one language from the command line::

    dagster asset materialize -m pipelines.definitions --select code_quality --partition python
"""

import hashlib
import os
import warnings
from datetime import timedelta

import dagster as dg
from pydantic import Field

from assets.common import counts_table, manifest_metadata, md_table, report_sets, upstream_hashes
from assets.crawl import crawl_freshness
from assets.partitions import language_partitions
from assets.resources import CorpusResource, ExecutorResource
from corpus import __version__ as CODE_VERSION
from corpus import shards
from corpus.executor import ExecutorError, TaskError
from corpus.quality import DEFAULT_RULES_PATH, QualityFilter, QualityInputError, RulesError, load_rules

TINY_MAX_ROWS = 2_000
DEFAULT_CRON = "0 3 * * *"


def _rules_code_version() -> str:
    with open(DEFAULT_RULES_PATH, "rb") as fh:
        return f"{CODE_VERSION}-rules-{hashlib.sha256(fh.read()).hexdigest()[:12]}"


class QualityConfig(dg.Config):
    rules_path: str = Field(default="", description="YAML rules file replacing the bundled corpus/quality/rules.yaml")
    overrides: dict[str, dict[str, float]] = Field(
        default={}, description="per-rule thresholds, e.g. {max_line_length: {above: 2000}}"
    )
    disabled: list[str] = Field(default=[], description="rule names to switch off")
    max_rows: int = Field(default=-1, description="cap on input rows; -1 = all (profile tiny: 2000)")
    batch_size: int = Field(default=1_000, description="rows evaluated per vectorized batch")


@dg.multi_asset(
    name="code_quality",
    specs=[
        dg.AssetSpec("code_quality", deps=["code_dedup"], group_name="code", partitions_def=language_partitions,
                     description="Code files passing the rule-based quality filters (all input columns kept)",
                     code_version=_rules_code_version(), kinds={"parquet"},
                     automation_condition=dg.AutomationCondition.eager()
                     | dg.AutomationCondition.code_version_changed()),
        dg.AssetSpec("code_quality_dropped", deps=["code_dedup"], group_name="code",
                     partitions_def=language_partitions, code_version=_rules_code_version(), kinds={"parquet"},
                     description="One row per dropped file: id, first rule that fired, metric value, all rules fired",
                     automation_condition=dg.AutomationCondition.eager()
                     | dg.AutomationCondition.code_version_changed()),
    ],
    partitions_def=language_partitions,
    check_specs=[dg.AssetCheckSpec("counts_add_up", asset="code_quality", blocking=True,
                                   description="kept + dropped rows = input rows")],
    can_subset=True,
)
def code_quality(context: dg.AssetExecutionContext, config: QualityConfig, corpus: CorpusResource,
                 executor: ExecutorResource):
    """Both shard sets are always (re)built together; both record a materialization when rewritten."""
    results = list(_code_quality(context, config, corpus, executor))
    sets = [r for r in results if isinstance(r, dg.MaterializeResult)]
    reused = all(r.metadata and r.metadata.get("reused_existing") is True for r in sets)
    yield from report_sets(context, sets, rewritten=not reused)
    for result in results:
        if isinstance(result, dg.AssetCheckResult) and \
                dg.AssetCheckKey(dg.AssetKey("code_quality"), "counts_add_up") in context.selected_asset_check_keys:
            yield result


def _code_quality(context: dg.AssetExecutionContext, config: QualityConfig, corpus: CorpusResource,
                  executor: ExecutorResource):
    lang = context.partition_key
    src, out, dropped = corpus.path("code_dedup", lang), corpus.path("code_quality", lang), \
        corpus.path("code_quality_dropped", lang)
    hashes = upstream_hashes(corpus, ["code_dedup"], lang)
    try:
        rules = load_rules(config.rules_path or None, overrides=config.overrides, disabled=config.disabled)
    except RulesError as exc:
        raise dg.Failure(description=f"code_quality: {exc}") from exc
    filt = QualityFilter(rules)
    cap = config.max_rows if config.max_rows >= 0 else (TINY_MAX_ROWS if corpus.tiny else None)
    stage_cfg = {"max_rows": cap, "batch_size": config.batch_size}
    chash = shards.stable_hash(filt.config_for(stage_cfg, lang))
    km, dm = shards.up_to_date(out, chash, hashes), shards.up_to_date(dropped, chash, hashes)
    if km is not None and dm is not None:
        context.log.info("code_quality[%s]: rules and upstream unchanged; keeping %s", lang, out)
        yield dg.MaterializeResult(asset_key="code_quality", metadata=manifest_metadata(out, km, reused=True))
        yield dg.MaterializeResult(asset_key="code_quality_dropped",
                                   metadata=manifest_metadata(dropped, dm, reused=True))
        yield _check_counts(corpus, lang)
        return
    try:
        with executor.open() as ex:
            stats = filt.filter_shard_set(src, out, dropped, language=lang, config=stage_cfg, input_hashes=hashes,
                                          batch_size=config.batch_size, max_rows=cap, executor=ex)
    except (QualityInputError, shards.ShardSetError, ValueError, TaskError, ExecutorError) as exc:
        raise dg.Failure(description=f"code_quality[{lang}]: {exc}") from exc
    km, dm = shards.read_manifest(out), shards.read_manifest(dropped)
    assert km is not None and dm is not None
    rule_rows = []
    for r in rules.rules:
        bounds = r.bounds_for(lang)
        rule_rows.append([r.name, r.metric, bounds.describe() if r.applies_to(lang) else "n/a",
                          stats.dropped.get(r.name, 0), stats.dropped_bytes.get(r.name, 0),
                          stats.fired.get(r.name, 0)])
    if stats.dropped.get("empty_content"):
        rule_rows.append(["empty_content", "-", "null or empty", stats.dropped["empty_content"], 0,
                          stats.fired.get("empty_content", 0)])
    kept_frac = stats.kept_fraction()
    mb = stats.bytes_in / 1e6
    yield dg.MaterializeResult(
        asset_key="code_quality",
        metadata=manifest_metadata(out, km) | {
            "input_rows": stats.rows_in,
            "kept_rows": stats.rows_kept,
            "dropped_rows": stats.rows_dropped,
            "input_bytes": stats.bytes_in,
            "kept_bytes": stats.bytes_kept,
            "kept_fraction": round(stats.rows_kept / stats.rows_in, 6) if stats.rows_in else 0.0,
            "drops_by_rule": md_table(
                ["rule", "metric", "drop_if", "dropped_rows (first rule)", "dropped_bytes", "fired_rows (would drop)"],
                sorted(rule_rows, key=lambda r: (-r[3], -r[5], r[0]))),
            "kept_fraction_by_language": md_table(
                ["language", "rows in", "kept", "kept fraction"],
                [[k, stats.per_language[k][0], stats.per_language[k][1], f"{v:.4f}"] for k, v in kept_frac.items()]),
            "dropped_examples": md_table(
                ["rule", "id", "value"],
                [[r, i, f"{v:.4g}" if isinstance(v, float) else v] for r, ex in sorted(stats.examples.items())
                 for i, v in ex]),
            "rules_file": rules.path,
            "rules_sha256": rules.sha256[:16],
            "throughput_mb_s": round(mb / stats.seconds, 2) if stats.seconds else 0.0,
            "skip_reasons": counts_table({"empty or null content (dropped)": stats.dropped.get("empty_content", 0)}),
        },
    )
    yield dg.MaterializeResult(
        asset_key="code_quality_dropped",
        metadata=manifest_metadata(dropped, dm) | {"drops_by_rule": counts_table(stats.dropped, key="rule",
                                                                                  value="rows")},
    )
    yield _check_counts(corpus, lang)


def _check_counts(corpus: CorpusResource, lang: str) -> dg.AssetCheckResult:
    km = shards.read_manifest(corpus.path("code_quality", lang))
    dm = shards.read_manifest(corpus.path("code_quality_dropped", lang))
    um = shards.read_manifest(corpus.path("code_dedup", lang))
    if km is None or dm is None or um is None:
        return dg.AssetCheckResult(check_name="counts_add_up", asset_key="code_quality", passed=False,
                                   metadata={"error": "a shard set is not committed"})
    summary = km.extra.get("quality", {})
    cap = summary.get("max_rows")
    expected = um.rows if cap is None else min(um.rows, cap)
    ok = km.rows + dm.rows == summary.get("rows_in", -1) == expected
    return dg.AssetCheckResult(check_name="counts_add_up", asset_key="code_quality", passed=ok,
                               metadata={"kept": km.rows, "dropped": dm.rows, "input_rows": um.rows,
                                         "cap": cap if cap is not None else "none"})


filters_job = dg.define_asset_job(
    "code_filters_job",
    selection=dg.AssetSelection.assets("code_quality", "code_quality_dropped", "code_clean", "code_clean_removed"),
    description="Quality filters then decontamination for one language partition.",
)


def filter_cron() -> str:
    return os.environ.get("CODECORPUS_FILTER_CRON", "").strip() or DEFAULT_CRON


@dg.schedule(job=filters_job, cron_schedule=filter_cron(), name="code_filters_nightly",
             default_status=dg.DefaultScheduleStatus.STOPPED,
             description="Re-run the code filters for every language (no-op where rules and inputs are unchanged). "
                         "Cron from CODECORPUS_FILTER_CRON.")
def code_filters_nightly(context: dg.ScheduleEvaluationContext):
    for lang in language_partitions.get_partition_keys():
        yield dg.RunRequest(run_key=f"{context.scheduled_execution_time:%Y%m%d%H%M}-{lang}", partition_key=lang)


# Matches code_filters_nightly: at its latest tick, the filtered sets were rebuilt (or
# confirmed) in the day (+2 h) before it.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.SupersessionWarning)
    filters_freshness = dg.build_last_update_freshness_checks(
        assets=["code_quality", "code_clean"], deadline_cron=filter_cron(), lower_bound_delta=timedelta(hours=26),
        severity=dg.AssetCheckSeverity.WARN,
    )
    # Evaluates the freshness checks of every scheduled asset; off by default like the schedules.
    freshness_sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=[*filters_freshness, *crawl_freshness], name="freshness_checks_sensor",
    )

defs = dg.Definitions(assets=[code_quality], jobs=[filters_job], schedules=[code_filters_nightly],
                      asset_checks=filters_freshness, sensors=[freshness_sensor])

"""Text-code grounding data: web-text ingest (WARC / WET / JSONL / Parquet), HTML extraction,
language id, URL + exact dedup, fastText classifiers, staged filtering, code stripping for
general text, and local seed corpora for the embedded default. No Dagster here.

Modules: ``ingest`` (readers), ``extract`` (bytes -> main text), ``langid``, ``dedup``,
``webtext`` (ingest filters + row schema), ``classifier`` (fastText train / score / eval),
``staged`` (filter stages, recall-driven retraining), ``codestrip``, ``mathtext``,
``seeds`` (local corpora, local WARC builder), ``pipeline`` (shard-set level operations).
"""

"""What the asset catalog shows for every asset, in one place: kinds, owners, code version and
the row contract as ``dagster/column_schema`` (visible before the first materialization).

Stage modules declare their assets; pipelines/definitions.py maps :func:`standardize` over
each module's specs, so a new asset gets the same catalog entries without repeating them.
Materializations add the schema of the set actually written (see ``manifest_metadata``).
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Mapping

import dagster as dg
import pyarrow as pa

from assets.common import column_schema
from corpus.crawl.commits import COMMIT_SCHEMA
from corpus.decontam.core import REMOVED_SCHEMA
from corpus.dedup.pipeline import CLUSTERS_SCHEMA, output_schema
from corpus.instruct.candidates import CANDIDATE_SCHEMA
from corpus.instruct.pipeline import LANGID_SCHEMA, SCORED_SCHEMA, VERIFIED_SCHEMA
from corpus.instruct.sets import DPO_SCHEMA, SFT_SCHEMA
from corpus.instruct.snippets import SNIPPET_SCHEMA
from corpus.mix.mixer import MIX_SCHEMA
from corpus.quality.filter import DROPPED_SCHEMA
from corpus.schemas import CODE_SCHEMA
from corpus.synthetic.generate import SYNTHETIC_SCHEMA
from corpus.textcode.pipeline import GENERAL_SCHEMA, MATH_SCHEMA
from corpus.textcode.webtext import WEB_TEXT_SCHEMA

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_DEDUPED = output_schema(CODE_SCHEMA)

# The row contract of every asset that writes Parquet rows: the columns it guarantees.
# Pass-through stages (quality, decontamination, text-code stages) may carry more columns;
# their materializations report the full written schema.
CONTRACTS: dict[str, pa.Schema] = {
    "code_files": CODE_SCHEMA,
    "code_commits": COMMIT_SCHEMA,
    "code_dedup": _DEDUPED,
    "code_dedup_clusters": CLUSTERS_SCHEMA,
    "code_quality": _DEDUPED,
    "code_quality_dropped": DROPPED_SCHEMA,
    "code_clean": _DEDUPED,
    "code_clean_removed": REMOVED_SCHEMA,
    "web_text": WEB_TEXT_SCHEMA,
    "text_code_stage_1": WEB_TEXT_SCHEMA,
    "text_code_stage_2": WEB_TEXT_SCHEMA,
    "text_code_stage_3": WEB_TEXT_SCHEMA,
    "text_code": WEB_TEXT_SCHEMA,
    "text_code_clean": WEB_TEXT_SCHEMA,
    "text_code_clean_removed": REMOVED_SCHEMA,
    "general_text": GENERAL_SCHEMA,
    "general_clean": GENERAL_SCHEMA,
    "general_clean_removed": REMOVED_SCHEMA,
    "math_text": MATH_SCHEMA,
    "math_clean": MATH_SCHEMA,
    "math_clean_removed": REMOVED_SCHEMA,
    "instruct_snippets": SNIPPET_SCHEMA,
    "instruct_langid": LANGID_SCHEMA,
    "instruct_candidates": CANDIDATE_SCHEMA,
    "instruct_scored": SCORED_SCHEMA,
    "instruct_verified": VERIFIED_SCHEMA,
    "sft_coarse": SFT_SCHEMA,
    "sft_fine": SFT_SCHEMA,
    "sft_fim": SFT_SCHEMA,
    "dpo_pairs": DPO_SCHEMA,
    "synthetic_code": SYNTHETIC_SCHEMA,
    "mixture": MIX_SCHEMA,
}

COLUMN_DOCS: Mapping[str, str] = {
    "id": "stable row id (hash of repo + path + content sha, or url + text)",
    "license": "SPDX id or null",
    "source": "where the row came from (github|git|local|notebook|commit|synthetic, or a text source)",
    "cluster_id": "id of the row kept for this row's duplicate cluster",
    "revision_date": "last commit date of the file's repository",
}

# Kinds of assets that write no Parquet rows (models, tokenizers, token shards, classifiers).
KINDS: Mapping[str, set[str]] = {
    "tokenizer": {"python", "tiktoken"},
    "tokens_stage1": {"python", "numpy"},
    "tokens_stage2": {"python", "numpy"},
    "pretrain_stage1": {"pytorch", "safetensors"},
    "pretrain_stage2": {"pytorch", "safetensors"},
    "model_eval": {"pytorch", "python"},
    "sft_model": {"pytorch", "safetensors"},
    "dpo_model": {"pytorch", "safetensors"},
}

# Who answers for an asset: by group (the data team builds the corpus, training the models).
OWNERS: Mapping[str, list[str]] = {
    "code": ["team:data"],
    "text": ["team:data"],
    "instruct": ["team:data"],
    "train": ["team:training"],
}
_TRAINING_ASSETS = {"pretrain_stage1", "pretrain_stage2", "model_eval", "sft_model", "dpo_model"}

# The library code an asset module runs, beyond the module itself (hashed into code_version).
_LIBRARY = {
    "assets.train": ["training"],
    "assets.posttrain": ["training"],
    "assets.instruct": ["corpus/instruct", "corpus/llm"],
    "assets.synthetic": ["corpus/synthetic", "corpus/llm"],
}
_SHARED = ["corpus/shards.py", "corpus/schemas.py", "corpus/setstore.py", "assets/common.py"]


@functools.cache
def module_code_version(module: str) -> str:
    """Hash of the asset module, its library package and the shard store: a new code version
    whenever code that decides an asset's bytes changes (the UI then flags it as changed)."""
    name = module.rsplit(".", 1)[-1]
    lib = _LIBRARY.get(module) or ([f"corpus/{name}"] if os.path.isdir(os.path.join(_ROOT, "corpus", name)) else [])
    paths = [module.replace(".", "/") + ".py", *lib, *_SHARED]
    h = hashlib.sha256()
    for rel in paths:
        full = os.path.join(_ROOT, rel)
        files = [full] if os.path.isfile(full) else sorted(
            os.path.join(d, f) for d, _, fs in os.walk(full) for f in fs if f.endswith(".py"))
        for f in files:
            h.update(os.path.relpath(f, _ROOT).encode())
            with open(f, "rb") as fh:
                h.update(fh.read())
    return f"{name}-{h.hexdigest()[:12]}"


def standardize(spec: dg.AssetSpec, module: str) -> dg.AssetSpec:
    """``spec`` with the catalog's kinds, owners, code version and column schema filled in
    (anything the stage module set itself wins)."""
    name = spec.key.to_user_string()
    kinds = set(spec.kinds) | KINDS.get(name, set())
    metadata = dict(spec.metadata)
    if name in CONTRACTS:
        kinds.add("parquet")
        metadata.setdefault("dagster/column_schema", column_schema(CONTRACTS[name], COLUMN_DOCS))
    owners = list(spec.owners) or (
        OWNERS["train"] if name in _TRAINING_ASSETS else OWNERS.get(spec.group_name or "", ["team:data"]))
    return spec.replace_attributes(
        kinds=kinds, owners=owners, metadata=metadata,
        code_version=spec.code_version or module_code_version(module),
    )

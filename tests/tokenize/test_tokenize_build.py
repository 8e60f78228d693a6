"""Stage 1 / stage 2 token shards built from a real mixture: determinism, splits, accounting."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from tokdata import trained_tokenizer

from corpus import shards
from corpus.mix import MIX_SCHEMA, discover_inputs, plan_and_write
from corpus.tokenize import build
from corpus.tokenize.encoder import FastEncoder
from corpus.tokenize.format import PAD_SOURCE, TokenShards, validate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mix"))
from mixdata import build_upstreams  # noqa: E402


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    build_upstreams(str(d), py_pkgs=("json", "email", "http"), n_html=20, n_math=60)
    inputs, _ = discover_inputs(str(d))
    mix = str(d / "mixture" / "_all")
    with shards.ShardSetWriter(mix, MIX_SCHEMA) as w:
        plan_and_write(inputs, w, seed=0, max_docs_per_input=60)
    enc = FastEncoder.from_file(str(trained_tokenizer(d / "tokenizer.json")))
    return d, build.mixture_files(mix), enc


def _sha(path):
    return [(f["name"], f["sha256"]) for f in shards.read_manifest(path).side_files]


def test_stage1_deterministic_bytes_and_seed_sensitivity(env, tmp_path):
    _, files, enc = env
    s = build.StageSettings(seq_len=128, val_fraction=0.05, seed=3)
    build.build_stage1(files, enc, str(tmp_path / "a"), str(tmp_path / "av"), s)
    build.build_stage1(files, enc, str(tmp_path / "b"), str(tmp_path / "bv"), s)
    build.build_stage1(files, enc, str(tmp_path / "c"), str(tmp_path / "cv"), build.StageSettings(seq_len=128, seed=4))
    assert _sha(str(tmp_path / "a")) == _sha(str(tmp_path / "b"))
    assert _sha(str(tmp_path / "av")) == _sha(str(tmp_path / "bv"))
    assert _sha(str(tmp_path / "a")) != _sha(str(tmp_path / "c"))


def test_stage1_accounts_for_every_document(env, tmp_path):
    _, files, enc = env
    r = build.build_stage1(files, enc, str(tmp_path / "t"), str(tmp_path / "v"),
                           build.StageSettings(seq_len=128, val_fraction=0.1, fim_rate=0.5))
    train, val = TokenShards(str(tmp_path / "t")), TokenShards(str(tmp_path / "v"))
    assert validate(str(tmp_path / "t")) == [] and validate(str(tmp_path / "v")) == []
    assert train.extra["split"] == "train" and val.extra["split"] == "val" and len(val) > 0
    n_rows = shards.read_manifest(str(Path(files[0]).parent)).rows
    assert sum(r.documents.values()) == n_rows  # nothing skipped in a clean mixture
    docs = {k: train.extra["docs_per_source"][k] + val.extra["docs_per_source"][k] for k in build.TOKEN_SOURCES}
    assert {k: v for k, v in docs.items() if v} == dict(r.documents)
    # EOS count equals the number of documents
    eos = enc.special("<|endoftext|>")
    n_eos = sum(int(((sh.tokens == eos) & (sh.src != PAD_SOURCE)).sum()) for ts in (train, val) for sh in ts.shards)
    assert n_eos == sum(r.documents.values())
    assert r.fim["psm"] + r.fim["spm"] > 0
    assert set(r.train_tokens) == set(build.TOKEN_SOURCES) and r.train_tokens["math"] > 0


def test_val_split_is_by_document_id(env):
    ids = [f"doc-{i}" for i in range(20000)]
    frac = sum(build.is_val(i, 0, 0.01) for i in ids) / len(ids)
    assert 0.007 < frac < 0.013
    assert [build.is_val(i, 0, 0.01) for i in ids[:500]] == [build.is_val(i, 0, 0.01) for i in ids[:500]]
    assert not any(build.is_val(i, 0, 0.0) for i in ids[:500])


def test_stage1_decodes_back_to_the_mixture_text(env, tmp_path):
    _, files, enc = env
    build.build_stage1(files, enc, str(tmp_path / "t"), str(tmp_path / "v"),
                       build.StageSettings(seq_len=256, fim_rate=0.0, val_fraction=0.0))
    ts = TokenShards(str(tmp_path / "t"))
    flat = np.concatenate([sh.tokens[sh.src != PAD_SOURCE] for sh in ts.shards])
    text = enc.decode(flat.tolist())
    first = next(shards.iter_batches(str(Path(files[0]).parent), columns=["text"])).column("text").to_pylist()
    assert text.startswith(first[0] + "<|endoftext|>" + first[1] + "<|endoftext|>")


def test_empty_documents_skipped_and_counted(env, tmp_path):
    _, files, enc = env
    rows = [{"id": "a", "doc_id": "a", "source": "code", "language": "python", "repo": "r", "path": "a.py",
             "text": "", "n_tokens": 1, "epoch": 0},
            {"id": "b", "doc_id": "b", "source": "math", "language": None, "repo": None, "path": None,
             "text": None, "n_tokens": 1, "epoch": 0},
            {"id": "c", "doc_id": "c", "source": "math", "language": None, "repo": None, "path": None,
             "text": "1 + 1 = 2 ✓", "n_tokens": 3, "epoch": 0}]
    mix = str(tmp_path / "mix")
    with shards.ShardSetWriter(mix, MIX_SCHEMA) as w:
        w.write_batch(pa.Table.from_pylist(rows, schema=MIX_SCHEMA))
    f = build.mixture_files(mix)
    r1 = build.build_stage1(f, enc, str(tmp_path / "t1"), str(tmp_path / "v1"), build.StageSettings(seq_len=16))
    assert r1.skipped["empty document"] == 2 and r1.documents == {"math": 1}
    r2 = build.build_stage2(f, enc, str(tmp_path / "t2"), str(tmp_path / "v2"), build.StageSettings(seq_len=32))
    assert r2.skipped["empty document"] == 2 and r2.documents == {"math": 1}


def test_stage2_repo_documents(env, tmp_path):
    _, files, enc = env
    r = build.build_stage2(files, enc, str(tmp_path / "t"), str(tmp_path / "v"),
                           build.StageSettings(seq_len=512, val_fraction=0.0, fim_rate=0.5))
    assert r.repos == 4 and r.repo_docs >= r.repos  # cpython/{json,email,http} + glibc/include
    ts = TokenShards(str(tmp_path / "t"))
    assert ts.extra["stage"] == 2 and validate(str(tmp_path / "t")) == []
    repo_name = enc.special("<|repo_name|>")
    starts = sum(int((sh.tokens == repo_name).sum()) for sh in ts.shards)
    assert starts == r.repo_docs
    text = enc.decode(ts[0].tokens.tolist())
    assert text.startswith("<|repo_name|>") or "<|repo_name|>" in text


def test_stage2_deterministic_bytes(env, tmp_path):
    _, files, enc = env
    s = build.StageSettings(seq_len=256, val_fraction=0.3, seed=1)
    build.build_stage2(files, enc, str(tmp_path / "a"), str(tmp_path / "av"), s)
    build.build_stage2(files, enc, str(tmp_path / "b"), str(tmp_path / "bv"), s)
    assert _sha(str(tmp_path / "a")) == _sha(str(tmp_path / "b"))
    assert _sha(str(tmp_path / "av")) == _sha(str(tmp_path / "bv"))


def test_stage2_needs_mixture_columns(env, tmp_path):
    _, _, enc = env
    p = str(tmp_path / "plain")
    with shards.ShardSetWriter(p, pa.schema([("id", pa.string()), ("text", pa.large_string())])) as w:
        w.write_rows([{"id": "x", "text": "hello"}])
    with pytest.raises(shards.ShardSetError, match="missing column"):
        build.build_stage2(build.mixture_files(p), enc, str(tmp_path / "t"), str(tmp_path / "v"),
                           build.StageSettings(seq_len=32))
    # stage 1 takes any text column
    r = build.build_stage1(build.mixture_files(p), enc, str(tmp_path / "t"), str(tmp_path / "v"),
                           build.StageSettings(seq_len=32))
    assert r.documents == {"other": 1}

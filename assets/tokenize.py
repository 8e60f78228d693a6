"""``tokenizer``, ``tokens_stage1`` (file-level + FIM) and ``tokens_stage2`` (repo-level).

Thin wrappers over corpus.tokenize: train (or adopt) a byte-level BPE, then pack the mixture
into token shard sets plus deterministic validation splits ``tokens_stage{1,2}_val`` that the
evaluation asset reads.
"""


import time

import dagster as dg
import xxhash
from pydantic import Field

from assets.common import counts_table, manifest_metadata, md_table, upstream_hashes
from assets.resources import CorpusResource
from corpus import shards
from corpus.tokenize import build
from corpus.tokenize import format as token_format
from corpus.tokenize.encoder import FastEncoder, sanitize
from corpus.tokenize.tokenizer import SPECIAL_TOKENS, TokenizerError, load_tokenizer, sample_texts, train_bpe

TOKENIZER_FILE = "tokenizer.json"


class TokenizerConfig(dg.Config):
    vocab_size: int = Field(default=0, description="BPE vocabulary size incl. specials; 0 = 8192 (tiny: 512)")
    tokenizer_path: str = Field(
        default="", description="use this existing tokenizer.json (e.g. Qwen2.5's) instead of training one"
    )
    sample_bytes: int = Field(default=0, description="training sample size; 0 = 32 MB (tiny: 1 MB)")
    min_frequency: int = 2
    seed: int = 0
    verify_docs: int = Field(default=200, description="documents used to check fast-encoder == HF ids")


def _sample(corpus: CorpusResource, seed: int, max_bytes: int):
    """A seeded sample of first-copy mixture documents (probability ~ max_bytes / mixture bytes)."""
    mix = corpus.path("mixture")
    total = 0
    for b in shards.iter_batches(mix, columns=["n_tokens", "epoch"]):
        d = b.to_pydict()
        total += sum(n * 4 for n, e in zip(d["n_tokens"], d["epoch"]) if e == 0)
    keep = min(1.0, max_bytes / max(1, total)) * 1.25  # slack; sample_texts caps exactly
    for b in shards.iter_batches(mix, columns=["doc_id", "text", "epoch"]):
        d = b.to_pydict()
        for did, text, ep in zip(d["doc_id"], d["text"], d["epoch"]):
            if ep == 0 and text and xxhash.xxh64_intdigest(f"{seed}\x00tok\x00{did}") / 2**64 < keep:
                yield sanitize(text)[0]


@dg.asset(deps=["mixture"], group_name="train",
          description="Byte-level BPE (Qwen2 pre-tokenizer, Qwen2.5-Coder special tokens) or an adopted tokenizer.json.")
def tokenizer(context: dg.AssetExecutionContext, config: TokenizerConfig, corpus: CorpusResource) -> dg.MaterializeResult:
    out = corpus.path("tokenizer")
    vocab = config.vocab_size or (512 if corpus.tiny else 8192)
    sample_bytes = config.sample_bytes or ((1 << 20) if corpus.tiny else 32 << 20)
    cfg = config.model_dump() | {"vocab_size": vocab, "sample_bytes": sample_bytes}
    if config.tokenizer_path:
        try:
            _, info = load_tokenizer(config.tokenizer_path)
        except TokenizerError as exc:
            raise dg.Failure(description=f"tokenizer: {exc}") from exc
        hashes = [f"file:{info.sha256}"]
    else:
        hashes = upstream_hashes(corpus, ["mixture"], None)
    existing = shards.up_to_date(out, shards.stable_hash(cfg), hashes)
    if existing is not None:
        return dg.MaterializeResult(metadata=manifest_metadata(out, existing, reused=True))
    t0 = time.time()
    sample: list[str] = []
    if config.tokenizer_path:
        with open(config.tokenizer_path, "rb") as fh:
            blob = fh.read()
        mode = f"adopted {config.tokenizer_path}"
        if shards.is_committed(corpus.path("mixture")):  # documents to check the fast encoder on
            sample = list(sample_texts(_sample(corpus, config.seed, 4 << 20), 4 << 20))[: config.verify_docs]
    else:
        sample = list(sample_texts(_sample(corpus, config.seed, sample_bytes), sample_bytes))
        if not sample:
            raise dg.Failure(description=f"tokenizer: the mixture at {corpus.path('mixture')} has no text to train on")
        tok = train_bpe(sample, vocab, config.min_frequency)
        blob = tok.to_str(pretty=False).encode()
        mode = "trained"
    with shards.ShardSetWriter(out, None, config=cfg, input_hashes=hashes) as w:
        w.add_side_file(TOKENIZER_FILE, blob)
        w.extra.update(mode=mode, sample_docs=0 if config.tokenizer_path else len(sample))
    manifest = shards.read_manifest(out)
    assert manifest is not None
    enc = FastEncoder.from_file(shards.side_file(out, TOKENIZER_FILE))
    check = sample[: config.verify_docs] or ["def f(x):\n    return x + 1  # héllo 世界\n"]
    mismatches = enc.verify(check)
    if mismatches:
        raise dg.Failure(description=f"tokenizer: fast encoder differs from HF tokenizers on {len(mismatches)} of "
                                     f"{len(check)} sample docs; this tokenizer.json's merges are not tiktoken-compatible")
    nbytes = sum(len(t.encode()) for t in check)
    ntok = sum(len(x) for x in enc.encode_batch(check))
    return dg.MaterializeResult(
        metadata=manifest_metadata(out, manifest)
        | {
            "mode": mode,
            "vocab_size": enc.vocab_size,
            "special_tokens": md_table(["token", "id"], [[t, enc.special(t)] for t in SPECIAL_TOKENS]),
            "sample_docs": 0 if config.tokenizer_path else len(sample),
            "sample_bytes": 0 if config.tokenizer_path else sum(len(t.encode()) for t in sample),
            "bytes_per_token": round(nbytes / max(1, ntok), 3),
            "fast_encoder_matches_hf": f"{len(check)}/{len(check)} docs",
            "seconds": round(time.time() - t0, 2),
            "tokenizer_sha256": enc.info.sha256[:16],
        }
    )


class TokensConfig(dg.Config):
    seq_len: int = Field(default=0, description="sequence length; 0 = profile default (stage 1: 512, tiny 128; "
                                                "stage 2: twice that). The paper uses 8192 / 32768.")
    fim_rate: float = Field(default=0.5, description="probability a code document (stage 2: repo document) gets FIM")
    spm_rate: float = Field(default=0.5, description="share of FIM samples in SPM order (rest PSM)")
    seed: int = 0
    val_fraction: float = Field(default=0.01, description="documents (stage 2: repos) held out for validation")
    threads: int = Field(default=2, description="encoder threads")
    max_rows: int = Field(default=-1, description="mixture rows to read; -1 = all (tiny: 600)")
    long_files: str = Field(default="split", description="stage 2: 'split' or 'truncate' files longer than seq_len")


def _tokens_asset(stage: int, context, config: TokensConfig, corpus: CorpusResource) -> dg.MaterializeResult:
    name = f"tokens_stage{stage}"
    out, val_out = corpus.path(name), corpus.path(f"{name}_val")
    base = 128 if corpus.tiny else 512
    seq_len = config.seq_len or base * stage
    max_rows = config.max_rows if config.max_rows >= 0 else (600 if corpus.tiny else 0)
    cfg = config.model_dump() | {"seq_len": seq_len, "max_rows": max_rows, "stage": stage}
    if stage == 1:
        cfg.pop("long_files")
    hashes = upstream_hashes(corpus, ["mixture", "tokenizer"], None)
    ch = shards.stable_hash(cfg)
    existing = shards.up_to_date(out, ch, hashes)
    if existing is not None and shards.up_to_date(val_out, ch, hashes) is not None:
        return dg.MaterializeResult(metadata=manifest_metadata(out, existing, reused=True))
    try:
        enc = FastEncoder.from_file(shards.side_file(corpus.path("tokenizer"), TOKENIZER_FILE), threads=config.threads)
    except (TokenizerError, shards.ShardSetError) as exc:
        raise dg.Failure(description=f"{name}: {exc}") from exc
    settings = build.StageSettings(seq_len=seq_len, fim_rate=config.fim_rate, spm_rate=config.spm_rate,
                                   seed=config.seed, val_fraction=config.val_fraction, max_rows=max_rows,
                                   long_files=config.long_files)
    files = build.mixture_files(corpus.path("mixture"))
    t0 = time.time()
    fn = build.build_stage1 if stage == 1 else build.build_stage2
    report = fn(files, enc, out, val_out, settings, config=cfg, input_hashes=hashes)
    dt = time.time() - t0
    manifest = shards.read_manifest(out)
    assert manifest is not None
    mix = shards.read_manifest(corpus.path("mixture"))
    proxy = (mix.extra.get("tokens", {}) if mix else {})
    total_train = sum(report.train_tokens.values()) or 1
    rows = [
        [s, report.documents.get(s, 0), f"{report.train_tokens.get(s, 0):,}", f"{report.val_tokens.get(s, 0):,}",
         f"{report.train_tokens.get(s, 0) / total_train * 100:.2f}%", f"{proxy.get(s, 0):,}"]
        for s in build.TOKEN_SOURCES if report.documents.get(s, 0)
    ]
    cap = report.train_seq * seq_len
    md = manifest_metadata(out, manifest) | {
        "seq_len": seq_len,
        "train_sequences": report.train_seq,
        "val_sequences": report.val_seq,
        "val_path": dg.MetadataValue.path(val_out),
        "train_tokens": sum(report.train_tokens.values()),
        "val_tokens": sum(report.val_tokens.values()),
        "padding_fraction": round(1 - sum(report.train_tokens.values()) / cap, 5) if cap else 0.0,
        "tokens_per_source (exact)": md_table(
            ["source", "documents", "train tokens", "val tokens", "train share", "mixture proxy tokens"], rows),
        "fim": counts_table(dict(report.fim), key="kind"),
        "skip_reasons": counts_table({k: v for k, v in report.skipped.items() if v}),
        "surrogates_replaced": report.surrogates_replaced,
        "tokens_per_second": round((sum(report.train_tokens.values()) + sum(report.val_tokens.values())) / max(dt, 1e-9)),
        "seconds": round(dt, 2),
    }
    if stage == 2:
        md |= {"repos": report.repos, "repo_documents": report.repo_docs, "truncated_tokens": report.truncated_tokens}
    return dg.MaterializeResult(metadata=md)


@dg.asset(deps=["mixture", "tokenizer"], group_name="train",
          description="Stage-1 token shards: file-level documents with FIM, packed to seq_len (+ tokens_stage1_val).")
def tokens_stage1(context: dg.AssetExecutionContext, config: TokensConfig, corpus: CorpusResource) -> dg.MaterializeResult:
    return _tokens_asset(1, context, config, corpus)


@dg.asset(deps=["mixture", "tokenizer"], group_name="train",
          description="Stage-2 token shards: repo-level documents (dependency order, repo FIM) (+ tokens_stage2_val).")
def tokens_stage2(context: dg.AssetExecutionContext, config: TokensConfig, corpus: CorpusResource) -> dg.MaterializeResult:
    return _tokens_asset(2, context, config, corpus)


def _valid(name: str):
    @dg.asset_check(asset=name, name=f"{name}_well_formed",
                    description="token ids < vocab, document indices and padding consistent (train and val)")
    def check(corpus: CorpusResource) -> dg.AssetCheckResult:
        problems = []
        for p in (corpus.path(name), corpus.path(f"{name}_val")):
            try:
                problems += [f"{p}: {x}" for x in token_format.validate(p)]
            except shards.ShardSetError as exc:
                problems.append(str(exc))
        return dg.AssetCheckResult(passed=not problems, metadata={"problems": "\n".join(problems) or "none"})

    return check


defs = dg.Definitions(
    assets=[tokenizer, tokens_stage1, tokens_stage2],
    asset_checks=[_valid("tokens_stage1"), _valid("tokens_stage2")],
)

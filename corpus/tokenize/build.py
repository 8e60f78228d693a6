"""Turn a mixture into packed token shard sets (stage 1: file-level + FIM; stage 2: repo-level).

Both stages stream the mixture batch by batch, send every document (or FIM piece) of a batch
through the fast encoder in one call, pack into ``seq_len`` rows and write train and validation
token shard sets. The validation split is chosen by a seeded hash of ``doc_id`` (stage 1) or of
the repository (stage 2), so every copy of an up-sampled document falls on the same side and
the split does not depend on sharding or order.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import xxhash

from corpus import safety, shards
from corpus.mix.budget import SOURCES
from corpus.tokenize.encoder import FastEncoder
from corpus.tokenize.fim import doc_rng, fim_layout, split_fim
from corpus.tokenize.format import TokenShardWriter
from corpus.tokenize.pack import Packer
from corpus.tokenize.repo import RepoFile, order_files, repo_documents
from corpus.tokenize.tokenizer import ENDOFTEXT

#: Source index order of every token shard set (``src`` arrays index into this list).
TOKEN_SOURCES: list[str] = [*SOURCES, "other"]
FIM_SOURCES = ("code", "synthetic")


@dataclass
class StageSettings:
    seq_len: int
    fim_rate: float = 0.5
    spm_rate: float = 0.5
    seed: int = 0
    val_fraction: float = 0.01
    fim_sources: Sequence[str] = FIM_SOURCES
    max_rows: int = 0  # cap on mixture rows read (tiny profile); 0 = all
    long_files: str = "split"  # stage 2: "split" | "truncate" files longer than seq_len
    batch_rows: int = 1024
    shard_seqs: int = 4096


@dataclass
class StageReport:
    """Counters for asset metadata (train and val together unless named)."""

    documents: Counter = field(default_factory=Counter)  # per source
    fim: Counter = field(default_factory=Counter)  # psm / spm
    skipped: Counter = field(default_factory=Counter)
    train_seq: int = 0
    val_seq: int = 0
    train_tokens: dict[str, int] = field(default_factory=dict)
    val_tokens: dict[str, int] = field(default_factory=dict)
    truncated_tokens: int = 0
    repos: int = 0
    repo_docs: int = 0
    surrogates_replaced: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def is_val(key: str, seed: int, fraction: float) -> bool:
    return fraction > 0 and xxhash.xxh64_intdigest(f"val\x00{seed}\x00{key}") % 1_000_000 < fraction * 1_000_000


def _source_index(name: str | None) -> int:
    return TOKEN_SOURCES.index(name) if name in TOKEN_SOURCES else TOKEN_SOURCES.index("other")


def token_extra(enc: FastEncoder) -> dict[str, Any]:
    return {
        "vocab_size": enc.vocab_size,
        "eos_id": enc.special(ENDOFTEXT),
        "pad_id": enc.special(ENDOFTEXT),
        "tokenizer_sha256": enc.info.sha256,
        "special_tokens": dict(enc.info.special_tokens),
    }


class _Split:
    """A packer + writer pair (train or val)."""

    def __init__(self, path: str, s: StageSettings, enc: FastEncoder, config: Mapping[str, Any],
                 input_hashes: Sequence[str], extra: Mapping[str, Any], inputs: Sequence[str] = ()) -> None:
        ex = token_extra(enc) | dict(extra)
        self.packer = Packer(s.seq_len, ex["eos_id"], ex["pad_id"])
        self.surrogates_before = 0
        self.writer = TokenShardWriter(path, s.seq_len, TOKEN_SOURCES, config=config, input_hashes=input_hashes,
                                       extra=ex, shard_seqs=s.shard_seqs, inputs=inputs)

    def add(self, ids: list[int], src: int) -> None:
        self.packer.add(ids, src)
        self.writer.count_document(src)
        if self.packer.ready():
            for rows in self.packer.drain():
                self.writer.add(*rows)

    def finish(self) -> None:
        for rows in self.packer.drain(final=True):
            self.writer.add(*rows)
        self.writer.finish()


def _text_col(names: Sequence[str], where: str) -> str:
    for c in ("text", "content"):
        if c in names:
            return c
    raise shards.ShardSetError(f"{where}: needs a 'text' or 'content' column (has {list(names)})")


@contextmanager
def _open_splits(train_path, val_path, s, enc, config, input_hashes, stage,
                 report: StageReport, inputs: Sequence[str] = ()) -> Iterator[tuple[_Split, _Split]]:
    """The train / val writers of one stage build, shared by both stages: committed as one unit
    (:func:`_finish`, then ``shards.commit_together``) when the body ends, both aborted if
    anything raises."""
    extra = {"stage": stage, "fim_rate": s.fim_rate, "spm_rate": s.spm_rate, "val_fraction": s.val_fraction,
             "seed": s.seed}
    train = _Split(train_path, s, enc, config, input_hashes, extra | {"split": "train"}, inputs)
    val = _Split(val_path, s, enc, config, input_hashes, extra | {"split": "val"}, inputs)
    with shards.commit_together(train.writer.shard_writer, val.writer.shard_writer):
        train.surrogates_before = enc.stats.surrogates_replaced
        yield train, val
        _finish(train, val, report, enc)


def _finish(train: _Split, val: _Split, report: StageReport, enc: FastEncoder) -> None:
    report.surrogates_replaced = enc.stats.surrogates_replaced - train.surrogates_before
    for sp in (train, val):
        sp.writer.extra.update(surrogates_replaced=report.surrogates_replaced,
                               skipped=dict(report.skipped), fim=dict(report.fim))
    train.finish()
    val.finish()
    mt, mv = train.writer.extra, val.writer.extra
    report.train_seq, report.val_seq = mt["n_seq"], mv["n_seq"]
    report.train_tokens, report.val_tokens = mt["tokens_per_source"], mv["tokens_per_source"]


def build_stage1(
    files: Sequence[str], enc: FastEncoder, train_path: str, val_path: str, s: StageSettings,
    *, config: Mapping[str, Any] | None = None, input_hashes: Sequence[str] = (), inputs: Sequence[str] = (),
) -> StageReport:
    """File-level stage: every mixture row is one document, FIM on code sources."""
    report = StageReport()
    special = enc.info.special_tokens
    with _open_splits(train_path, val_path, s, enc, config or {}, input_hashes, 1, report,
                      [*files, *inputs]) as (train, val):
        seen = 0
        for batch in _iter_rows(files, s.batch_rows, report):
            if s.max_rows and seen >= s.max_rows:
                break
            if s.max_rows:
                batch = batch.slice(0, s.max_rows - seen)
            seen += batch.num_rows
            col = _text_col(batch.schema.names, files[0])
            texts = batch.column(col).to_pylist()
            ids = batch.column("id").to_pylist() if "id" in batch.schema.names else [None] * len(texts)
            doc_ids = batch.column("doc_id").to_pylist() if "doc_id" in batch.schema.names else ids
            srcs = batch.column("source").to_pylist() if "source" in batch.schema.names else ["other"] * len(texts)
            pieces: list[str] = []
            plan = []
            for t, rid, did, src in zip(texts, ids, doc_ids, srcs):
                if not t:
                    report.skipped["empty document"] += 1
                    continue
                key = did or rid or xxhash.xxh64_hexdigest(t.encode("utf-8", "surrogatepass"))
                split = None
                if src in s.fim_sources and s.fim_rate > 0:
                    split = split_fim(t, doc_rng(s.seed, rid or key, "fim"), s.fim_rate, s.spm_rate)
                plan.append((key, src, split, len(pieces)))
                pieces += [split.prefix, split.middle, split.suffix] if split else [t]
            encoded = enc.encode_batch(pieces)
            for key, src, split, at in plan:
                if split is not None:
                    doc = fim_layout(split.mode, encoded[at], encoded[at + 1], encoded[at + 2], special)
                    report.fim[split.mode] += 1
                else:
                    doc = encoded[at]
                si = _source_index(src)
                report.documents[TOKEN_SOURCES[si]] += 1
                (val if is_val(key, s.seed, s.val_fraction) else train).add(doc, si)
    return report


_WANTED = ("id", "doc_id", "source", "repo", "text", "content")


def _iter_rows(files: Sequence[str], batch_rows: int, report: StageReport) -> Iterator[pa.RecordBatch]:
    """Batches of the columns the stages use (whatever subset each file has), text checked for
    UTF-8 (rows that are not are counted in ``report.skipped`` or fail, per the policy)."""
    check = safety.TextCheck()
    check.skipped = report.skipped  # counted where the rest of the stage's skips are
    for f in files:
        names = shards.parquet_file_schema(f).names
        cols = [c for c in _WANTED if c in names]
        text = _text_col(cols, f)
        row = 0
        for batch in shards.iter_parquet_file(f, columns=cols, batch_size=batch_rows):
            n = batch.num_rows
            batch = safety.validate_text(batch, [text], f, check, first_row=row)
            row += n
            yield batch


STAGE2_COLUMNS = ("repo", "path", "text", "doc_id", "source", "language", "epoch")


def _check_stage2_input(files: Sequence[str]) -> None:
    for f in files:
        names = shards.parquet_file_schema(f).names
        missing = [c for c in STAGE2_COLUMNS if c not in names]
        if missing:
            raise shards.ShardSetError(
                f"{f}: stage 2 (repo-level) needs mixture rows; missing column(s) {missing} "
                "(build the input with the mixture asset or `codecorpus mix`)"
            )


def _repo_sorted(files: Sequence[str], code_sources: Sequence[str], tmpdir: str) -> Iterator[pa.RecordBatch]:
    """Code rows with a repo, first copy only, sorted by (repo, path, doc_id) out of core (DuckDB)."""
    import duckdb

    con = duckdb.connect(config={"temp_directory": tmpdir, "memory_limit": "1GB", "threads": 2})
    try:
        srcs = ", ".join(f"'{x}'" for x in code_sources)
        q = (
            "SELECT repo, path, text, doc_id, source, language FROM read_parquet(?) "
            f"WHERE source IN ({srcs}) AND epoch = 0 AND repo IS NOT NULL AND repo <> '' "
            "ORDER BY repo, path, doc_id"
        )
        res = con.execute(q, [list(files)])
        # duckdb >= 1.4 renamed fetch_record_batch to to_arrow_reader
        reader = res.to_arrow_reader(2048) if hasattr(res, "to_arrow_reader") else res.fetch_record_batch(2048)
        yield from reader
    finally:
        con.close()


def build_stage2(
    files: Sequence[str], enc: FastEncoder, train_path: str, val_path: str, s: StageSettings,
    *, config: Mapping[str, Any] | None = None, input_hashes: Sequence[str] = (),
    code_sources: Sequence[str] = FIM_SOURCES, include_other: bool = True, inputs: Sequence[str] = (),
) -> StageReport:
    """Repo-level stage: code rows grouped by repo (dependency order, repo-level FIM, split to
    ``seq_len``); other rows (text, math, code without a repo) stay file-level documents."""
    _check_stage2_input(files)
    report = StageReport()
    special = enc.info.special_tokens
    max_doc = s.seq_len - 1  # room for the EOS the packer appends
    with _open_splits(train_path, val_path, s, enc, config or {}, input_hashes, 2, report,
                      [*files, *inputs]) as (train, val):
        with tempfile.TemporaryDirectory(prefix="codecorpus-repo-sort-") as tmp:
            repo_rows = 0
            cur_repo: str | None = None
            group: list[RepoFile] = []

            def flush(repo: str, group: list[RepoFile]) -> None:
                ordered = order_files(group, seed=s.seed)
                docs = repo_documents(repo, ordered, enc.encode_batch, special, max_doc,
                                      fim_rate=s.fim_rate, spm_rate=s.spm_rate, seed=s.seed,
                                      long_files=s.long_files)
                report.repos += 1
                split = val if is_val(f"repo\x00{repo}", s.seed, s.val_fraction) else train
                for d in docs:
                    si = _source_index(group[0].source)
                    split.add(d.ids, si)
                    report.repo_docs += 1
                    report.truncated_tokens += d.truncated_tokens
                    report.documents[TOKEN_SOURCES[si]] += 1
                    if d.fim_file:
                        report.fim["repo"] += 1

            capped = False
            for batch in _repo_sorted(files, code_sources, tmp):
                if capped:
                    break
                for repo, path, text, did, src, lang in zip(*(batch.column(i).to_pylist() for i in range(6))):
                    if s.max_rows and repo_rows >= s.max_rows and repo != cur_repo:
                        capped = True
                        break
                    repo_rows += 1
                    if not text:
                        report.skipped["empty document"] += 1
                        continue
                    if repo != cur_repo and group:
                        flush(cur_repo, group)  # type: ignore[arg-type]
                        group = []
                    cur_repo = repo
                    group.append(RepoFile(path or "", text, lang, did, src))
            if group:
                flush(cur_repo, group)  # type: ignore[arg-type]
        if include_other:
            _stage2_other(files, enc, train, val, s, report, code_sources)
    return report


def _stage2_other(files, enc, train, val, s: StageSettings, report: StageReport, code_sources) -> None:
    """Rows that are not part of a repo document: file-level documents, no FIM (a long one
    continues in the next row, as in stage 1)."""
    seen = 0
    for batch in _iter_rows(files, s.batch_rows, report):
        names = batch.schema.names
        srcs = batch.column("source").to_pylist() if "source" in names else ["other"] * batch.num_rows
        repos = batch.column("repo").to_pylist() if "repo" in names else [None] * batch.num_rows
        keep = [i for i, (src, repo) in enumerate(zip(srcs, repos)) if not (src in code_sources and repo)]
        if s.max_rows:
            keep = keep[: max(0, s.max_rows - seen)]
        seen += len(keep)
        if not keep:
            if s.max_rows and seen >= s.max_rows:
                break
            continue
        sub = batch.take(pa.array(keep, pa.int64()))
        texts = sub.column(_text_col(names, files[0])).to_pylist()
        dids = sub.column("doc_id" if "doc_id" in names else "id").to_pylist()
        srcs = [srcs[i] for i in keep]
        nonempty = [i for i, t in enumerate(texts) if t]
        if len(texts) > len(nonempty):
            report.skipped["empty document"] += len(texts) - len(nonempty)
        encoded = enc.encode_batch([texts[i] for i in nonempty])
        for i, ids in zip(nonempty, encoded):
            si = _source_index(srcs[i])
            report.documents[TOKEN_SOURCES[si]] += 1
            (val if is_val(dids[i] or "", s.seed, s.val_fraction) else train).add(ids, si)


def mixture_files(path: str) -> list[str]:
    """Parquet files of a committed mixture (or any folder of Parquet files, for the CLI)."""
    files = shards.list_parquet_inputs(path)
    return [os.path.abspath(f) for f in files]

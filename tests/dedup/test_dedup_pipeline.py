"""End-to-end dedup on real files: vendored near duplicates cluster, unrelated files do not,
the keep-policy chooses, outputs are deterministic across runs and shard splits, bad input is
handled or named."""

import os

import numpy as np
import pyarrow as pa
import pytest
from dedup_fixtures import (
    code_row,
    near_duplicate_pairs,
    read,
    read_set,
    rows_from_files,
    unrelated_files,
    when,
    write_code_set,
    write_raw_parquet,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus import safety, shards
from corpus.dedup import REASONS, DedupConfig, DedupInputError, run_dedup


def dedup(tmp_path, rows_or_path, name="run", shard_rows=50_000, **cfg):
    os.makedirs(tmp_path, exist_ok=True)
    src = rows_or_path if isinstance(rows_or_path, str) else write_code_set(
        str(tmp_path / f"{name}_in"), rows_or_path, shard_rows=shard_rows)
    files = shards.list_parquet_inputs(src)
    out, cl = str(tmp_path / f"{name}_out"), str(tmp_path / f"{name}_clusters")
    stats = run_dedup(files, out, cl, DedupConfig(**cfg))
    return stats, read_set(out), read_set(cl)


def fate(clusters: pa.Table) -> dict[str, tuple[str, bool, str]]:
    return {i: (c, k, r) for i, c, k, r in zip(*(clusters.column(n).to_pylist()
                                                   for n in ("id", "cluster_id", "kept", "reason")))}


@pytest.mark.parametrize("verify", [False, True])
def test_vendored_near_duplicates_cluster_and_unrelated_do_not(tmp_path, verify):
    pairs = near_duplicate_pairs(lo=0.9, limit=6)
    near_rows = [(code_row(a, read(a)), code_row(b, read(b))) for a, b, _ in pairs]
    unrelated = rows_from_files(unrelated_files(12))
    rows = [r for p in near_rows for r in p] + unrelated
    stats, kept, clusters = dedup(tmp_path, rows, verify=verify)
    f = fate(clusters)
    for ra, rb in near_rows:
        (ca, ka, _), (cb, kb, _) = f[ra["id"]], f[rb["id"]]
        assert ca == cb, f"{ra['path']} and {rb['path']} should be one cluster"
        assert ka != kb and {f[ra["id"]][2], f[rb["id"]][2]} == {"kept_cluster", "near_duplicate"}
    for r in unrelated:
        assert f[r["id"]] == (r["id"], True, "unique")
    assert stats.near_duplicates == len(near_rows) and stats.exact_duplicates == 0
    assert stats.clusters == len(near_rows) and stats.largest_cluster == 2
    assert kept.num_rows == len(rows) - len(near_rows) == stats.kept_rows
    assert clusters.num_rows == len(rows)
    if verify:
        assert stats.verified_pairs == stats.candidate_pairs >= len(near_rows)


def test_verification_drops_false_positives(tmp_path):
    pairs = near_duplicate_pairs(lo=0.9, limit=3)
    rows = [code_row(p, read(p)) for a, b, _ in pairs for p in (a, b)] + rows_from_files(unrelated_files(12))
    # Deliberately loose banding (many 1-row bands): plenty of candidates below the threshold.
    loose = dict(threshold=0.9, bands=200, rows=1)
    s_raw, kept_raw, _ = dedup(tmp_path, rows, name="raw", **loose)
    s_ver, kept_ver, _ = dedup(tmp_path, rows, name="ver", verify=True, **loose)
    assert s_ver.false_positives > 0 and s_ver.verified_pairs == s_ver.candidate_pairs
    assert s_ver.near_duplicates == len(pairs) < s_raw.near_duplicates
    assert kept_ver.num_rows == len(rows) - len(pairs) > kept_raw.num_rows


def test_exact_duplicates_after_normalization_and_keep_policy(tmp_path):
    text = read(unrelated_files(1)[0])
    crlf = text.replace("\n", "   \r\n") + "\n\n"
    rows = [
        code_row("a.py", text, license="GPL-3.0", stars=900, forks=50),      # most stars, not permissive
        code_row("b.py", crlf, license="MIT", stars=10, forks=1, revision_date=when(2020)),
        code_row("c.py", text, license="MIT", stars=10, forks=1, revision_date=when(2023)),  # newest: kept
        code_row("d.py", text, license="Apache-2.0", stars=10, forks=0, revision_date=when(2024)),
    ]
    stats, kept, clusters = dedup(tmp_path, rows)
    f = fate(clusters)
    keep_id = rows[2]["id"]
    assert kept.column("id").to_pylist() == [keep_id]
    assert kept.column("cluster_id").to_pylist() == [keep_id]
    assert kept.column("path").to_pylist() == ["c.py"]  # other columns pass through
    assert {f[r["id"]] for r in rows if r["id"] != keep_id} == {(keep_id, False, "exact_duplicate")}
    assert f[keep_id] == (keep_id, True, "kept_cluster")
    assert stats.exact_duplicates == 3 and stats.near_duplicates == 0


def test_keep_policy_is_configurable_and_smallest_id_breaks_ties(tmp_path):
    text = read(unrelated_files(1)[0])
    rows = [code_row(f"{i}.py", text, stars=s) for i, s in enumerate([5, 50, 50])]
    _, kept, _ = dedup(tmp_path, rows, name="stars")
    assert kept.column("id").to_pylist() == [min(rows[1]["id"], rows[2]["id"])]
    _, kept_id, _ = dedup(tmp_path, rows, name="idonly", keep_policy=("id",))
    assert kept_id.column("id").to_pylist() == [min(r["id"] for r in rows)]


def test_short_documents_kept_and_not_collapsed(tmp_path):
    shorts = ["x = 1", "import os", "pass", "", "# just a comment", "print(2)", "y=3\n"]
    rows = [code_row(f"s{i}.py", t) for i, t in enumerate(shorts)]
    rows.append(code_row("dup.py", "import os\n"))  # an exact duplicate of a short file
    stats, kept, clusters = dedup(tmp_path, rows)
    f = fate(clusters)
    assert kept.num_rows == len(shorts)
    assert len({f[r["id"]][0] for r in rows}) == len(shorts)
    assert sorted(r for _, _, r in f.values()).count("short_document") == len(shorts) - 1
    assert stats.short_documents == len(rows) and stats.exact_duplicates == 1 and stats.candidate_pairs == 0


def test_bad_rows_empty_huge_invalid_utf8_duplicate_ids_null_content(tmp_path):
    base = read(unrelated_files(1)[0])
    huge = "total = total + value_%d * factor; " * 60_000 % tuple(range(60_000))
    rows = [
        code_row("empty1.py", ""), code_row("empty2.py", ""),
        code_row("huge.py", huge), code_row("huge_copy.py", huge.replace("factor", "factr", 10)),
        code_row("ok.py", base),
        dict(code_row("nul.py", None), content=None),
    ]
    dup = dict(code_row("other.py", base + "\n# changed\n"), id=rows[4]["id"])  # repeated id
    rows.append(dup)
    path = write_code_set(str(tmp_path / "in"), rows)
    # One row with bytes that are not UTF-8 (lone surrogate, stray 0xff), as a raw Parquet file.
    bad = (b"def broken(x):\xed\xa0\x80\n    return x\xff + 1\n" * 30)
    offsets = pa.array([0, len(bad)], pa.int64())
    content = pa.LargeStringArray.from_buffers(1, offsets.buffers()[1], pa.py_buffer(bad))
    bad_row = code_row("bad.py", "placeholder")
    cols = {n: pa.array([bad_row[n]], type=t) for n, t in zip(read_set(path).schema.names,
                                                              read_set(path).schema.types)}
    cols["content"] = content
    write_raw_parquet(str(tmp_path / "raw" / "a.parquet"), read_set(path))
    write_raw_parquet(str(tmp_path / "raw" / "b.parquet"), pa.table(cols, schema=read_set(path).schema))
    stats, kept, clusters = dedup(tmp_path, str(tmp_path / "raw"))
    f = fate(clusters)
    assert clusters.num_rows == len(rows) + 1
    assert f[rows[1]["id"]][2] == "exact_duplicate" and f[rows[0]["id"]][1]  # one empty file kept
    assert f[rows[3]["id"]][0] == rows[2]["id"] or f[rows[2]["id"]][0] == rows[3]["id"]  # huge near dups
    assert f[rows[5]["id"]] == (rows[5]["id"], True, "null_content")
    reasons = clusters.column("reason").to_pylist()
    assert reasons.count("duplicate_id") == 1 and set(reasons) <= set(REASONS)
    assert stats.duplicate_ids == 1 and stats.null_content == 1
    assert kept.column("id").to_pylist().count(rows[4]["id"]) == 1
    # The non-UTF-8 row is not passed on: dropped with its reason, counted, never a representative.
    bad_id = bad_row["id"]
    assert f[bad_id] == (bad_id, False, "invalid_utf8")
    assert stats.invalid_utf8 == 1 and stats.reasons["invalid_utf8"] == 1
    assert bad_id not in kept.column("id").to_pylist()
    # Policy "fail": the error names the file and the row.
    with pytest.raises(safety.InvalidTextError, match=r"b\.parquet: column 'content' row\(s\) 0 "):
        run_dedup(shards.list_parquet_inputs(str(tmp_path / "raw")), str(tmp_path / "out_fail"),
                  config=DedupConfig(invalid_text="fail"))


def test_missing_content_column_names_the_file(tmp_path):
    good = write_raw_parquet(str(tmp_path / "in" / "a.parquet"), pa.table({"id": ["1"], "content": ["x = 1"]}))
    bad = write_raw_parquet(str(tmp_path / "in" / "b.parquet"), pa.table({"id": ["2"], "text": ["y = 2"]}))
    with pytest.raises(DedupInputError, match=r"b\.parquet: missing required column\(s\) \['content'\]"):
        run_dedup([good, bad], str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")


def test_malformed_parquet_and_null_id_are_named(tmp_path):
    junk = tmp_path / "in" / "junk.parquet"
    junk.parent.mkdir()
    junk.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DedupInputError, match="junk.parquet: not a readable Parquet file"):
        run_dedup([str(junk)], str(tmp_path / "out"))
    nid = write_raw_parquet(str(tmp_path / "in2" / "n.parquet"),
                            pa.table({"id": ["a", None], "content": ["x = 1", "y = 2"]}))
    with pytest.raises(DedupInputError, match=r"n\.parquet: row 1: `id` is null"):
        run_dedup([nid], str(tmp_path / "out"))
    other = write_raw_parquet(str(tmp_path / "in3" / "o.parquet"),
                              pa.table({"id": ["z"], "content": ["q"], "extra": [1]}))
    first = write_raw_parquet(str(tmp_path / "in3" / "f.parquet"), pa.table({"id": ["y"], "content": ["q"]}))
    with pytest.raises(DedupInputError, match="o.parquet: columns"):
        run_dedup([first, other], str(tmp_path / "out"))


def test_minimal_schema_passes_extra_columns_and_replaces_cluster_id(tmp_path):
    texts = [read(p) for p in unrelated_files(3)]
    t = pa.table({"id": ["a", "b", "c", "d"], "content": texts + [texts[0]], "score": [1.0, 2.0, 3.0, 4.0],
                  "cluster_id": ["old"] * 4})
    src = write_raw_parquet(str(tmp_path / "in" / "x.parquet"), t)
    stats, kept, clusters = dedup(tmp_path, src)
    assert kept.schema.names == ["id", "content", "score", "cluster_id"]
    assert kept.column("score").to_pylist() == [1.0, 2.0, 3.0]
    assert kept.column("cluster_id").to_pylist() == ["a", "b", "c"]
    assert fate(clusters)["d"] == ("a", False, "exact_duplicate")


def _corpus():
    pairs = near_duplicate_pairs(lo=0.8, limit=4)
    rows = [code_row(p, read(p), stars=i % 3) for i, (a, b, _) in enumerate(pairs) for p in (a, b)]
    rows += rows_from_files(unrelated_files(8))
    rows.append(code_row("copy.py", rows[0]["content"] + "\n\n"))
    rows += [code_row(f"short{i}.py", f"v{i} = {i}") for i in range(3)]
    return rows


CORPUS: list = []


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(1, 9), st.integers(1, 9), st.randoms(use_true_random=False))
def test_identical_across_runs_and_shard_splits(tmp_path_factory, shard_rows, batch_rows, rnd):
    if not CORPUS:
        CORPUS.extend(_corpus())
    tmp = tmp_path_factory.mktemp("split")
    ref_stats, ref_kept, ref_cl = dedup(tmp, CORPUS, name="ref")
    stats, kept, cl = dedup(tmp, CORPUS, name="split", shard_rows=shard_rows, batch_rows=batch_rows)
    assert kept.equals(ref_kept) and cl.equals(ref_cl)
    assert stats.reasons == ref_stats.reasons and stats.cluster_sizes == ref_stats.cluster_sizes
    # Same input and config: byte-identical shards.
    again = str(tmp / "again")
    run_dedup(shards.list_parquet_inputs(str(tmp / "ref_in")), again, None, DedupConfig())
    a = shards.read_manifest(again)
    b = shards.read_manifest(str(tmp / "ref_out"))
    assert [f["sha256"] for f in a.files] == [f["sha256"] for f in b.files]
    # Row order of the input does not change which rows are kept.
    shuffled = list(CORPUS)
    rnd.shuffle(shuffled)
    _, kept_sh, cl_sh = dedup(tmp, shuffled, name="shuffled")
    assert sorted(kept_sh.column("id").to_pylist()) == sorted(ref_kept.column("id").to_pylist())
    assert dict(zip(cl_sh.column("id").to_pylist(), cl_sh.column("cluster_id").to_pylist())) == dict(
        zip(ref_cl.column("id").to_pylist(), ref_cl.column("cluster_id").to_pylist()))


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(range(6)), min_size=2, max_size=10))
def test_identical_documents_always_cluster(tmp_path_factory, picks):
    texts = [read(p) for p in unrelated_files(6)]
    rows = [code_row(f"f{i}.py", texts[k]) for i, k in enumerate(picks)]
    _, kept, cl = dedup(tmp_path_factory.mktemp("ident"), rows)
    assert kept.num_rows == len(set(picks))
    by_text: dict[int, set] = {}
    for k, c in zip(picks, cl.column("cluster_id").to_pylist()):
        by_text.setdefault(k, set()).add(c)
    assert all(len(v) == 1 for v in by_text.values())
    assert len({next(iter(v)) for v in by_text.values()}) == len(by_text)


def test_empty_input(tmp_path):
    stats, kept, cl = dedup(tmp_path, [])
    assert stats.input_rows == 0 and kept.num_rows == 0 and cl.num_rows == 0
    assert np.isclose(stats.kept_rows, 0)


def test_paths_with_quotes_and_spaces(tmp_path):
    base = tmp_path / "o'brien data"
    rows = rows_from_files(unrelated_files(3))
    rows.append(code_row("copy.py", rows[0]["content"]))
    stats, kept, _ = dedup(base, rows)
    assert stats.exact_duplicates == 1 and kept.num_rows == 3

"""Shard store: atomic commit, streaming reads, manifests, no-op re-runs, clear errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus import shards
from corpus.schemas import CODE_SCHEMA, code_row_id, content_sha256

SCHEMA = pa.schema([("id", pa.string()), ("n", pa.int64())])


def _rows(n: int, start: int = 0) -> list[dict]:
    return [{"id": f"r{i}", "n": i} for i in range(start, start + n)]


def test_write_commit_read_roundtrip(tmp_path):
    path = shards.shard_set_path(str(tmp_path), "asset", "python")
    with shards.ShardSetWriter(path, SCHEMA, config={"a": 1}, input_hashes=["h2", "h1"], shard_rows=40,
                               row_group_rows=16) as w:
        for start in range(0, 100, 25):
            w.write_rows(_rows(25, start))
    m = shards.read_manifest(path)
    assert m is not None and m.rows == 100
    assert [f["rows"] for f in m.files] == [40, 40, 20]
    assert m.input_hashes == ["h1", "h2"]
    assert m.config_hash == shards.stable_hash({"a": 1})
    # row groups are bounded, compression is zstd
    md = pq.ParquetFile(os.path.join(path, "part-00000.parquet")).metadata
    assert max(md.row_group(i).num_rows for i in range(md.num_row_groups)) <= 16
    assert md.row_group(0).column(0).compression == "ZSTD"
    got = [r["n"] for b in shards.iter_batches(path, batch_size=7) for r in b.to_pylist()]
    assert got == list(range(100))
    assert shards.committed_partitions(str(tmp_path), "asset") == ["python"]


def test_exception_leaves_previous_set_untouched(tmp_path):
    path = shards.shard_set_path(str(tmp_path), "asset")
    with shards.ShardSetWriter(path, SCHEMA) as w:
        w.write_rows(_rows(3))
    before = shards.read_manifest(path)
    with pytest.raises(RuntimeError):
        with shards.ShardSetWriter(path, SCHEMA) as w:
            w.write_rows(_rows(50))
            raise RuntimeError("boom")
    assert shards.read_manifest(path).content_hash == before.content_hash
    assert sorted(n for n in os.listdir(tmp_path / "asset") if not n.startswith(".")) == ["_all"]
    # the aborted version is gone; only the current one (and the lock file) remain
    assert sorted(os.listdir(tmp_path / "asset" / "._all.versions")) == ["_lock", "v-00001"]


def test_killed_writer_leaves_no_visible_set(tmp_path):
    """SIGKILL in the middle of a write: nothing committed, readers refuse, a re-run succeeds."""
    script = textwrap.dedent(
        f"""
        import os, signal, pyarrow as pa
        from corpus import shards
        w = shards.ShardSetWriter({str(tmp_path / 'asset' / '_all')!r}, pa.schema([("n", pa.int64())]), shard_rows=10)
        w.__enter__()
        w.write_rows([{{"n": i}} for i in range(25)])
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=os.getcwd())
    assert proc.returncode == -signal.SIGKILL
    path = str(tmp_path / "asset" / "_all")
    assert not os.path.exists(path)
    assert shards.committed_partitions(str(tmp_path), "asset") == []
    with pytest.raises(shards.ShardSetError, match="never committed"):
        list(shards.iter_batches(path))
    assert shards.clean_stale_temps(path) == 1
    with shards.ShardSetWriter(path, pa.schema([("n", pa.int64())])) as w:
        w.write_rows([{"n": 1}])
    assert shards.count_rows(path) == 1


def test_same_input_same_bytes_and_up_to_date(tmp_path):
    def build(root):
        path = shards.shard_set_path(str(root), "asset", "java")
        with shards.ShardSetWriter(path, SCHEMA, config={"k": "v"}, input_hashes=["x"]) as w:
            w.write_rows(_rows(500))
        return path

    a, b = build(tmp_path / "a"), build(tmp_path / "b")
    for name in os.listdir(a):
        if name.endswith(".parquet"):
            assert open(os.path.join(a, name), "rb").read() == open(os.path.join(b, name), "rb").read()
    assert shards.read_manifest(a).content_hash == shards.read_manifest(b).content_hash
    assert shards.up_to_date(a, shards.stable_hash({"k": "v"}), ["x"]) is not None
    assert shards.up_to_date(a, shards.stable_hash({"k": "other"}), ["x"]) is None
    assert shards.up_to_date(a, shards.stable_hash({"k": "v"}), ["y"]) is None


def test_empty_set_keeps_schema(tmp_path):
    path = shards.shard_set_path(str(tmp_path), "code", "go")
    with shards.ShardSetWriter(path, CODE_SCHEMA):
        pass
    assert shards.count_rows(path) == 0
    assert shards.read_schema(path).names == CODE_SCHEMA.names
    assert list(shards.iter_batches(path)) == []


def test_schema_mismatch_is_a_clear_error(tmp_path):
    path = shards.shard_set_path(str(tmp_path), "asset")
    with pytest.raises(shards.ShardSetError, match="schema"):
        with shards.ShardSetWriter(path, SCHEMA) as w:
            w.write_batch(pa.table({"other": [1]}))
    assert not os.path.exists(path)


def test_side_files_are_committed_and_hashed(tmp_path):
    path = shards.shard_set_path(str(tmp_path), "model")
    with shards.ShardSetWriter(path, None) as w:
        with open(w.side_file_path("weights.bin", rows=2), "wb") as fh:
            fh.write(b"\x00\x01")
        w.add_side_file("config.json", b"{}")
    m = shards.read_manifest(path)
    assert m.files == [] and [f["name"] for f in m.side_files] == ["config.json", "weights.bin"]
    assert open(shards.side_file(path, "weights.bin"), "rb").read() == b"\x00\x01"
    with pytest.raises(shards.ShardSetError, match="no side file"):
        shards.side_file(path, "missing.bin")
    with pytest.raises(shards.ShardSetError, match="never written"):
        with shards.ShardSetWriter(shards.shard_set_path(str(tmp_path), "bad"), None) as w:
            w.side_file_path("ghost.bin")


def test_malformed_parquet_names_the_file(tmp_path):
    bad = tmp_path / "in" / "broken.parquet"
    bad.parent.mkdir()
    bad.write_bytes(b"PAR1 this is not parquet")
    files = shards.list_parquet_inputs(str(tmp_path / "in"))
    with pytest.raises(shards.ShardSetError, match="broken.parquet"):
        list(shards.iter_parquet_file(files[0]))
    good = tmp_path / "in2" / "ok.parquet"
    good.parent.mkdir()
    pq.write_table(pa.table({"id": ["a"]}), good)
    with pytest.raises(shards.ShardSetError, match=r"ok.parquet: missing required column\(s\) \['content'\]"):
        list(shards.iter_parquet_file(str(good), columns=["id", "content"]))
    with pytest.raises(shards.ShardSetError, match="does not exist"):
        shards.list_parquet_inputs(str(tmp_path / "nope"))


def test_pyarrow_uri_data_root(tmp_path):
    root = f"file://{tmp_path}"
    path = shards.shard_set_path(root, "asset", "c")
    with shards.ShardSetWriter(path, SCHEMA) as w:
        w.write_rows(_rows(5))
        w.add_side_file("note.txt", b"x")
    assert shards.count_rows(path) == 5
    assert shards.committed_partitions(root, "asset") == ["c"]
    assert sum(b.num_rows for b in shards.iter_batches(path)) == 5


def test_code_row_contract_ids_are_stable():
    sha = content_sha256("print(1)\n")
    assert code_row_id("r", "a.py", sha) == code_row_id("r", "a.py", sha)
    assert code_row_id("r", "a.py", sha) != code_row_id("r", "b.py", sha)
    assert len(code_row_id("r", "a.py", sha)) == 32


def test_bad_partition_key(tmp_path):
    with pytest.raises(ValueError, match="must not contain"):
        shards.shard_set_path(str(tmp_path), "asset", "a/b")

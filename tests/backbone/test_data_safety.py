"""No command loses data: overlapping paths are refused, failed sources keep the previous set,
text that is not UTF-8 is handled one way everywhere, storage failures are clear errors."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus import safety, shards
from corpus.crawl import CrawlConfig, SourcesFailedError, parse_source, write_crawl
from corpus.schemas import CODE_SCHEMA, code_row_id, content_sha256
from pipelines.cli import main as cli

PY = "def add(a, b):\n    '''Add two numbers.'''\n    return a + b\n\n\nprint(add(1, 2))\n"


def _row(path: str, content: str | bytes, **kw) -> dict:
    text = content if isinstance(content, str) else content.decode("utf-8", "replace")
    return {"id": code_row_id("r", path, content_sha256(text)), "repo": "r", "path": path, "language": "python",
            "content": content, "size_bytes": len(content), "sha256": content_sha256(text), "license": "MIT",
            "stars": 1, "forks": 0, "revision_date": None, "source": "local"} | kw


def _code_set(path: str, n: int = 6) -> str:
    with shards.ShardSetWriter(path, CODE_SCHEMA) as w:
        w.write_rows([_row(f"f{i}.py", PY + f"# file {i}\n" + "x = 1\n" * i) for i in range(n)])
    return path


def _raw_with_bad_utf8(path: str, binary: bool = False) -> str:
    """A Parquet file (as other tools write them) whose content column holds bytes that are not UTF-8."""
    good = [PY + f"# {i}\n" for i in range(3)]
    raw = [g.encode() for g in good] + [b"def f():\n    return '\xff\xfe'\n" * 5]
    arr = pa.array(raw, pa.binary())
    if not binary:
        arr = pa.StringArray.from_buffers(len(raw), arr.buffers()[1], arr.buffers()[2])
    ids = [f"id{i}" for i in range(len(raw))]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(pa.table({"id": ids, "content": arr, "language": ["python"] * len(raw)}), path)
    return path


# --------------------------------------------------------------------------- output paths


@pytest.mark.parametrize("verb", ["dedup", "quality", "decontam"])
@pytest.mark.parametrize("where", ["same", "parent", "inside"])
def test_cli_refuses_output_overlapping_input(tmp_path, capsys, verb, where):
    src = _code_set(str(tmp_path / "data" / "code_files" / "python"))
    sibling = _code_set(str(tmp_path / "data" / "code_files" / "java"))
    out = {"same": src, "parent": os.path.dirname(src), "inside": os.path.join(src, "sub")}[where]
    before = {p: shards.read_manifest(p).content_hash for p in (src, sibling)}
    rc = cli([verb, "--input", src, "--output", out])
    err = capsys.readouterr().err
    assert rc == 2
    assert "output" in err and src in err and "choose an --output outside every input" in err
    assert {p: shards.read_manifest(p).content_hash for p in (src, sibling)} == before


def test_output_that_holds_an_input_file_is_refused(tmp_path, capsys):
    f = _raw_with_bad_utf8(str(tmp_path / "in" / "a.parquet"))
    rc = cli(["quality", "--input", f, "--output", str(tmp_path / "in")])
    assert rc == 2 and "contains input" in capsys.readouterr().err
    assert os.path.isfile(f)


def test_tokenize_pack_refuses_output_equal_to_input(tmp_path, capsys):
    src = _code_set(str(tmp_path / "mix"))
    tok = tmp_path / "tok.json"
    tok.write_text("{}")
    rc = cli(["tokenize", "pack", src, "--tokenizer", str(tok), "--out", src])
    assert rc == 2
    assert shards.count_rows(src) == 6


def test_check_output_forms():
    safety.check_output("/a/b", ["/a/c", "/a/bb"])  # siblings with a shared prefix are fine
    for bad in ("/a", "/a/b", "/a/b/c"):
        with pytest.raises(safety.OutputOverlapError):
            safety.check_output(bad, ["/a/b"])
    with pytest.raises(safety.OutputOverlapError):
        safety.check_output("s3://bkt/x", ["s3://bkt/x/part-0.parquet"])


# --------------------------------------------------------------------------- failed sources


def test_crawl_whose_sources_all_fail_keeps_the_previous_set(tmp_path):
    good = tmp_path / "repo"
    good.mkdir()
    (good / "m.py").write_text(PY)
    out = tmp_path / "out"

    def crawl(src: str):
        cfg = CrawlConfig(sources=[parse_source(f"local:{src}")], languages=["python"], allow_unknown_license=True)
        return write_crawl(cfg, languages=["python"],
                           files_path=lambda lang: shards.shard_set_path(str(out), "code_files", lang),
                           repos_path=lambda lang: shards.shard_set_path(str(out), "code_files_repos", lang),
                           cache_dir=str(tmp_path / "cache"), force=True)

    crawl(str(good))
    files = shards.shard_set_path(str(out), "code_files", "python")
    before = shards.read_manifest(files)
    assert before.rows == 1 and before.extra["empty_input"] is False
    with pytest.raises(SourcesFailedError, match="no repository could be fetched.*previous code_files sets are kept"):
        crawl(str(tmp_path / "gone"))
    assert shards.read_manifest(files).content_hash == before.content_hash
    # a truly empty source is committed as empty, and the manifest says so
    empty = tmp_path / "empty"
    empty.mkdir()
    crawl(str(empty))
    m = shards.read_manifest(files)
    assert m.rows == 0 and m.extra["empty_input"] is True


def test_crawl_cli_all_failed_exits_1_and_keeps_set(tmp_path, capsys):
    good = tmp_path / "repo"
    good.mkdir()
    (good / "m.py").write_text(PY)
    out = str(tmp_path / "out")
    assert cli(["crawl", str(good), "--output", out, "--language", "python", "--allow-unknown-license", "-q"]) == 0
    files = shards.shard_set_path(out, "code_files", "python")
    before = shards.read_manifest(files).content_hash
    assert cli(["crawl", f"local:{tmp_path / 'nope'}", "--output", out, "--language", "python", "-q"]) == 1
    assert "no repository could be fetched" in capsys.readouterr().err
    assert shards.read_manifest(files).content_hash == before


def test_crawl_output_inside_the_source_folder_is_refused(tmp_path, capsys):
    src = tmp_path / "repo"
    src.mkdir()
    (src / "m.py").write_text(PY)
    rc = cli(["crawl", str(src), "--output", str(src / "out"), "--language", "python", "-q"])
    assert rc == 2 and "lies inside input" in capsys.readouterr().err


# --------------------------------------------------------------------------- UTF-8


@pytest.mark.parametrize("binary", [False, True])
def test_every_stage_treats_invalid_utf8_the_same(tmp_path, binary):
    src = _raw_with_bad_utf8(str(tmp_path / "in" / "a.parquet"), binary=binary)
    from corpus.decontam import Decontaminator
    from corpus.quality import QualityFilter, load_rules

    q = QualityFilter(load_rules()).filter_shard_set(src, str(tmp_path / "q"), str(tmp_path / "qd"), "python",
                                                      invalid_text="skip")
    d = Decontaminator.from_config(benchmarks=["humaneval"]).filter_shard_set(
        src, str(tmp_path / "d"), str(tmp_path / "dr"), invalid_text="skip")
    assert q.skipped == {"invalid_utf8_content": 1} and d.skipped == {"invalid_utf8_content": 1}
    assert q.rows_in == d.rows_in == 3
    assert "a.parquet row 3 column content" in q.skipped_examples[0]
    for out in (str(tmp_path / "q"), str(tmp_path / "d")):
        assert pa.types.is_string(shards.read_schema(out).field("content").type)  # binary became text
    for stage in (
        lambda: QualityFilter(load_rules()).filter_shard_set(src, str(tmp_path / "q2"), str(tmp_path / "qd2"),
                                                             "python", invalid_text="fail"),
        lambda: Decontaminator.from_config(benchmarks=["humaneval"]).filter_shard_set(
            src, str(tmp_path / "d2"), str(tmp_path / "dr2"), invalid_text="fail"),
    ):
        with pytest.raises(safety.InvalidTextError, match=r"a\.parquet: column 'content' row\(s\) 3 "):
            stage()
    assert not shards.is_committed(str(tmp_path / "q2")) and not shards.is_committed(str(tmp_path / "d2"))


def test_policy_setting_is_read_in_one_place(monkeypatch):
    monkeypatch.setenv("CODECORPUS_INVALID_TEXT", "fail")
    assert safety.TextCheck().policy == "fail"
    from corpus.dedup import DedupConfig

    assert DedupConfig().invalid_text == "fail"
    monkeypatch.setenv("CODECORPUS_INVALID_TEXT", "maybe")
    with pytest.raises(ValueError, match="CODECORPUS_INVALID_TEXT"):
        safety.default_policy()


# --------------------------------------------------------------------------- storage errors


@contextlib.contextmanager
def _tmpfs(path, opts: str):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}); run as root to test full/read-only disks")
    try:
        yield str(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.mark.parametrize("verb", ["dedup", "quality", "decontam", "crawl", "tokenize"])
def test_read_only_output_is_a_clear_error(tmp_path, capsys, verb):
    src = _code_set(str(tmp_path / "in"))
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "m.py").write_text(PY)
    with _tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
        out = os.path.join(ro, "out")
        argv = {"crawl": ["crawl", str(repo), "--output", out, "--allow-unknown-license", "-q"],
                "tokenize": ["tokenize", "train", src, "--out", os.path.join(ro, "tok.json"), "--vocab-size", "300"],
                }.get(verb, [verb, "--input", src, "--output", out])
        rc = cli(argv)
    err = capsys.readouterr().err
    assert rc == 2 and "read-only" in err and "ro/" in err and "Traceback" not in err, err


def test_full_disk_is_a_clear_error_and_keeps_the_previous_set(tmp_path, capsys):
    big = [_row(f"f{i}.py", PY + os.urandom(20_000).hex()) for i in range(40)]
    src = str(tmp_path / "in")
    with shards.ShardSetWriter(src, CODE_SCHEMA) as w:
        w.write_rows(big)
    with _tmpfs(tmp_path / "small", "size=600k") as small:
        out = os.path.join(small, "out")
        with shards.ShardSetWriter(out, CODE_SCHEMA) as w:
            w.write_rows(big[:1])
        rc = cli(["decontam", "--input", src, "--output", out, "--benchmarks", "humaneval"])
        err = capsys.readouterr().err
        assert rc == 2 and "no space left" in err and "codecorpus gc" in err
        assert shards.count_rows(out) == 1  # the previous set is still current and whole


def test_train_fails_before_step_one_on_an_unwritable_output(tmp_path):
    from training.pretrain import check_output_dir

    with _tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
        with pytest.raises(safety.StorageError, match="read-only"):
            check_output_dir(os.path.join(ro, "run", "checkpoints"), str(tmp_path / "data"))
    with pytest.raises(safety.OutputOverlapError):
        check_output_dir(str(tmp_path / "data" / "ck"), str(tmp_path / "data"))


# --------------------------------------------------------------------------- gc


def test_gc_verb_removes_dead_leftovers_and_fails_dead_runs(tmp_path, monkeypatch, capsys):
    root = tmp_path / "data"
    path = shards.shard_set_path(str(root), "asset", "python")
    _code_set(path)
    w = shards.ShardSetWriter(path, CODE_SCHEMA).open()  # then "dies": lock gone, version left
    w._lock.release()
    w._lock = None
    os.makedirs(f"{path}.tmp-0123456789ab")
    import dagster as dg

    home = tmp_path / "dh"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = dg.DagsterInstance.get()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    @dg.op
    def noop() -> None:
        pass

    @dg.job
    def j() -> None:
        noop()

    run = instance.create_run_for_job(
        j,
        tags={"codecorpus/host": os.uname().nodename, "codecorpus/pid": dead.stdout.strip()})
    instance.handle_run_event(run.run_id, dg.DagsterEvent(
        event_type_value="PIPELINE_START", job_name="j", message="started"))
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    assert cli(["gc", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "2 stale temporaries" in out and f"marked run {run.run_id} failed" in out
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    assert shards.count_rows(path) == 6
    assert not os.path.exists(f"{path}.tmp-0123456789ab")


def test_textcode_ingest_of_files_that_all_fail_keeps_the_previous_set(tmp_path, capsys):
    import json

    good = tmp_path / "good.jsonl"
    text = ("Python functions are defined with def. Call them with arguments and read the return value. " * 5)
    good.write_text("\n".join(json.dumps({"text": text + str(i), "url": f"https://e.x/{i}"}) for i in range(3)))
    out = str(tmp_path / "web")
    assert cli(["textcode", "ingest", str(good), "--out", out, "--min-chars", "50"]) == 0
    before = shards.read_manifest(out)
    assert before.rows > 0 and before.extra["empty_input"] is False
    junk = tmp_path / "junk.warc.gz"
    junk.write_bytes(b"this is not a WARC file at all\n" * 50)
    assert cli(["textcode", "ingest", str(junk), "--out", out, "--min-chars", "50"]) == 1
    err = capsys.readouterr().err
    assert "every input failed" in err and "not_a_warc_stream" in err and "previous set is kept" in err
    assert shards.read_manifest(out).content_hash == before.content_hash
    assert cli(["textcode", "ingest", str(good), "--out", str(tmp_path)]) == 2  # output holds the input


def test_storage_errors_are_told_apart_from_other_errors(tmp_path):
    import errno

    assert safety.storage_errno(OSError(errno.ENOSPC, "full")) == errno.ENOSPC
    assert safety.storage_errno(OSError("IOError: No space left on device")) == errno.ENOSPC  # pyarrow: text only
    assert safety.storage_errno(OSError("Read-only file system")) == errno.EROFS
    assert safety.storage_errno(FileNotFoundError(errno.ENOENT, "gone")) is None
    assert safety.storage_errno(ValueError("boom")) is None
    assert safety.storage_error("/x", FileNotFoundError(errno.ENOENT, "gone")) is None
    err = safety.storage_error("/data/out", OSError(errno.EDQUOT, "quota"))
    assert err is not None and err.errno == errno.EDQUOT and "/data/out" in str(err) and "quota" in str(err)
    safety.check_writable("s3://bucket/prefix/out")  # object stores: no local probe, no error
    safety.check_writable(str(tmp_path / "new" / "deeper"))  # a missing folder: its parent is probed
    assert not os.path.exists(tmp_path / "new")

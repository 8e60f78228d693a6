"""One execution seam, three engines, the same bytes: quality and decontamination run in-process,
on a local process pool and on a real two-node Ray cluster (head + worker started here on
loopback); killed workers are retried, a killed driver resumes, a bad address fails at once."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time

import pytest

from corpus import shards
from corpus.decontam import Decontaminator
from corpus.executor import ExecutorError, ExecutorSpec, make_executor
from corpus.quality import QualityFilter, load_rules
from corpus.schemas import CODE_SCHEMA, code_row_id, content_sha256

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def code_set(tmp_path_factory) -> str:
    """Real code nobody here wrote (the stdlib), as a set of several input shards."""
    files = sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "*.py")))[:120]
    rows = []
    for f in files:
        t = open(f, encoding="utf-8", errors="replace").read()
        rows.append({"id": code_row_id("stdlib", f, content_sha256(t)), "repo": "stdlib", "path": os.path.basename(f),
                     "language": "python", "content": t, "size_bytes": len(t), "sha256": content_sha256(t),
                     "license": "PSF-2.0", "stars": 0, "forks": 0, "revision_date": None, "source": "local"})
    path = str(tmp_path_factory.mktemp("scale") / "in")
    with shards.ShardSetWriter(path, CODE_SCHEMA, shard_rows=25) as w:
        w.write_rows(rows)
    assert len(shards.shard_files(path)) >= 4
    return path


def _digest(path: str) -> list[tuple[str, str]]:
    m = shards.read_manifest(path)
    return [(f["name"], f["sha256"]) for f in m.files]


def _quality(src: str, out: str, spec: ExecutorSpec | None = None) -> dict:
    ex = make_executor(spec or ExecutorSpec())
    try:
        st = QualityFilter(load_rules()).filter_shard_set(src, out, out + "_dropped", "python", executor=ex)
    finally:
        ex.close()
    return {"kept": _digest(out), "dropped": _digest(out + "_dropped"), "stats": st.as_dict() | {"seconds": 0}}


def _decontam(src: str, out: str, spec: ExecutorSpec | None = None) -> dict:
    ex = make_executor(spec or ExecutorSpec())
    try:
        st = Decontaminator.from_config().filter_shard_set(src, out, out + "_removed", executor=ex)
    finally:
        ex.close()
    return {"kept": _digest(out), "removed": _digest(out + "_removed"), "stats": st.as_dict() | {"seconds": 0}}


def _dedup(src: str, out: str, spec: ExecutorSpec | None = None) -> dict:
    from corpus.dedup import DedupConfig, run_dedup

    ex = make_executor(spec or ExecutorSpec())
    try:
        st = run_dedup(shards.shard_files(src), out, out + "_clusters", DedupConfig(), executor=ex)
    finally:
        ex.close()
    return {"kept": _digest(out), "clusters": _digest(out + "_clusters"), "rows": st.kept_rows}


@pytest.mark.parametrize("stage", [_quality, _decontam, _dedup])
def test_process_pool_gives_the_local_bytes(code_set, tmp_path, stage):
    ref = stage(code_set, str(tmp_path / "local"))
    assert stage(code_set, str(tmp_path / "pool"), ExecutorSpec("process", workers=2)) == ref


def test_ray_two_node_cluster_gives_the_local_bytes(code_set, tmp_path, ray_cluster):
    spec = ExecutorSpec("ray", address=ray_cluster)
    for stage in (_quality, _decontam, _dedup):
        ref = stage(code_set, str(tmp_path / f"local-{stage.__name__}"))
        assert stage(code_set, str(tmp_path / f"ray-{stage.__name__}"), spec) == ref


def test_ray_worker_killed_mid_task_is_retried(code_set, tmp_path, ray_cluster, monkeypatch):
    ref = _quality(code_set, str(tmp_path / "local"))
    monkeypatch.setenv("CODECORPUS_FAILPOINTS", "task.shard=kill-once")
    monkeypatch.setenv("CODECORPUS_FAILPOINT_DIR", str(tmp_path))
    got = _quality(code_set, str(tmp_path / "ray"), ExecutorSpec("ray", address=ray_cluster))
    assert os.path.exists(tmp_path / "task.shard.fired")  # a worker really died
    assert got == ref


def test_pool_worker_killed_mid_task_is_retried(code_set, tmp_path, monkeypatch):
    ref = _decontam(code_set, str(tmp_path / "local"))
    monkeypatch.setenv("CODECORPUS_FAILPOINTS", "task.shard=kill-once")
    monkeypatch.setenv("CODECORPUS_FAILPOINT_DIR", str(tmp_path))
    got = _decontam(code_set, str(tmp_path / "pool"), ExecutorSpec("process", workers=2))
    assert os.path.exists(tmp_path / "task.shard.fired")
    assert got == ref


_DRIVER = """
import sys
from corpus import failpoints
from corpus.quality import QualityFilter, load_rules
failpoints.arm("stage.shard_recorded", "kill")
QualityFilter(load_rules()).filter_shard_set(sys.argv[1], sys.argv[2], sys.argv[2] + "_dropped", "python")
"""


def test_killed_driver_leaves_nothing_trusted_and_the_rerun_resumes(code_set, tmp_path):
    ref = _quality(code_set, str(tmp_path / "ref"))
    out = str(tmp_path / "out")
    proc = subprocess.run([sys.executable, "-c", _DRIVER, code_set, out], cwd=ROOT,
                          env=os.environ | {"PYTHONPATH": ROOT})
    assert proc.returncode == -signal.SIGKILL
    assert not shards.is_committed(out) and not shards.is_committed(out + "_dropped")
    version = os.path.join(tmp_path, ".out.versions", "v-00001")
    done = sorted(os.listdir(os.path.join(version, shards.DONE_DIR)))
    assert done == ["00000.json"]  # the driver died right after recording shard 0
    first_part = os.path.join(version, "part-00000-000.parquet")
    before = os.stat(first_part).st_mtime_ns
    time.sleep(0.01)
    assert _quality(code_set, out) == ref  # same bytes as an uninterrupted run
    assert os.stat(os.path.realpath(os.path.join(out, "part-00000-000.parquet"))).st_mtime_ns == before
    assert not os.path.exists(os.path.join(os.path.realpath(out), shards.DONE_DIR))


def test_resume_is_refused_when_the_build_changed(code_set, tmp_path):
    """An interrupted version is only continued by the same build (config, inputs, code)."""
    out = str(tmp_path / "out")
    subprocess.run([sys.executable, "-c", _DRIVER, code_set, out], cwd=ROOT, env=os.environ | {"PYTHONPATH": ROOT})
    ex = make_executor(ExecutorSpec())
    QualityFilter(load_rules(disabled=["max_line_length"])).filter_shard_set(code_set, out, out + "_dropped",
                                                                            "python", executor=ex)
    fresh = str(tmp_path / "fresh")
    QualityFilter(load_rules(disabled=["max_line_length"])).filter_shard_set(code_set, fresh, fresh + "_dropped",
                                                                            "python", executor=ex)
    assert _digest(out) == _digest(fresh)


def test_unreachable_cluster_fails_at_once_naming_the_address():
    port = _free_port()
    t0 = time.monotonic()
    with pytest.raises(ExecutorError, match=f"127.0.0.1:{port}"):
        make_executor(ExecutorSpec("ray", address=f"127.0.0.1:{port}"))
    assert time.monotonic() - t0 < 30
    with pytest.raises(ExecutorError, match="expected host:port"):
        make_executor(ExecutorSpec("ray", address="nonsense"))


def test_cli_verbs_take_the_executor(code_set, tmp_path, capsys):
    from pipelines.cli import main as cli

    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert cli(["decontam", "--input", code_set, "--output", a]) == 0
    assert cli(["decontam", "--input", code_set, "--output", b, "--executor", "process", "--workers", "2"]) == 0
    assert _digest(a) == _digest(b)
    assert cli(["quality", "--input", code_set, "--output", str(tmp_path / "c"), "--executor", "ray",
                "--ray-address", f"127.0.0.1:{_free_port()}"]) == 2
    assert "cannot reach the Ray cluster" in capsys.readouterr().err


def test_a_task_that_fails_for_good_names_its_shard(code_set, tmp_path):
    from corpus.executor import TaskError

    broken = str(tmp_path / "in")
    shutil.copytree(os.path.realpath(code_set), broken)
    victim = sorted(f for f in os.listdir(broken) if f.endswith(".parquet"))[1]
    data = open(os.path.join(broken, victim), "rb").read()
    with open(os.path.join(broken, victim), "wb") as fh:  # a valid footer, corrupt pages
        fh.write(data[:4] + b"\0" * (len(data) - 4 - 1000) + data[-1000:])
    os.unlink(os.path.join(broken, shards.MANIFEST))  # read as a plain folder of Parquet files
    with pytest.raises((TaskError, shards.ShardSetError), match=victim):
        _quality(broken, str(tmp_path / "out"), ExecutorSpec("process", workers=2))

"""The commit protocol under faults: a reader sees the whole old set or the whole new one at every
step of a replace, killed writers leave nothing trusted and no lock behind, one writer per set,
group commits are seen as a unit, clean-up never touches a live writer's work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from corpus import failpoints, setstore, shards
from corpus.locks import SetBusyError

SCHEMA = pa.schema([("id", pa.string()), ("n", pa.int64())])


def _write(path: str, tag: str, n: int = 30, **kw) -> shards.Manifest:
    with shards.ShardSetWriter(path, SCHEMA, shard_rows=10, **kw) as w:
        w.write_rows([{"id": f"{tag}{i}", "n": i} for i in range(n)])
    return shards.read_manifest(path)


def _read_tags(path: str) -> set[str]:
    """The version tags a reader sees; a whole set has exactly one tag and all its rows."""
    ids = [r for b in shards.iter_batches(path) for r in b.column("id").to_pylist()]
    tags = {i.rstrip("0123456789") for i in ids}
    assert len(ids) == 30 * len(tags)
    return tags


def _steps() -> list[str]:
    """Every failpoint a replace passes, in order (found by tracing one replace)."""
    return ["commit.manifest", "commit.prepared", "commit.swap", "commit.swapped"]


def test_trace_lists_every_step(tmp_path):
    path = str(tmp_path / "s")
    _write(path, "old")
    failpoints.trace(True)
    try:
        _write(path, "new")
        assert failpoints.seen() == _steps()
    finally:
        failpoints.disarm_all()


@pytest.mark.parametrize("step", _steps())
def test_injected_failure_at_each_step_leaves_old_or_new(tmp_path, step):
    path = str(tmp_path / "s")
    _write(path, "old")
    failpoints.arm(step)
    try:
        with pytest.raises(failpoints.InjectedFault):
            _write(path, "new")
    finally:
        failpoints.disarm_all()
    tags = _read_tags(path)
    # Before the swap the old set stays; once the pointer moved the new one is complete.
    assert tags == ({"new"} if step == "commit.swapped" else {"old"})
    # The lock was released and the next writer finishes the job.
    _write(path, "again")
    assert _read_tags(path) == {"again"}


_KILL_SCRIPT = """
import pyarrow as pa
from corpus import failpoints, shards
failpoints.arm({step!r}, "kill")
with shards.ShardSetWriter({path!r}, pa.schema([("id", pa.string()), ("n", pa.int64())]), shard_rows=10) as w:
    w.write_rows([{{"id": f"new{{i}}", "n": i}} for i in range(30)])
"""


@pytest.mark.parametrize("step", _steps())
def test_sigkill_at_each_step_leaves_old_or_new_and_rerun_succeeds(tmp_path, step):
    path = str(tmp_path / "s")
    _write(path, "old")
    proc = subprocess.run([sys.executable, "-c", _KILL_SCRIPT.format(step=step, path=path)], cwd=os.getcwd())
    assert proc.returncode == -signal.SIGKILL
    assert _read_tags(path) in ({"old"}, {"new"})
    assert _read_tags(path) == ({"new"} if step == "commit.swapped" else {"old"})
    # The dead writer's flock died with it: a re-run takes the lock, cleans up and commits.
    _write(path, "again")
    assert _read_tags(path) == {"again"}
    versions = sorted(os.listdir(tmp_path / ".s.versions"))
    assert [v for v in versions if v.startswith("v-")] and not [v for v in versions if v.startswith("work-")]


def test_reader_during_many_replaces_sees_whole_sets(tmp_path):
    path = str(tmp_path / "s")
    _write(path, "t0x")
    stop = threading.Event()
    seen: list[set[str]] = []
    errors: list[BaseException] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.append(_read_tags(path))
            except BaseException as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(exc)
                return

    t = threading.Thread(target=reader)
    t.start()
    try:
        for k in range(1, 25):  # retention above the commit count: this tests atomicity only
            _write(path, f"t{k}x", keep_versions=30)
    finally:
        stop.set()
        t.join(30)
    assert not errors, errors[:1]
    assert seen and all(len(s) == 1 for s in seen)


def test_second_writer_is_refused_while_first_holds_the_set(tmp_path):
    path = str(tmp_path / "s")
    first = shards.ShardSetWriter(path, SCHEMA).open()
    try:
        with pytest.raises(SetBusyError, match=rf"another writer is running \(pid {os.getpid()} on "):
            shards.ShardSetWriter(path, SCHEMA).open()
        # gc skips a set whose writer is alive and never touches its version folder
        assert shards.gc_set(path) == []
        assert os.path.isdir(first._tmp)
        first.write_rows([{"id": "a", "n": 1}])
    finally:
        first.commit()
    assert shards.count_rows(path) == 1


def test_two_writer_processes_one_wins_the_other_is_told_who(tmp_path):
    path = str(tmp_path / "s")
    hold = textwrap.dedent(f"""
        import sys, time, pyarrow as pa
        from corpus import shards
        w = shards.ShardSetWriter({path!r}, pa.schema([("id", pa.string()), ("n", pa.int64())])).open()
        print("locked", flush=True)
        time.sleep(60)
    """)
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SetBusyError, match=rf"pid {holder.pid} on"):
            _write(path, "x")
        holder.kill()  # SIGKILL: no clean-up ran in the holder
        holder.wait(10)
        _write(path, "x")  # the lock died with its owner; the partial version is removed
        assert _read_tags(path) == {"x"}
        assert [v for v in os.listdir(tmp_path / ".s.versions") if v.startswith("v-")] == ["v-00001"]  # partial removed, number reused
    finally:
        holder.kill()


def test_group_commit_killed_between_swaps_is_read_as_a_unit(tmp_path):
    a, b = str(tmp_path / "out"), str(tmp_path / "out_clusters")

    def group(tag: str) -> None:
        wa = shards.ShardSetWriter(a, SCHEMA, shard_rows=10)
        wb = shards.ShardSetWriter(b, SCHEMA, shard_rows=10)
        with shards.commit_together(wa, wb):
            wa.write_rows([{"id": f"{tag}{i}", "n": i} for i in range(30)])
            wb.write_rows([{"id": f"{tag}{i}", "n": i} for i in range(30)])

    group("old")
    failpoints.arm("group.between_swaps")
    try:
        with pytest.raises(failpoints.InjectedFault):
            group("new")
    finally:
        failpoints.disarm_all()
    # ``a`` was swapped, ``b`` was not: readers still see the new group as a whole.
    assert _read_tags(a) == {"new"} and _read_tags(b) == {"new"}
    ma, mb = shards.check_group(a, b)
    assert ma.group["id"] == mb.group["id"]
    # gc rolls ``b`` forward for good, and a mismatched pair is reported, never read silently.
    shards.gc_set(b)
    assert os.path.basename(os.readlink(b)) == mb.version
    _write(b, "lone")
    with pytest.raises(shards.ShardSetError, match="committed by different runs"):
        shards.check_group(a, b)


def test_failure_before_group_swap_keeps_both_old(tmp_path):
    a, b = str(tmp_path / "kept"), str(tmp_path / "dropped")
    wa, wb = shards.ShardSetWriter(a, SCHEMA), shards.ShardSetWriter(b, SCHEMA)
    with shards.commit_together(wa, wb):
        wa.write_rows([{"id": "old", "n": 0}])
        wb.write_rows([{"id": "old", "n": 0}])
    failpoints.arm("group.prepared")
    try:
        with pytest.raises(failpoints.InjectedFault):
            wa, wb = shards.ShardSetWriter(a, SCHEMA), shards.ShardSetWriter(b, SCHEMA)
            with shards.commit_together(wa, wb):
                wa.write_rows([{"id": "new", "n": 0}])
                wb.write_rows([{"id": "new", "n": 0}])
    finally:
        failpoints.disarm_all()
    for p in (a, b):
        assert [r["id"] for bt in shards.iter_batches(p) for r in bt.to_pylist()] == ["old"]


def test_retention_keeps_the_newest_old_versions(tmp_path):
    path = str(tmp_path / "s")
    for k in range(4):
        _write(path, f"t{k}x", keep_versions=2)
    vs = sorted(v for v in os.listdir(tmp_path / ".s.versions") if v.startswith("v-"))
    assert vs == ["v-00002", "v-00003", "v-00004"]  # current + 2 older
    assert shards.gc_set(path, keep_versions=0) == [str(tmp_path / ".s.versions" / v) for v in vs[:2]]


def test_legacy_layout_parked_set_is_restored_not_deleted(tmp_path):
    """The old replace renamed final -> .old-X, then tmp -> final; a kill in between left only
    the parked copy. Clean-up must bring it back, not delete it."""
    path = str(tmp_path / "s")
    _write(path, "good")
    real = os.path.realpath(path)
    os.unlink(path)
    parked = f"{path}.old-deadbeef0000"
    os.rename(real, parked)
    os.makedirs(f"{path}.tmp-0123456789ab")  # a dead writer's temporary
    assert not shards.is_committed(path)
    shards.gc_set(path)
    assert _read_tags(path) == {"good"}
    assert not os.path.exists(f"{path}.tmp-0123456789ab")


def test_legacy_real_folder_becomes_a_version_atomically(tmp_path):
    path = str(tmp_path / "s")
    _write(path, "old")
    real = os.path.realpath(path)
    os.unlink(path)
    os.rename(real, path)  # an old-layout set: a real folder with a manifest
    assert _read_tags(path) == {"old"}
    _write(path, "new")
    assert os.path.islink(path) and _read_tags(path) == {"new"}


def test_killed_dedup_work_folder_is_removed_by_the_next_writer(tmp_path):
    path = str(tmp_path / "s")
    w = shards.ShardSetWriter(path, SCHEMA).open()
    work = w.work_dir()
    w._lock.release()  # as if the process died: the lock is gone, the folders stay
    w._lock = None
    assert os.path.isdir(work)
    _write(path, "x")
    assert not os.path.exists(work)


def test_object_store_pointer_is_swapped_in_one_step(tmp_path):
    """The object-store layout (manifest as pointer) over a filesystem without symlinks."""
    fs = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    store = setstore.ObjectStore(fs, "bucket/set")

    def version(tag: str) -> str:
        name, base = store.new_version()
        with fs.open_output_stream(f"{base}/data.txt") as fh:
            fh.write(tag.encode())
        with fs.open_output_stream(f"{base}/{setstore.MANIFEST}") as fh:
            fh.write(f'{{"version": "{name}"}}'.encode())
        return name

    def read() -> str:
        with fs.open_input_stream(f"{store.read_base()}/data.txt") as fh:
            return fh.read().decode()

    store.swap(version("old"))
    assert read() == "old"
    failpoints.arm("commit.swap")
    try:
        with pytest.raises(failpoints.InjectedFault):
            store.swap(version("new"))
    finally:
        failpoints.disarm_all()
    assert read() == "old"
    store.clean(keep=0)  # the orphaned complete version and the pointer temporary go
    assert [n for _, n in store.versions()] == ["v-00001"]
    store.swap(version("new"))
    assert read() == "new"


def test_object_lock_refuses_a_live_owner_and_breaks_a_dead_one(tmp_path):
    from corpus.locks import ObjectLock, Owner

    fs = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    fs.create_dir("b")
    first = ObjectLock(fs, "b/_lock.json", "set").acquire()
    with pytest.raises(SetBusyError, match=f"pid {os.getpid()}"):
        ObjectLock(fs, "b/_lock.json", "set").acquire()
    first.release()
    # a record left by a dead process on this host is broken safely
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    ghost = Owner.me()
    import dataclasses
    import json

    with fs.open_output_stream("b/_lock.json") as fh:
        fh.write(json.dumps(dataclasses.asdict(ghost) | {"pid": int(dead.stdout), "proc_start": "1"}).encode())
    ObjectLock(fs, "b/_lock.json", "set").acquire().release()
    # a silent owner on another host expires after the TTL only
    with fs.open_output_stream("b/_lock.json") as fh:
        fh.write(json.dumps(dataclasses.asdict(ghost) | {"host": "elsewhere", "heartbeat": time.time()}).encode())
    with pytest.raises(SetBusyError):
        ObjectLock(fs, "b/_lock.json", "set").acquire()
    ObjectLock(fs, "b/_lock.json", "set", ttl_s=0.0).acquire().release()


def test_data_and_manifest_are_fsynced_before_the_swap(tmp_path, monkeypatch):
    """What a power cut would lose is flushed first: every part, the manifest, the version
    folder, then (after the pointer moved) the parent folder."""
    synced: list[str] = []
    real = os.fsync

    def record(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    failpoints.trace(True)
    try:
        path = str(tmp_path / "s")
        _write(path, "a")
    finally:
        failpoints.disarm_all()
    version = str(tmp_path / ".s.versions" / "v-00001")
    parts = [os.path.join(version, f"part-0000{i}.parquet") for i in range(3)]
    for p in parts:
        assert p in synced
    manifest_at = synced.index(os.path.join(version, "_manifest.json.partial"))
    assert max(synced.index(p) for p in parts) < manifest_at < synced.index(version)
    assert synced[-1] == str(tmp_path)  # the parent, after the swap


def test_commit_together_locks_every_member_on_entry(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    with shards.commit_together(shards.ShardSetWriter(a, SCHEMA), shards.ShardSetWriter(b, SCHEMA)) as (wa, wb):
        with pytest.raises(SetBusyError):  # before either member wrote a row
            shards.ShardSetWriter(b, SCHEMA).open()
        wa.write_rows([{"id": "x", "n": 1}])
        wb.write_rows([{"id": "x", "n": 1}])
    with pytest.raises(shards.ShardSetError, match="the same set twice"):
        with shards.commit_together(shards.ShardSetWriter(a, SCHEMA), shards.ShardSetWriter(a, SCHEMA)):
            pass


def test_gc_reports_every_leftover_it_removes(tmp_path):
    path = str(tmp_path / "s")
    _write(path, "a")
    link = tmp_path / ".s.link-0123456789ab"
    os.symlink(".s.versions/v-00001", link)
    assert shards.gc_set(path) == [str(link)]
    assert not os.path.lexists(link) and _read_tags(path) == {"a"}

"""The driver side of a sharded stage: plan one job per input shard, run the jobs on any
executor, keep per-shard completion records, and adopt the part files in input order.

Workers write ``part-SSSSS-KKK.parquet`` into the new version of every output set (a task's
names and bytes depend only on its shard), the driver records each finished shard inside the
version (``_done/SSSSS.json``) and commits. A driver killed mid-stage leaves an uncommitted
version that the next run of the same build picks up, re-running only unfinished shards, so
its bytes equal an uninterrupted run's.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from corpus import failpoints, safety, shards
from corpus.executor import LocalExecutor


@dataclass(frozen=True)
class ShardJob:
    """One input shard: its position (names the output parts), its file and a row cap."""

    index: int
    file: str
    max_rows: int | None = None
    row_offset: int = 0  # rows in the shards before this one (for row numbers that name a row)

    def label(self) -> str:
        return f"input shard {self.index} ({self.file})"


def plan_jobs(files: Sequence[str], max_rows: int | None = None) -> list[ShardJob]:
    """A job per file, with its row offset from the Parquet footers; ``max_rows`` is split over
    the files in order, so a cap means the same rows whatever runs the jobs."""
    jobs, offset = [], 0
    left = max_rows
    for i, f in enumerate(files):
        if left is not None and left <= 0:
            break
        fs, p = shards._fs(f)
        with fs.open_input_file(p) as fh:
            n = pq.ParquetFile(fh).metadata.num_rows
        cap = None if left is None else min(n, left)
        jobs.append(ShardJob(i, f, cap, offset))
        offset += n
        if left is not None:
            left -= cap
    return jobs


def job_batches(job: ShardJob, batch_size: int, text_columns: Sequence[str],
                check: safety.TextCheck) -> Iterator[pa.RecordBatch]:
    """A job's input batches: capped at ``job.max_rows``, text columns checked for UTF-8 (rows
    that are not are skipped and counted in ``check``, or raise, per its policy)."""
    row = 0
    for batch in shards.iter_parquet_file(job.file, batch_size=batch_size):
        if job.max_rows is not None:
            if row >= job.max_rows:
                break
            batch = batch.slice(0, job.max_rows - row)
        n = batch.num_rows
        batch = safety.validate_text(batch, text_columns, job.file, check, first_row=row)
        row += n
        yield batch


@contextmanager
def part_writers(**writers: shards.PartWriter) -> Iterator[dict[str, shards.PartWriter]]:
    """A task's part writers: if the task fails, their open parts are discarded."""
    failpoints.hit("task.shard")
    try:
        yield writers
    except BaseException:
        for w in writers.values():
            w.discard()
        raise


def _files_exist(w: shards.ShardSetWriter, files: Sequence[Mapping[str, Any]]) -> bool:
    target = w.target()
    fs, folder = shards._fs(target.uri)
    join = os.path.join if isinstance(fs, pafs.LocalFileSystem) else posixpath.join
    return all(fs.get_file_info(join(folder, f["name"])).type == pafs.FileType.File for f in files)


def run_shard_tasks(
    writers: Mapping[str, shards.ShardSetWriter],
    jobs: Sequence[ShardJob],
    task: Callable[[ShardJob, Any], dict[str, Any]],
    *,
    executor=None,
    shared: Any = None,
    passthrough: tuple[type[BaseException], ...] = (),
    on_result: Callable[[ShardJob, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``task(job, shared)`` for every job not finished by an interrupted earlier run; each
    result holds ``{"parts": {writer name: [file records]}, ...}``. Returns the results in job
    order after adding every writer's parts in that order."""
    executor = executor or LocalExecutor()
    names = list(writers)
    primary = writers[names[0]]
    done = primary.done_shards()
    if done and not all(_files_exist(writers[n], r["parts"].get(n, [])) for r in done.values() for n in names):
        done = {}  # an output's version was cleaned meanwhile: redo every shard
    todo = [j for j in jobs if j.index not in done]
    results: dict[int, dict[str, Any]] = {j.index: done[j.index] for j in jobs if j.index in done}
    for job, res in zip(todo, executor.map(task, todo, shared, label=ShardJob.label, passthrough=passthrough)):
        primary.record_done(job.index, res)
        failpoints.hit("stage.shard_recorded")
        results[job.index] = res
        if on_result:
            on_result(job, res)
    ordered = [results[j.index] for j in jobs]
    for name in names:
        for res in ordered:
            writers[name].add_parts(res["parts"].get(name, []))
    return ordered


def run_split_stage(
    in_path: str,
    files: Sequence[str],
    outputs: Mapping[str, tuple[str, Any]],
    make_task: Callable[[dict[str, shards.PartTarget]], Callable[[ShardJob, Any], dict[str, Any]]],
    *,
    config: Mapping[str, Any],
    input_hashes: Sequence[str],
    max_rows: int | None,
    executor: Any,
    shared: Any,
    passthrough: tuple[type[BaseException], ...],
    summarize: Callable[[list[dict[str, Any]]], dict[str, Any]],
) -> None:
    """A stage that splits its input into several sets (kept + dropped/removed): resumable writers
    for ``outputs`` (name -> (path, schema)) committed as one unit, one task per input file,
    and ``summarize(results)`` (in input order) stored in every output's manifest ``extra``."""
    inputs = [in_path, *files]
    writers = {name: shards.ShardSetWriter(path, schema, config=config, input_hashes=list(input_hashes),
                                           inputs=inputs, resumable=True)
               for name, (path, schema) in outputs.items()}
    with shards.commit_together(*writers.values()):
        task = make_task({name: w.target() for name, w in writers.items()})
        results = run_shard_tasks(writers, plan_jobs(files, max_rows), task, executor=executor, shared=shared,
                                  passthrough=passthrough)
        extra = summarize(results)
        for w in writers.values():
            w.extra.update(extra)


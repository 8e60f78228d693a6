"""Benchmark test sets: the bundled four (package data) and any extra JSONL/Parquet by config.

Each benchmark item becomes one text (its configured fields joined by newlines) whose n-grams
must not appear in training data. A malformed file fails with the file, line and what to fix.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DATA_DIR = os.path.join(os.path.dirname(__file__), "data")


class DecontamError(ValueError):
    """Bad decontamination input or config; the message names the file/row/setting to fix."""


@dataclass(frozen=True)
class BenchmarkSpec:
    """Where a benchmark lives and which fields of each record form its text.

    ``fields`` are joined with newlines (list values, e.g. MBPP's ``test_list``, are joined too);
    ``id_field`` names the task id (None: the 1-based line/row number).
    """

    name: str
    path: str
    fields: tuple[str, ...]
    id_field: str | None = None

    @classmethod
    def parse(cls, raw: BenchmarkSpec | Mapping[str, Any] | str) -> BenchmarkSpec:
        """From a spec, a mapping (``name``, ``path``, ``fields``, ``id_field``) or the CLI form
        ``PATH:NAME:FIELD,FIELD[:ID_FIELD]``."""
        if isinstance(raw, BenchmarkSpec):
            return raw
        if isinstance(raw, str):
            parts = raw.rsplit(":", 3) if raw.count(":") >= 3 else raw.rsplit(":", 2)
            if len(parts) < 3:
                raise DecontamError(
                    f"extra benchmark {raw!r}: expected PATH:NAME:FIELD[,FIELD...][:ID_FIELD]"
                )
            path, name, fields = parts[0], parts[1], parts[2]
            id_field = parts[3] if len(parts) > 3 else None
            raw = {"path": path, "name": name, "fields": fields.split(","), "id_field": id_field or None}
        try:
            fields = raw["fields"]
            fields = tuple([fields] if isinstance(fields, str) else fields)
            spec = cls(name=str(raw["name"]), path=str(raw["path"]), fields=fields, id_field=raw.get("id_field"))
        except KeyError as exc:
            raise DecontamError(f"extra benchmark {dict(raw)!r}: missing key {exc}; need name, path, fields") from exc
        if not spec.fields or not all(isinstance(f, str) and f for f in spec.fields):
            raise DecontamError(f"extra benchmark {spec.name!r}: 'fields' must be a non-empty list of field names")
        return spec

    def file_sha256(self) -> str:
        h = hashlib.sha256()
        try:
            with open(self.path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
        except OSError as exc:
            raise DecontamError(f"benchmark {self.name!r}: cannot read {self.path} ({exc})") from exc
        return h.hexdigest()


BUILTIN: dict[str, BenchmarkSpec] = {
    "humaneval": BenchmarkSpec(
        "humaneval", os.path.join(DATA_DIR, "humaneval.jsonl.gz"), ("prompt", "canonical_solution", "test"), "task_id"
    ),
    "mbpp": BenchmarkSpec(
        "mbpp", os.path.join(DATA_DIR, "mbpp_sanitized_test.jsonl"), ("text", "code", "test_list"), "task_id"
    ),
    "gsm8k": BenchmarkSpec("gsm8k", os.path.join(DATA_DIR, "gsm8k_test.jsonl"), ("question", "answer"), None),
    "math": BenchmarkSpec("math", os.path.join(DATA_DIR, "math500_test.jsonl"), ("problem", "solution"), "unique_id"),
}
DEFAULT_BENCHMARKS = tuple(BUILTIN)


@dataclass(frozen=True)
class BenchItem:
    benchmark: str
    task_id: str
    text: str


@dataclass
class LoadReport:
    items: list[BenchItem] = field(default_factory=list)
    per_benchmark: dict[str, int] = field(default_factory=dict)
    skipped_empty: dict[str, int] = field(default_factory=dict)


def resolve_specs(benchmarks: Sequence[str], extra: Sequence[Any] = ()) -> list[BenchmarkSpec]:
    specs = []
    for name in benchmarks:
        key = name.strip().lower()
        if key not in BUILTIN:
            raise DecontamError(f"unknown benchmark {name!r}; bundled ones are {sorted(BUILTIN)} (add others via extra)")
        specs.append(BUILTIN[key])
    specs.extend(BenchmarkSpec.parse(e) for e in extra)
    if not specs:
        raise DecontamError(f"no benchmarks selected: name bundled ones ({sorted(BUILTIN)}) or give extra files")
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DecontamError(f"benchmark name(s) {dupes} given twice; names must be unique")
    return specs


def _records(spec: BenchmarkSpec) -> Iterator[tuple[int, dict[str, Any]]]:
    path = spec.path
    if not os.path.isfile(path):
        raise DecontamError(f"benchmark {spec.name!r}: file {path} does not exist")
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
            row = 0
            for batch in pf.iter_batches(batch_size=1024):
                for rec in batch.to_pylist():
                    row += 1
                    yield row, rec
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for bad files
            if isinstance(exc, DecontamError):
                raise
            raise DecontamError(f"{path}: not a readable Parquet benchmark file ({exc})") from exc
        return
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig") as fh:  # tolerate a byte-order mark
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DecontamError(
                        f"{path}:{lineno}: invalid JSON in benchmark {spec.name!r} ({exc.msg} at column {exc.colno}); "
                        "fix or remove that line"
                    ) from exc
                if not isinstance(rec, dict):
                    raise DecontamError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
                yield lineno, rec
    except UnicodeDecodeError as exc:
        raise DecontamError(f"{path}: benchmark {spec.name!r} is not UTF-8 ({exc})") from exc
    except (OSError, EOFError) as exc:
        raise DecontamError(f"{path}: cannot read benchmark {spec.name!r} ({exc})") from exc


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "\n".join(_as_text(v) for v in value)
    return str(value)


def load_items(specs: Sequence[BenchmarkSpec]) -> LoadReport:
    """Every item of every benchmark; raises DecontamError naming file and line on bad input."""
    report = LoadReport()
    for spec in specs:
        n = 0
        for lineno, rec in _records(spec):
            missing = [f for f in spec.fields if f not in rec]
            if missing:
                raise DecontamError(
                    f"{spec.path}:{lineno}: benchmark {spec.name!r} record lacks field(s) {missing}; "
                    f"it has {sorted(rec)} (set the benchmark's fields accordingly)"
                )
            if spec.id_field is not None and spec.id_field not in rec:
                raise DecontamError(
                    f"{spec.path}:{lineno}: benchmark {spec.name!r} record lacks id field {spec.id_field!r}; "
                    f"it has {sorted(rec)}"
                )
            text = "\n".join(t for t in (_as_text(rec[f]) for f in spec.fields) if t)
            if not text.strip():
                report.skipped_empty[spec.name] = report.skipped_empty.get(spec.name, 0) + 1
                continue
            task = str(rec[spec.id_field]) if spec.id_field is not None else f"{spec.name}/{lineno}"
            report.items.append(BenchItem(spec.name, task, text))
            n += 1
        if n == 0:
            raise DecontamError(f"benchmark {spec.name!r}: {spec.path} has no usable items")
        report.per_benchmark[spec.name] = n
    return report

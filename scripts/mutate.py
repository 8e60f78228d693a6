#!/usr/bin/env python
"""Mutation testing of the core library modules: plant one small bug at a time, run the tests.

Why a self-written mutator: mutmut 3 wants a src/ layout and trampolines every function (numba
kernels and torch code do not survive that), cosmic-ray needs a session database and config per
module. This is ~300 lines of ``ast``: every mutant is one node edit of the module's syntax tree,
written into a private copy of the repository, and the module's matching test files are run
with ``pytest -x`` under a per-mutant timeout. A mutant is *killed* when the tests fail or time
out, *survived* when they pass.

Mutation operators: arithmetic / bitwise operator swaps, comparison boundary and negation
swaps (``<`` -> ``<=``, ``==`` -> ``!=``, ``in`` -> ``not in``...), ``and`` <-> ``or``, numeric
constant off-by-one, ``True`` <-> ``False``, removed ``not``, negated ``if``/``while``/ternary
conditions, ``return x`` -> ``return None``, ``+=`` <-> ``-=``, ``break`` <-> ``continue``,
and removed statements (an assignment or call statement becomes ``pass``).

Mutants are sampled with a seed (``--max-mutants``, ``--seed``) so runs are reproducible, and
the run stops starting new mutants after ``--budget-s``. Known equivalent mutants (same
behaviour as the original; no test can kill them) are listed with a reason in
``docs/mutation_equivalent.json`` and reported separately.

Examples::

    nice -n 10 .venv/bin/python scripts/mutate.py --module mix --max-mutants 60
    nice -n 10 .venv/bin/python scripts/mutate.py --module corpus/dedup/lsh.py --tests tests/dedup
    .venv/bin/python scripts/mutate.py --list            # the presets
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT_FILE = ROOT / "docs" / "mutation_equivalent.json"

# preset -> (source files mutated, test paths run against every mutant). The tests are the fast,
# library-level ones for that module (no Dagster asset or CLI tests: those are slower and test
# the same library through one more layer).
PRESETS: dict[str, tuple[list[str], list[str], str]] = {
    "dedup": (
        ["corpus/dedup/lsh.py", "corpus/dedup/policy.py", "corpus/dedup/unionfind.py",
         "corpus/dedup/normalize.py", "corpus/dedup/minhash.py"],
        ["tests/dedup/test_dedup_boundaries.py", "tests/dedup/test_dedup_minhash.py",
         "tests/dedup/test_dedup_parts.py"],
        "",
    ),
    "decontam": (
        ["corpus/decontam/ngrams.py", "corpus/decontam/core.py"],
        ["tests/decontam/test_decontam_boundaries.py", "tests/decontam/test_decontam_ngrams.py",
         "tests/decontam/test_decontam_find.py"],
        "",
    ),
    "quality": (
        ["corpus/quality/rules.py", "corpus/quality/filter.py", "corpus/quality/metrics.py",
         "corpus/quality/bytestats.py"],
        ["tests/quality/test_quality_boundaries.py", "tests/quality/test_quality_rules.py",
         "tests/quality/test_quality_metrics.py", "tests/quality/test_quality_bytestats.py"],
        "",
    ),
    "tokenize": (
        ["corpus/tokenize/fim.py", "corpus/tokenize/pack.py"],
        ["tests/tokenize/test_tokenize_boundaries.py", "tests/tokenize/test_tokenize_fim.py",
         "tests/tokenize/test_tokenize_pack_format.py"],
        "",
    ),
    "mix": (
        ["corpus/mix/budget.py", "corpus/mix/mixer.py"],
        ["tests/mix/test_mix_boundaries.py", "tests/mix/test_mix_budget.py", "tests/mix/test_mix_mixer.py"],
        "",
    ),
    # The shard store and its commit protocol (versioned sets, pointer swap, locks, path guard).
    "shards": (
        ["corpus/shards.py", "corpus/setstore.py", "corpus/locks.py", "corpus/safety.py"],
        ["tests/backbone/test_shards.py", "tests/backbone/test_commit_protocol.py",
         "tests/backbone/test_data_safety.py"],
        "",
    ),
    # Status classification and the harness sources. The Go pass/fail language tests are deselected: the
    # bwrap Go toolchain fails on this machine ("cannot find package os") before and after.
    "sandbox": (
        ["sandbox/backends/base.py", "sandbox/harness.py"],
        ["tests/sandbox/test_status_boundaries.py", "tests/sandbox/test_sandbox_languages.py"],
        "not bwrap-go and not docker-go",
    ),
    "training": (
        ["training/sft.py", "training/dpo.py"],
        ["tests/training/test_training_losses_exact.py", "tests/training/test_training_posttrain.py"],
        "",
    ),
}

_BINOP_SWAP: dict[type, type] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd,
    ast.BitXor: ast.BitOr, ast.LShift: ast.RShift, ast.RShift: ast.LShift,
}
_CMP_SWAP: dict[type, type] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}


@dataclass(frozen=True)
class Mutant:
    """One planted bug: the node's position in ``ast.walk`` order plus the edit applied there."""

    file: str
    index: int
    op: str
    line: int
    col: int
    desc: str

    @property
    def key(self) -> str:
        """Stable name (file, line, edit) used by the equivalent-mutant list."""
        return f"{self.file}:{self.line}:{self.col}:{self.desc}"


def _docstring_ids(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0]))
                out.add(id(body[0].value))
    return out


def _skip_ids(tree: ast.AST, lines: list[str]) -> set[int]:
    """Nodes never mutated: docstrings, annotations, ``TYPE_CHECKING`` blocks, ``pragma: no mutate``."""
    skip = _docstring_ids(tree)
    for node in ast.walk(tree):
        ann = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            ann = [node.returns] + [a.annotation for a in ast.walk(node.args) if isinstance(a, ast.arg)]
        elif isinstance(node, ast.AnnAssign):
            ann = [node.annotation]
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            ann = [node]
        for a in ann:
            if a is not None:
                skip.update(id(n) for n in ast.walk(a))
        line = getattr(node, "lineno", None)
        if line and "pragma: no mutate" in lines[line - 1]:
            skip.add(id(node))
    return skip


def _edits(node: ast.AST) -> Iterator[tuple[str, str]]:
    """(op, description) of every mutation applicable to one node."""
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOP_SWAP:
        yield "binop", f"{type(node.op).__name__}->{_BINOP_SWAP[type(node.op)].__name__}"
    elif isinstance(node, ast.AugAssign) and type(node.op) in _BINOP_SWAP:
        yield "augop", f"{type(node.op).__name__}=->{_BINOP_SWAP[type(node.op)].__name__}="
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in _CMP_SWAP:
                yield f"cmp{i}", f"{type(op).__name__}->{_CMP_SWAP[type(op)].__name__}"
    elif isinstance(node, ast.BoolOp):
        yield "boolop", "And->Or" if isinstance(node.op, ast.And) else "Or->And"
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "drop_not", "not x->x"
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        yield "drop_neg", "-x->x"
    elif isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool):
            yield "const", f"{v}->{not v}"
        elif isinstance(v, int):
            yield "const", f"{v}->{v + 1}"
        elif isinstance(v, float):
            yield "const", f"{v}->{v * 2 if v else 1.0}"
    elif isinstance(node, (ast.If, ast.While, ast.IfExp)):
        yield "negate", "cond->not cond"
    elif isinstance(node, ast.Return) and node.value is not None and not (
        isinstance(node.value, ast.Constant) and node.value.value is None
    ):
        yield "return_none", "return x->return None"
    elif isinstance(node, ast.Break):
        yield "flow", "break->continue"
    elif isinstance(node, ast.Continue):
        yield "flow", "continue->break"
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.Expr, ast.Raise)) and not (
        isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    ):
        yield "delete", f"{type(node).__name__} statement->pass"


def _apply(node: ast.AST, op: str) -> ast.AST:
    """Mutate ``node`` in place (or return its replacement)."""
    if op == "binop" or op == "augop":
        node.op = _BINOP_SWAP[type(node.op)]()  # type: ignore[attr-defined]
    elif op.startswith("cmp"):
        i = int(op[3:])
        node.ops[i] = _CMP_SWAP[type(node.ops[i])]()  # type: ignore[attr-defined]
    elif op == "boolop":
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()  # type: ignore[attr-defined]
    elif op in ("drop_not", "drop_neg"):
        return node.operand  # type: ignore[attr-defined]
    elif op == "const":
        v = node.value  # type: ignore[attr-defined]
        node.value = (not v) if isinstance(v, bool) else (v + 1 if isinstance(v, int) else (v * 2 if v else 1.0))  # type: ignore[attr-defined]
    elif op == "negate":
        node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)  # type: ignore[attr-defined]
    elif op == "return_none":
        node.value = ast.Constant(value=None)  # type: ignore[attr-defined]
    elif op == "flow":
        return ast.Continue() if isinstance(node, ast.Break) else ast.Break()
    elif op == "delete":
        return ast.Pass()
    return node


class _Replace(ast.NodeTransformer):
    def __init__(self, target: ast.AST, op: str) -> None:
        self.target, self.op = target, op

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if node is self.target:
            return _apply(node, self.op)
        return super().generic_visit(node)


def enumerate_mutants(file: str, source: str) -> list[Mutant]:
    tree = ast.parse(source)
    skip = _skip_ids(tree, source.splitlines())
    out = []
    for i, node in enumerate(ast.walk(tree)):
        if id(node) in skip:
            continue
        for op, desc in _edits(node):
            out.append(Mutant(file, i, op, getattr(node, "lineno", 0), getattr(node, "col_offset", 0), desc))
    return out


def mutated_source(source: str, m: Mutant) -> str:
    tree = ast.parse(source)
    target = next(n for i, n in enumerate(ast.walk(tree)) if i == m.index)
    tree = _Replace(target, m.op).visit(tree)
    return ast.unparse(ast.fix_missing_locations(tree))


def _copy_repo(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".venv", ".git", "*.egg-info", ".pytest_cache")
    for name in ("corpus", "sandbox", "training", "assets", "pipelines", "tests", "benchmarks"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name, ignore=ignore, symlinks=True)
    for name in ("pyproject.toml", "conftest.py", "dagster.yaml", "workspace.yaml"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, dest / name)


def _run_tests(workdir: Path, tests: list[str], timeout: float, select: str = "") -> tuple[str, float]:
    """'passed', 'failed' or 'timeout', and the seconds the test run took."""
    env = dict(os.environ, PYTHONPATH=str(workdir), PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header",
           "-o", "addopts=", "-m", "not slow and not gpu and not docker", *(["-k", select] if select else []), *tests]
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=timeout, start_new_session=True)
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - t0
    # 5 = no tests collected: treat as a broken setup, not a kill.
    if r.returncode == 5:
        raise SystemExit(f"no tests collected from {tests}")
    return ("passed" if r.returncode == 0 else "failed"), time.monotonic() - t0


def run(files: list[str], tests: list[str], *, max_mutants: int, seed: int, budget_s: float,
        timeout_factor: float, out: Path | None, name: str, select: str = "") -> dict:
    equivalent = json.loads(EQUIVALENT_FILE.read_text()) if EQUIVALENT_FILE.exists() else {}
    tests = [t for t in tests if (ROOT / t).exists()]
    sources = {f: (ROOT / f).read_text() for f in files}
    mutants: list[Mutant] = []
    for f in files:
        mutants += enumerate_mutants(f, sources[f])
    total = len(mutants)
    random.Random(seed).shuffle(mutants)
    if max_mutants:
        mutants = mutants[:max_mutants]
    start = time.monotonic()
    results = []
    with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
        work = Path(tmp)
        _copy_repo(work)
        # The unmutated (but unparsed) modules must pass, else every "kill" is meaningless.
        for f, src in sources.items():
            (work / f).write_text(ast.unparse(ast.parse(src)))
        status, base_s = _run_tests(work, tests, timeout=600, select=select)
        if status != "passed":
            raise SystemExit(f"the tests fail on the unmutated code: {tests}")
        timeout = max(60.0, base_s * timeout_factor)  # generous: the machine is shared
        print(f"[{name}] {total} mutants in {len(files)} files, running {len(mutants)} "
              f"(seed {seed}); tests {base_s:.1f} s, timeout {timeout:.0f} s", flush=True)
        for k, m in enumerate(mutants):
            if time.monotonic() - start > budget_s:
                print(f"[{name}] budget of {budget_s:.0f} s spent after {k} mutants", flush=True)
                break
            src = mutated_source(sources[m.file], m)
            if src == ast.unparse(ast.parse(sources[m.file])):
                results.append({**asdict(m), "key": m.key, "status": "identical", "seconds": 0.0})
                continue
            (work / m.file).write_text(src)
            try:
                status, secs = _run_tests(work, tests, timeout, select)
            finally:
                (work / m.file).write_text(ast.unparse(ast.parse(sources[m.file])))
            if status == "passed":
                verdict = "equivalent" if m.key in equivalent else "survived"
            else:
                verdict = "killed" if status == "failed" else "killed_timeout"
            results.append({**asdict(m), "key": m.key, "status": verdict, "seconds": round(secs, 2)})
            print(f"[{name}] {k + 1}/{len(mutants)} {verdict:10s} {m.key}", flush=True)
    counted = [r for r in results if r["status"] in ("killed", "killed_timeout", "survived", "equivalent")]
    killed = sum(r["status"].startswith("killed") for r in counted)
    timeouts = sum(r["status"] == "killed_timeout" for r in counted)
    equiv = sum(r["status"] == "equivalent" for r in counted)
    survived = [r["key"] for r in counted if r["status"] == "survived"]
    denom = len(counted) - equiv
    summary = {
        "module": name, "files": files, "tests": tests, "select": select, "mutants_total": total, "sampled": len(mutants),
        "run": len(counted), "killed": killed, "of_which_timeouts": timeouts, "survived": len(survived), "equivalent": equiv,
        "score": round(killed / denom, 3) if denom else None, "seconds": round(time.monotonic() - start, 1),
        "seed": seed, "survivors": survived,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "survivors"}), flush=True)
    for s in survived:
        print(f"  SURVIVED {s}", flush=True)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"summary": summary, "mutants": results}, indent=1))
    return summary


def report(folder: Path) -> str:
    """Markdown rows (module, mutants run / total, killed, survived, equivalent, score, minutes);
    survivors are re-checked against the current equivalent-mutant list."""
    equivalent = json.loads(EQUIVALENT_FILE.read_text()) if EQUIVALENT_FILE.exists() else {}
    rows = ["| module | mutants run (of all) | killed (timeouts) | survived | equivalent | score | minutes |",
            "|---|---|---|---|---|---|---|"]
    for f in sorted(folder.glob("*.json")):
        data = json.loads(f.read_text())
        s, ms = data["summary"], data["mutants"]
        run_ = [m for m in ms if m["status"] != "identical"]
        killed = sum(m["status"].startswith("killed") for m in run_)
        timeouts = sum(m["status"] == "killed_timeout" for m in run_)
        equiv = sum(m["status"] in ("survived", "equivalent") and m["key"] in equivalent for m in run_)
        survived = len(run_) - killed - equiv
        score = f"{100 * killed / (killed + survived):.0f}%" if killed + survived else "-"
        rows.append(f"| {s['module']} | {len(run_)} ({s['mutants_total']}) | {killed} ({timeouts}) | {survived} "
                    f"| {equiv} | {score} | {s['seconds'] / 60:.1f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--module", action="append", default=[],
                    help="a preset name (see --list) or a source file / package folder; repeatable")
    ap.add_argument("--tests", action="append", default=[], help="test paths for a non-preset --module")
    ap.add_argument("--max-mutants", type=int, default=60, help="seeded sample size per module (0 = all)")
    ap.add_argument("-k", dest="select", default="", help="pytest -k expression narrowing the tests")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget-s", type=float, default=900, help="stop starting mutants after this, per module")
    ap.add_argument("--timeout-factor", type=float, default=3.0, help="mutant timeout = factor x clean run")
    ap.add_argument("--out", type=Path, help="folder for one JSON result per module")
    ap.add_argument("--list", action="store_true", help="print the presets and exit")
    ap.add_argument("--report", type=Path, help="print a markdown table of the JSON results in this folder")
    args = ap.parse_args(argv)
    if args.report:
        print(report(args.report))
        return 0
    if args.list or not args.module:
        for k, (fs, ts, sel) in PRESETS.items():
            print(f"{k}: {' '.join(fs)}\n    tests: {' '.join(ts)}" + (f" -k {sel!r}" if sel else ""))
        return 0
    failed = False
    for mod in args.module:
        select = args.select
        if mod in PRESETS:
            files, tests, preset_select = PRESETS[mod]
            tests = args.tests or tests
            select = select or preset_select
        else:
            p = ROOT / mod
            files = ([str(f.relative_to(ROOT)) for f in sorted(p.rglob("*.py")) if not f.name.startswith("_")]
                     if p.is_dir() else [mod])
            tests = args.tests
            if not tests:
                ap.error(f"--tests is needed for --module {mod} (not a preset)")
        name = mod.replace("/", "_").removesuffix(".py")
        out = args.out / f"{name}.json" if args.out else None
        s = run(files, tests, max_mutants=args.max_mutants, seed=args.seed, budget_s=args.budget_s,
                timeout_factor=args.timeout_factor, out=out, name=name, select=select)
        failed |= s["score"] is not None and s["score"] < 0.8
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

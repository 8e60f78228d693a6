"""``python -m sandbox``: run one program in the sandbox, or list languages and toolchains.

    python -m sandbox run --language python --file sol.py --tests tests.py --timeout 5
    python -m sandbox languages [--backend docker] [--json]

``run`` prints one JSON object (status, exit_code, stdout, stderr, truncation flags,
duration_s, backend, message) and exits 0 whatever the status: the status is the answer.
It exits 2 only when the command line itself is wrong (missing file, bad option).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from sandbox.result import STATUSES

EPILOG = "statuses: " + ", ".join(STATUSES)


def _die(msg: str) -> None:
    print(f"sandbox: {msg}", file=sys.stderr)
    raise SystemExit(2)


def _read(path: str, what: str) -> bytes:
    """Raw bytes: a file that is not UTF-8 gets a precise syntax_error, not a mangled run."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        _die(f"cannot read {what} file {path!r}: {e.strerror}")
        raise  # unreachable: _die exits


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.split("\n\n")[0], epilog=EPILOG)
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.required = True
    r = sub.add_parser("run", help="run one program (and optional tests); prints a JSON result",
                       description="Run a program in the sandbox and print one JSON object. Exit status 0 "
                                   "whatever the program did; read the 'status' field.", epilog=EPILOG)
    r.add_argument("--language", "-l", required=True, help="python, javascript, typescript, java, cpp, c, rust, "
                   "go, bash (aliases like py, js, c++ work)")
    r.add_argument("--file", "-f", required=True, help="program source file ('-' reads standard input)")
    r.add_argument("--tests", "-t", help="tests in the same language, run against the program "
                   "(Python asserts / test_* functions, a Java main with asserts, a C/C++ main with assert.h, "
                   "node:assert for JavaScript)")
    r.add_argument("--stdin", "-s", help="file whose bytes are the program's standard input")
    r.add_argument("--data", action="append", default=[], metavar="NAME=PATH",
                   help="put the file PATH into the work dir as NAME (repeatable)")
    r.add_argument("--timeout", type=float, default=10.0, help="wall-clock seconds for the run (default 10)")
    r.add_argument("--compile-timeout", type=float, default=30.0, help="seconds for compiling (default 30)")
    r.add_argument("--memory-mb", type=int, default=512, help="memory limit in MiB (default 512)")
    r.add_argument("--max-output", type=int, default=1024 * 1024, help="bytes per stream before the run is "
                   "stopped with status output_limit (default 1 MiB)")
    r.add_argument("--backend", choices=["auto", "bwrap", "docker"], default="auto",
                   help="isolation backend (default auto: bwrap, else docker)")
    r.add_argument("--no-static-check", action="store_true", help="skip the tree-sitter syntax check")
    langs = sub.add_parser("languages", help="list languages and whether each toolchain is present")
    langs.add_argument("--backend", choices=["auto", "bwrap", "docker"], default="auto")
    langs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def _run(a: argparse.Namespace) -> int:
    from sandbox.api import execute

    if a.file == "-" and a.tests == "-":
        _die("--file and --tests cannot both read standard input")
    code = _read(a.file, "program")
    tests = _read(a.tests, "tests") if a.tests else None
    stdin = b""
    if a.stdin:
        try:
            with open(a.stdin, "rb") as f:
                stdin = f.read()
        except OSError as e:
            _die(f"cannot read stdin file {a.stdin!r}: {e.strerror}")
    files = {}
    for spec in a.data:
        name, sep, path = spec.partition("=")
        if not sep:
            _die(f"--data wants NAME=PATH, got {spec!r}")
        try:
            with open(path, "rb") as f:
                files[name] = f.read()
        except OSError as e:
            _die(f"cannot read --data file {path!r}: {e.strerror}")
    res = execute(code, a.language, tests=tests, stdin=stdin, files=files, timeout_s=a.timeout,
                  memory_mb=a.memory_mb, backend=a.backend, compile_timeout_s=a.compile_timeout,
                  max_output_bytes=a.max_output, static_check=not a.no_static_check)
    json.dump(res.to_dict(), sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def _languages(a: argparse.Namespace) -> int:
    from sandbox.api import languages_report

    rows = languages_report(a.backend)
    if a.json:
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    print(f"{'language':<11} {'present':<8} {'backend':<7} version / reason")
    for r in rows:
        print(f"{r['language']:<11} {'yes' if r['available'] else 'no':<8} {r['backend']:<7} "
              f"{r['version'] or r['reason']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    return _run(a) if a.cmd == "run" else _languages(a)


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m sandbox`: run prints one JSON object and exits 0 whatever the status; languages lists toolchains."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sandbox.__main__ import main
from sandbox.result import STATUSES


def _run_cli(capsys, argv):
    rc = main(argv)
    return rc, capsys.readouterr()


def test_run_passed_failed_timeout(tmp_path, capsys):
    prog = tmp_path / "sol.py"
    prog.write_text("def f(x):\n    return x * 2\nprint(input())\n")
    tests = tmp_path / "t.py"
    tests.write_text("assert f(2) == 4\n")
    stdin = tmp_path / "in.txt"
    stdin.write_text("hi\n")
    rc, out = _run_cli(capsys, ["run", "--language", "python", "--file", str(prog), "--tests", str(tests),
                                "--stdin", str(stdin)])
    assert rc == 0
    res = json.loads(out.out)
    assert res["status"] == "passed" and res["stdout"] == "hi\n" and res["backend"] == "bwrap"
    assert set(res) >= {"status", "exit_code", "stdout", "stderr", "stdout_truncated", "stderr_truncated",
                        "duration_s", "backend"}
    tests.write_text("assert f(2) == 5\n")
    rc, out = _run_cli(capsys, ["run", "-l", "py", "-f", str(prog), "-t", str(tests), "-s", str(stdin)])
    assert rc == 0 and json.loads(out.out)["status"] == "failed"
    prog.write_text("while True: pass\n")
    rc, out = _run_cli(capsys, ["run", "-l", "python", "-f", str(prog), "--timeout", "0.5", "--memory-mb", "64"])
    assert rc == 0 and json.loads(out.out)["status"] == "timeout"


def test_run_data_files_and_bad_arguments(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("a,b\n")
    prog = tmp_path / "p.py"
    prog.write_text("print(open('input.csv').read(), end='')\n")
    rc, out = _run_cli(capsys, ["run", "-l", "python", "-f", str(prog), "--data", f"input.csv={data}"])
    assert rc == 0 and json.loads(out.out)["stdout"] == "a,b\n"
    with pytest.raises(SystemExit) as e:
        main(["run", "-l", "python", "-f", str(tmp_path / "missing.py")])
    assert e.value.code == 2
    assert "cannot read program file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["run", "-l", "python", "-f", str(prog), "--data", "nonsense"])
    assert e.value.code == 2 and "NAME=PATH" in capsys.readouterr().err


def test_syntax_error_and_unknown_language_are_json(tmp_path, capsys):
    prog = tmp_path / "p.py"
    prog.write_text("def f(:\n")
    rc, out = _run_cli(capsys, ["run", "-l", "python", "-f", str(prog)])
    assert rc == 0 and json.loads(out.out)["status"] == "syntax_error"
    rc, out = _run_cli(capsys, ["run", "-l", "klingon", "-f", str(prog)])
    res = json.loads(out.out)
    assert rc == 0 and res["status"] == "sandbox_error" and "unknown language" in res["message"]
    assert res["status"] in STATUSES


def test_languages_table_and_json(capsys):
    rc, out = _run_cli(capsys, ["languages", "--backend", "bwrap"])
    assert rc == 0
    lines = out.out.splitlines()
    assert lines[0].startswith("language")
    rows = {ln.split()[0]: ln.split()[1] for ln in lines[1:]}
    assert rows["python"] == "yes" and rows["cpp"] == "yes" and rows["java"] == "yes"
    assert set(rows) == {"python", "javascript", "typescript", "java", "cpp", "c", "rust", "go", "bash"}
    rc, out = _run_cli(capsys, ["languages", "--backend", "bwrap", "--json"])
    data = json.loads(out.out)
    assert all(r["available"] or r["reason"] for r in data)  # every missing toolchain says why


def test_module_entry_point_and_help(tmp_path):
    prog = tmp_path / "p.js"
    prog.write_text("console.log(6 * 7)\n")
    p = subprocess.run([sys.executable, "-m", "sandbox", "run", "-l", "js", "-f", str(prog)],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path,
                       env={"PYTHONPATH": _repo(), "PATH": "/usr/local/bin:/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["stdout"] == "42\n"
    h = subprocess.run([sys.executable, "-m", "sandbox", "run", "--help"], capture_output=True, text=True,
                       timeout=60, env={"PYTHONPATH": _repo()})
    assert h.returncode == 0 and "--memory-mb" in h.stdout and "output_limit" in h.stdout


def _repo() -> str:
    import os

    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_non_utf8_file_is_a_syntax_error(tmp_path, capsys):
    prog = tmp_path / "latin1.py"
    prog.write_bytes("print('café')\n".encode("latin-1"))
    rc, out = _run_cli(capsys, ["run", "-l", "python", "-f", str(prog)])
    res = json.loads(out.out)
    assert rc == 0 and res["status"] == "syntax_error" and "byte 0xe9" in res["message"]

"""Repo-level format: import graphs and dependency order on real packages, repo documents."""

from __future__ import annotations

import graphlib
import zipfile
from pathlib import Path

import pytest
from tokdata import PY_INCLUDE, STDLIB, trained_tokenizer

from corpus.tokenize.encoder import FastEncoder
from corpus.tokenize.repo import RepoFile, dependency_graph, order_files, repo_documents

GLOB_ESM = Path("/usr/lib/node_modules/npm/node_modules/glob/dist/esm")
JDK_ZIPS = [Path("/usr/lib/jvm/java-17-openjdk-amd64/lib/src.zip"), Path("/usr/lib/jvm/temurin-25-jdk-amd64/lib/src.zip")]


def _files(root: Path, pattern: str, base: Path | None = None) -> list[RepoFile]:
    base = base or root.parent
    return [RepoFile(str(f.relative_to(base)), f.read_text(encoding="utf-8")) for f in sorted(root.glob(pattern))]


def _assert_topological(files: list[RepoFile], seed: int = 0) -> list[str]:
    graph = dependency_graph(files)
    graphlib.TopologicalSorter(graph).static_order()  # raises CycleError: only acyclic inputs here
    order = [f.path for f in order_files(files, seed)]
    assert sorted(order) == sorted(f.path for f in files)
    pos = {p: i for i, p in enumerate(order)}
    for f, deps in graph.items():
        for d in deps:
            assert pos[d] < pos[f], f"{d} must precede {f} (it imports it); order={order}"
    return order


def test_python_json_package_dependency_order():
    files = _files(STDLIB / "json", "*.py")
    graph = dependency_graph(files)
    assert graph["json/__init__.py"] == {"json/decoder.py", "json/encoder.py"}
    assert graph["json/decoder.py"] == {"json/scanner.py"}  # `from json import scanner`
    assert graph["json/tool.py"] == {"json/__init__.py"}
    for seed in range(5):
        order = _assert_topological(files, seed)
        assert order[-1] == "json/tool.py"


def test_python_relative_imports_email_package():
    files = _files(STDLIB / "email", "*.py")
    graph = dependency_graph(files)
    # email/message.py: `from email import utils`, `from email._policybase import compat32`
    assert {"email/utils.py", "email/_policybase.py"} <= graph["email/message.py"]
    assert "email/errors.py" in graph["email/_header_value_parser.py"]
    order = [f.path for f in order_files(files, 0)]
    assert order.index("email/_policybase.py") < order.index("email/message.py")


@pytest.mark.skipif(not GLOB_ESM.is_dir(), reason="npm's glob package is not installed here")
def test_javascript_relative_imports():
    files = _files(GLOB_ESM, "*.js", GLOB_ESM)
    graph = dependency_graph(files)
    assert {"glob.js", "has-magic.js"} <= graph["index.js"]
    assert "pattern.js" in graph["glob.js"]
    _assert_topological(files)


def test_c_includes_python_headers():
    files = _files(PY_INCLUDE, "*.h", PY_INCLUDE)
    graph = dependency_graph(files)
    assert {"patchlevel.h", "pyport.h", "object.h"} <= graph["Python.h"]
    order = [f.path for f in order_files(files, 3)]
    assert sorted(order) == sorted(f.path for f in files)
    assert order.index("patchlevel.h") < order.index("Python.h")
    assert order[-1] == "Python.h"  # includes (nearly) everything


def test_java_same_package_and_imports():
    zpath = next((z for z in JDK_ZIPS if z.is_file()), None)
    if zpath is None:
        pytest.skip("no JDK src.zip on this machine")
    prefix = "java.base/java/util/concurrent/atomic/"
    with zipfile.ZipFile(zpath) as z:
        files = [RepoFile(n, z.read(n).decode("utf-8")) for n in sorted(z.namelist())
                 if n.startswith(prefix) and n.endswith(".java") and "package-info" not in n]
    graph = dependency_graph(files)
    assert prefix + "Striped64.java" in graph[prefix + "LongAdder.java"]  # extends Striped64
    order = [f.path for f in order_files(files, 0)]
    assert order.index(prefix + "Striped64.java") < order.index(prefix + "LongAdder.java")
    assert order.index(prefix + "Striped64.java") < order.index(prefix + "DoubleAccumulator.java")
    assert graph[prefix + "AtomicLong.java"] == set()  # mentions in javadoc/comments are not uses
    _assert_topological(files)


def test_cycles_are_tolerated_and_ties_are_seeded():
    files = [
        RepoFile("pkg/a.py", "from pkg import b\n"),
        RepoFile("pkg/b.py", "from pkg import a\n"),
        RepoFile("pkg/c.py", "x = 1\n"),
        RepoFile("pkg/d.py", "y = 2\n"),
    ]
    orders = {tuple(f.path for f in order_files(files, s)) for s in range(20)}
    assert all(sorted(o) == sorted(f.path for f in files) for o in orders)
    assert len(orders) > 1  # ties broken differently by different seeds
    assert order_files(files, 7) == order_files(files, 7)
    for o in orders:  # files with no pending deps always come before the cycle is broken
        assert set(o[:2]) == {"pkg/c.py", "pkg/d.py"}


@pytest.fixture(scope="module")
def enc(tmp_path_factory):
    return FastEncoder.from_file(str(trained_tokenizer(tmp_path_factory.mktemp("tok") / "t.json")))


def test_repo_document_format_exact(enc):
    files = order_files(_files(STDLIB / "json", "*.py"), 0)
    docs = repo_documents("cpython/json", files, enc.encode_batch, enc.info.special_tokens, 200_000, fim_rate=0.0)
    assert len(docs) == 1 and docs[0].truncated_tokens == 0
    expected = "<|repo_name|>cpython/json\n" + "".join(f"<|file_sep|>{f.path}\n{f.content}" for f in files)
    assert enc.decode(docs[0].ids) == expected
    assert docs[0].files == [f.path for f in files]


def test_repo_documents_split_long_files_without_loss(enc):
    files = order_files(_files(STDLIB / "json", "*.py"), 0)
    sp = enc.info.special_tokens
    docs = repo_documents("r", files, enc.encode_batch, sp, 256, fim_rate=0.0)
    assert len(docs) > 5 and all(len(d.ids) <= 256 for d in docs)
    assert all(d.ids[0] == sp["<|repo_name|>"] for d in docs)
    body = sum(len(x) for x in enc.encode_batch([f.content for f in files]))
    header = len(enc.encode("r\n")) + 1
    paths = {f.path: len(enc.encode(f.path + "\n")) + 1 for f in files}
    got = sum(len(d.ids) - header - sum(paths[p] for p in d.files) for d in docs)
    assert got == body  # every content token is somewhere
    truncated = repo_documents("r", files, enc.encode_batch, sp, 256, fim_rate=0.0, long_files="truncate")
    assert sum(d.truncated_tokens for d in truncated) > 0
    assert len(truncated) < len(docs)


def test_repo_level_fim_moves_the_file_last(enc):
    files = order_files(_files(STDLIB / "json", "*.py"), 0)
    sp = enc.info.special_tokens
    docs = repo_documents("cpython/json", files, enc.encode_batch, sp, 200_000, fim_rate=1.0, seed=3)
    d = docs[0]
    assert d.fim_file is not None and d.files[-1] == d.fim_file
    assert d.ids.count(sp["<|fim_prefix|>"]) == 1 and d.ids.count(sp["<|fim_middle|>"]) == 1
    text = enc.decode(d.ids)
    assert text.startswith("<|repo_name|>cpython/json\n<|file_sep|>")
    assert text.rsplit("<|file_sep|>", 1)[1].startswith(d.fim_file + "\n<|fim_prefix|>")
    again = repo_documents("cpython/json", files, enc.encode_batch, sp, 200_000, fim_rate=1.0, seed=3)
    assert again[0].ids == d.ids

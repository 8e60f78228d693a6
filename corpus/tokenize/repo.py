"""Repository-level documents: files of one repo, dependencies first, in Qwen2.5-Coder's format.

    <|repo_name|>{repo}\\n<|file_sep|>{path}\\n{content}<|file_sep|>{path}\\n{content}...

Import edges are found with line rules (fast, and robust on broken code) for Python
(``import a.b`` / ``from .x import y``, relative imports resolved against the package),
Java (``import a.b.C;`` -> ``a/b/C.java``, wildcard -> every file of the package), JS/TS
(``import ... from './x'``, ``require('./x')``, ``import('./x')`` with extension and
``index`` resolution) and C/C++ (``#include "x.h"`` relative to the file, then by path suffix).
Only edges to files of the same repository count.

Ordering: repeatedly take the remaining file with the fewest not-yet-emitted dependencies
(its in-degree); ties are broken by a seeded hash of the path, so cycles are tolerated and the
order is reproducible. A file that is a dependency of others therefore precedes them.
"""

from __future__ import annotations

import heapq
import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import xxhash

_PY_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w., \t]+)", re.M)
_PY_FROM = re.compile(r"^[ \t]*from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+\(?([\w., \t*]+)", re.M)
_JAVA_IMPORT = re.compile(r"^[ \t]*import[ \t]+(?:static[ \t]+)?([\w.]+?)(\.\*)?[ \t]*;", re.M)
_JAVA_PACKAGE = re.compile(r"^[ \t]*package[ \t]+([\w.]+)[ \t]*;", re.M)
_JS_IMPORT = re.compile(
    r"""(?:\bimport\b[^'";]*?\bfrom[ \t]*|\bimport[ \t]*\(?[ \t]*|\brequire[ \t]*\([ \t]*|\bexport\b[^'";]*?\bfrom[ \t]*)['"]([^'"\n]+)['"]"""
)
_C_LIKE_NOISE = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"', re.S)
_C_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"\n]+)"', re.M)

_JS_EXTS = (".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".d.ts")
LANGUAGE_BY_EXT = {
    ".py": "python", ".java": "java", ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp",
    ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp", ".js": "javascript", ".jsx": "javascript", ".mjs": "javascript",
    ".cjs": "javascript", ".ts": "typescript", ".tsx": "typescript",
}


@dataclass(frozen=True)
class RepoFile:
    path: str
    content: str
    language: str | None = None
    doc_id: str = ""
    source: str = "code"


def _lang(f: RepoFile) -> str | None:
    if f.language in ("python", "java", "c", "cpp", "javascript", "typescript"):
        return f.language
    return LANGUAGE_BY_EXT.get(posixpath.splitext(f.path)[1].lower())


class _Index:
    """Lookups from module names / relative paths to the repository's files."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = set(paths)
        self.py_modules: dict[str, str] = {}
        self.by_suffix: dict[str, list[str]] = defaultdict(list)
        self.java_pkg: dict[str, list[str]] = defaultdict(list)
        for p in paths:
            parts = p.split("/")
            for i in range(len(parts)):
                self.by_suffix["/".join(parts[i:])].append(p)
            if p.endswith(".py"):
                mod = p[:-3].replace("/", ".")
                if mod.endswith(".__init__"):
                    mod = mod[: -len(".__init__")]
                # every suffix of the dotted path can be how the code imports it (src/ layouts)
                segs = mod.split(".")
                for i in range(len(segs)):
                    self.py_modules.setdefault(".".join(segs[i:]), p)
            if p.endswith(".java"):
                self.java_pkg[posixpath.dirname(p)].append(p)

    def suffix(self, rel: str) -> list[str]:
        return sorted(self.by_suffix.get(rel, []))


def _py_deps(f: RepoFile, idx: _Index) -> set[str]:
    out: set[str] = set()
    pkg = f.path[:-3].replace("/", ".").split(".")[:-1] if f.path.endswith(".py") else []
    if f.path.endswith("__init__.py"):
        pkg = f.path.replace("/", ".").split(".")[:-2]
    for m in _PY_IMPORT.finditer(f.content):
        for name in m.group(1).split(","):
            name = name.strip().split()[0] if name.strip() else ""
            if name:
                out |= _py_lookup(name, idx)
    for m in _PY_FROM.finditer(f.content):
        mod, names = m.group(1), [n.strip().split()[0] for n in m.group(2).split(",") if n.strip()]
        dots = len(mod) - len(mod.lstrip("."))
        if dots:
            base = pkg[: len(pkg) - (dots - 1)] if dots - 1 <= len(pkg) else []
            mod = ".".join(base + ([mod.lstrip(".")] if mod.lstrip(".") else []))
        if not mod:
            continue
        # ``from pkg import sub`` depends on the submodule; only names that are not modules
        # (functions, classes) make it depend on ``pkg`` itself.
        for n in names:
            sub = _py_lookup(f"{mod}.{n}", idx) if n != "*" else set()
            out |= sub or _py_lookup(mod, idx)
        if not names:
            out |= _py_lookup(mod, idx)
    return out


def _py_lookup(name: str, idx: _Index) -> set[str]:
    p = idx.py_modules.get(name)
    return {p} if p else set()


def _java_deps(f: RepoFile, idx: _Index) -> set[str]:
    out: set[str] = set()
    for m in _JAVA_IMPORT.finditer(f.content):
        name, star = m.group(1), m.group(2)
        rel = name.replace(".", "/")
        if star:
            for d, files in idx.java_pkg.items():
                if d == rel or d.endswith("/" + rel):
                    out.update(files)
        else:
            cands = idx.suffix(rel + ".java") or idx.suffix(posixpath.dirname(rel) + ".java")  # static member
            out.update(cands[:1])
    pm = _JAVA_PACKAGE.search(f.content)  # same-package classes used by simple name in code
    if pm:
        d = posixpath.dirname(f.path)
        code = _C_LIKE_NOISE.sub(" ", f.content)  # not in comments / javadoc / strings
        for other in idx.java_pkg.get(d, []):
            cls = posixpath.basename(other)[:-5]
            if other != f.path and re.search(rf"\b{re.escape(cls)}\b", code):
                out.add(other)
    return out


def _js_deps(f: RepoFile, idx: _Index) -> set[str]:
    out: set[str] = set()
    here = posixpath.dirname(f.path)
    for m in _JS_IMPORT.finditer(f.content):
        spec = m.group(1)
        if not spec.startswith("."):
            continue
        base = posixpath.normpath(posixpath.join(here, spec))
        for cand in [base, *(base + e for e in _JS_EXTS), *(f"{base}/index{e}" for e in _JS_EXTS)]:
            if cand in idx.paths:
                out.add(cand)
                break
    return out


def _c_deps(f: RepoFile, idx: _Index) -> set[str]:
    out: set[str] = set()
    here = posixpath.dirname(f.path)
    for m in _C_INCLUDE.finditer(f.content):
        inc = m.group(1)
        local = posixpath.normpath(posixpath.join(here, inc))
        if local in idx.paths:
            out.add(local)
        else:
            out.update(idx.suffix(posixpath.normpath(inc))[:1])
    return out


_DEPS = {"python": _py_deps, "java": _java_deps, "javascript": _js_deps, "typescript": _js_deps,
         "c": _c_deps, "cpp": _c_deps}


def dependency_graph(files: Sequence[RepoFile]) -> dict[str, set[str]]:
    """``{path: paths it depends on}`` for the files of one repository (self-edges dropped)."""
    idx = _Index([f.path for f in files])
    graph: dict[str, set[str]] = {}
    for f in files:
        lang = _lang(f)
        fn = _DEPS.get(lang or "")
        graph[f.path] = (fn(f, idx) - {f.path}) if fn else set()
    return graph


def order_files(files: Sequence[RepoFile], seed: int = 0) -> list[RepoFile]:
    """Files ordered dependencies-first: smallest remaining in-degree next, seeded ties."""
    by_path: dict[str, RepoFile] = {}
    for f in files:
        by_path.setdefault(f.path, f)
    graph = dependency_graph(list(by_path.values()))
    indeg = {p: len(d) for p, d in graph.items()}
    dependents: dict[str, list[str]] = defaultdict(list)
    for p, deps in graph.items():
        for d in deps:
            dependents[d].append(p)
    tie = {p: xxhash.xxh64_intdigest(f"{seed}\x00{p}") for p in by_path}
    heap = [(indeg[p], tie[p], p) for p in by_path]
    heapq.heapify(heap)
    done: set[str] = set()
    out: list[RepoFile] = []
    while heap:
        d, _, p = heapq.heappop(heap)
        if p in done or d != indeg[p]:
            continue  # stale heap entry
        done.add(p)
        out.append(by_path[p])
        for q in dependents[p]:
            if q not in done:
                indeg[q] -= 1
                heapq.heappush(heap, (indeg[q], tie[q], q))
    return out


def group_by_repo(rows: Iterable[RepoFile | tuple[str, RepoFile]]) -> Iterable[tuple[str, list[RepoFile]]]:
    """Consecutive rows of the same repo as one group (input must be sorted by repo)."""
    cur: str | None = None
    group: list[RepoFile] = []
    for repo, f in rows:  # type: ignore[misc]
        if repo != cur and group:
            yield cur, group  # type: ignore[misc]
            group = []
        cur = repo
        group.append(f)
    if group:
        yield cur, group  # type: ignore[misc]


@dataclass
class RepoDoc:
    """One repo-level training document (a repo longer than the context is split into several)."""

    ids: list[int]
    files: list[str]
    fim_file: str | None
    truncated_tokens: int


def repo_documents(
    repo: str,
    ordered: Sequence[RepoFile],
    encode_batch,
    special: dict[str, int],
    max_tokens: int,
    *,
    fim_rate: float = 0.5,
    spm_rate: float = 0.5,
    seed: int = 0,
    long_files: str = "split",
) -> list[RepoDoc]:
    """Token ids of ``repo`` in the repo-level format, split into documents of <= ``max_tokens``.

    Files are kept whole and in order while they fit; each document repeats the
    ``<|repo_name|>`` header. A single file longer than the budget is cut into pieces that
    each start a document with the header and its ``<|file_sep|>{path}`` line
    (``long_files="split"``, nothing lost) or truncated (``"truncate"``, Qwen2.5-Coder's
    choice at 32K context; the lost tokens are counted).
    With probability ``fim_rate`` per document one of its whole files (seeded) gets FIM and is
    moved to the end of the document, so the middle to predict comes last, as in Qwen2.5-Coder's
    repo-level completion format; its dependencies still precede it.
    """
    from corpus.tokenize.fim import doc_rng, fim_ids, split_fim
    from corpus.tokenize.tokenizer import FILE_SEP, REPO_NAME

    if long_files not in ("split", "truncate"):
        raise ValueError(f"long_files={long_files!r}: expected 'split' or 'truncate'")
    if not ordered:
        return []
    enc = encode_batch([repo + "\n"] + [f.path + "\n" for f in ordered] + [f.content for f in ordered])
    header = [special[REPO_NAME], *enc[0]]
    n = len(ordered)
    budget = max_tokens - len(header)
    # each unit: (file index, token segment, whole file?)
    units: list[tuple[int, list[int], bool]] = []
    truncated = 0
    for i in range(n):
        head = [special[FILE_SEP], *enc[1 + i]]
        body = enc[1 + n + i]
        room = budget - len(head)
        if room < 8:
            raise ValueError(f"max_tokens={max_tokens} leaves no room for file {ordered[i].path!r} of {repo!r}")
        if len(body) <= room:
            units.append((i, head + body, True))
        elif long_files == "truncate":
            truncated += len(body) - room
            units.append((i, head + body[:room], False))
        else:
            for k in range(0, len(body), room):
                units.append((i, head + body[k : k + room], False))
    chunks: list[list[int]] = []
    cur: list[int] = []
    used = 0
    for u, (_, seg, _) in enumerate(units):
        if used + len(seg) > budget and cur:
            chunks.append(cur)
            cur, used = [], 0
        cur.append(u)
        used += len(seg)
    if cur:
        chunks.append(cur)
    docs = []
    for c, members in enumerate(chunks):
        rng = doc_rng(seed, f"{repo}\x00{c}", "repo-fim")
        whole = [u for u in members if units[u][2]]
        fim_u = whole[rng.randrange(len(whole))] if whole and rng.random() < fim_rate else None
        order = members if fim_u is None else [u for u in members if u != fim_u] + [fim_u]
        ids = list(header)
        fim_file = None
        for u in order:
            i, seg, _ = units[u]
            if u == fim_u:
                split = split_fim(ordered[i].content, rng, 1.0, spm_rate)
                if split is not None:
                    fim_file = ordered[i].path
                    ids += [special[FILE_SEP], *enc[1 + i]]
                    ids += fim_ids(split, lambda t: encode_batch([t])[0], special)
                    continue
            ids += seg
        over = max(0, len(ids) - max_tokens)  # FIM re-encoding can add a few tokens
        docs.append(RepoDoc(ids[:max_tokens], [ordered[units[u][0]].path for u in order], fim_file, over))
    if docs:
        docs[0].truncated_tokens += truncated
    return docs

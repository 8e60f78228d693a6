"""Built-in local corpora for the embedded default (no network): real text shipped by Debian
packages and Python wheels on this machine, and a builder that wraps local pages into real
WARC / WET files so the embedded run exercises the same ingest path as Common Crawl.

What each ``local:<name>`` is, honestly:

- ``python-docs``: the CPython HTML documentation (Debian ``python3-doc`` /
  ``python3.X`` docs): tutorials, library reference, HOWTOs -> code-related positives.
- ``debian-html-docs``: every other HTML page under /usr/share/doc (libxslt API docs,
  Node.js and Valgrind manuals, ...) -> mostly code-related.
- ``debian-changelogs``: ``/usr/share/doc/*/changelog.Debian.gz`` -> packaging prose.
- ``debian-copyright``: ``/usr/share/doc/*/copyright`` -> licence and attribution prose.
- ``common-licenses``: ``/usr/share/common-licenses/*`` -> licence texts.
- ``math-docstrings``: module, class and function docstrings of sympy and mpmath read with
  ``ast`` (nothing is imported): real mathematical prose written by those projects,
  often with formulas in reStructuredText/LaTeX and doctest lines. It is *not* a web
  math corpus like OpenWebMath; it only stands in for one on a machine without network.
"""

from __future__ import annotations

import ast
import glob
import gzip
import html
import importlib.util
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass

from corpus import safety
from corpus.textcode.ingest import Doc, ReadOptions, in_shard, iter_html_file, iter_text_file
from corpus.textcode.skips import SkipCounter

DOC_ROOT = "/usr/share/doc"
PYTHON_DOC_CANDIDATES = (
    "/usr/share/doc/python3-doc/html",
    "/usr/share/doc/python3/html",
    "/usr/share/doc/python3.*-doc/html",
    "/usr/share/doc/python3.*/html",
)
# Generated index pages: lists of names, not documentation prose.
_PY_DOC_SKIP = ("genindex", "search.html", "py-modindex.html", "_static", "_sources", "_downloads", "_images")
MATH_PACKAGES = ("sympy", "mpmath")


def python_doc_root() -> str | None:
    """The first installed CPython HTML documentation folder (symlinks resolved), or None."""
    for pattern in PYTHON_DOC_CANDIDATES:
        for cand in sorted(glob.glob(pattern)):
            real = os.path.realpath(cand)
            if os.path.isfile(os.path.join(real, "index.html")):
                return real
    return None


def _walk(root: str, suffixes: tuple[str, ...]) -> list[str]:
    out = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        out.extend(os.path.join(d, f) for f in sorted(files) if f.lower().endswith(suffixes))
    return out


def python_doc_files() -> list[str]:
    root = python_doc_root()
    if root is None:
        return []
    return [p for p in _walk(root, (".html",)) if not any(s in os.path.relpath(p, root) for s in _PY_DOC_SKIP)]


def debian_html_files() -> list[str]:
    py = python_doc_root()
    out = []
    for p in _walk(DOC_ROOT, (".html", ".htm")):
        real = os.path.realpath(p)
        if (py and real.startswith(py + os.sep)) or "/python3" in p:
            continue
        out.append(real)
    return sorted(set(out))


def debian_changelog_files() -> list[str]:
    return sorted({os.path.realpath(p) for p in glob.glob(f"{DOC_ROOT}/*/changelog.Debian.gz")})


def debian_copyright_files() -> list[str]:
    return sorted({os.path.realpath(p) for p in glob.glob(f"{DOC_ROOT}/*/copyright")})


def common_license_files() -> list[str]:
    return sorted({os.path.realpath(p) for p in glob.glob("/usr/share/common-licenses/*") if os.path.isfile(p)})


def math_source_files() -> list[str]:
    out = []
    for pkg in MATH_PACKAGES:
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            continue
        for root in spec.submodule_search_locations:
            out.extend(p for p in _walk(root, (".py",)) if "/tests/" not in p and "/benchmarks/" not in p)
    return sorted(out)


def iter_docstrings(path: str, skips: SkipCounter, min_chars: int = 300) -> Iterator[Doc]:
    """Long docstrings of one Python source file (parsed, never imported)."""
    try:
        with open(path, "rb") as fh:
            tree = ast.parse(fh.read(), filename=path)
    except (SyntaxError, ValueError, OSError):
        skips.add("unparsable_python_source", path)
        return
    nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)]
    for node in nodes:
        doc = ast.get_docstring(node)
        if doc and len(doc) >= min_chars:
            name = getattr(node, "name", "")
            anchor = f"#{name}-L{node.lineno}" if name else ""
            yield Doc(url=f"file://{path}{anchor}", text=doc.strip(), source="docstring")


@dataclass(frozen=True)
class LocalCorpus:
    name: str
    kind: str  # html | text | docstrings
    description: str

    def files(self) -> list[str]:
        return {
            "python-docs": python_doc_files,
            "debian-html-docs": debian_html_files,
            "debian-changelogs": debian_changelog_files,
            "debian-copyright": debian_copyright_files,
            "common-licenses": common_license_files,
            "math-docstrings": math_source_files,
        }[self.name]()


LOCAL_CORPORA = {
    c.name: c
    for c in (
        LocalCorpus("python-docs", "html", "CPython HTML documentation (python3-doc)"),
        LocalCorpus("debian-html-docs", "html", "other HTML docs under /usr/share/doc"),
        LocalCorpus("debian-changelogs", "text", "/usr/share/doc/*/changelog.Debian.gz"),
        LocalCorpus("debian-copyright", "text", "/usr/share/doc/*/copyright"),
        LocalCorpus("common-licenses", "text", "/usr/share/common-licenses/*"),
        LocalCorpus("math-docstrings", "docstrings", "sympy + mpmath docstrings (ast, not imported)"),
    )
}


def iter_local(
    name: str, skips: SkipCounter, opts: ReadOptions = ReadOptions(), shard: tuple[int, int] = (0, 1)
) -> Iterator[Doc]:
    """Documents of a built-in local corpus; ``shard=(i, n)`` keeps the i-th of n file shards."""
    corpus = LOCAL_CORPORA.get(name)
    if corpus is None:
        raise ValueError(f"unknown local corpus 'local:{name}'; known: {sorted(LOCAL_CORPORA)}")
    files = corpus.files()
    if not files:
        raise FileNotFoundError(
            f"local:{name} ({corpus.description}) found no files on this machine; "
            "install the Debian docs with scripts/system_deps.sh or configure other sources"
        )
    i, n = shard
    reader = {"html": iter_html_file, "text": iter_text_file}.get(corpus.kind)
    for path in files:
        if not in_shard(os.path.abspath(path), i, n):
            continue
        if reader is None:
            yield from iter_docstrings(path, skips)
        else:
            yield from reader(path, skips, opts)


# --------------------------------------------------------------------------- local WARC / WET


def text_to_html(title: str, text: str) -> bytes:
    """Wrap plain prose into a minimal HTML page (paragraph per blank-line block)."""
    paras = [p.strip() for p in text.split("\n\n") if p.strip()]
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paras)
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title></head>"
        f"<body><nav><a href=\"/\">Home</a></nav><main><h1>{html.escape(title)}</h1>\n{body}\n</main>"
        f"<footer>Generated from a local Debian document</footer></body></html>"
    ).encode()


def local_web_pages(max_pages: int, seed_shard: int = 1) -> list[tuple[str, bytes]]:
    """(url, html bytes) of real local pages for the embedded web batches.

    Uses the *other* hash shard (``seed_shard``) of the corpora the seed classifier trains on
    (python-docs@0/2 etc.), so web batches are disjoint from the seed training data.
    Positives: CPython and other Debian HTML docs; negatives: changelog / copyright prose
    wrapped as HTML pages. Interleaved and capped at ``max_pages``.
    """
    def take(files: list[str], cap: int) -> list[str]:
        return [p for p in files if in_shard(os.path.abspath(p), seed_shard, 2)][:cap]

    per = max(1, max_pages // 4)
    pages: list[list[tuple[str, bytes]]] = [[], [], [], []]
    for p in take(python_doc_files(), per):
        pages[0].append((f"file://{p}", _read(p)))
    for p in take(debian_html_files(), per):
        pages[1].append((f"file://{p}", _read(p)))
    for idx, files in ((2, debian_changelog_files()), (3, debian_copyright_files())):
        for p in take(files, per):
            raw = _read(p)
            text = raw.decode("utf-8", errors="replace")
            title = os.path.basename(os.path.dirname(p)) + " " + os.path.basename(p).split(".")[0]
            pages[idx].append((f"file://{p}", text_to_html(title, text)))
    out: list[tuple[str, bytes]] = []
    for row in range(per):
        for group in pages:
            if row < len(group):
                out.append(group[row])
    return out[:max_pages]


def _read(path: str) -> bytes:
    if path.endswith(".gz"):
        with gzip.open(path, "rb") as fh:
            return fh.read()
    with open(path, "rb") as fh:
        return fh.read()


_FIXED_DATE = "2024-01-01T00:00:00Z"


def write_warc(path: str, pages: list[tuple[str, bytes]], *, wet: bool = False) -> int:
    """Write ``pages`` as a gzipped WARC of HTTP response records (or a WET file of
    conversion records holding extracted text), atomically, with deterministic record ids
    and dates so the same pages give the same bytes."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from corpus.schemas import text_row_id
    from corpus.textcode.extract import html_to_text

    n = 0
    with safety.atomic_file(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for url, body in pages:
            rid = f"<urn:uuid:{_uuidish(text_row_id(url, str(len(body))))}>"
            headers = {"WARC-Record-ID": rid, "WARC-Date": _FIXED_DATE}
            if wet:
                text = html_to_text(body)
                if not text:
                    continue
                headers["Content-Type"] = "text/plain"
                rec = writer.create_warc_record(url, "conversion", payload=io.BytesIO(text.encode("utf-8")),
                                                length=len(text.encode("utf-8")), warc_headers_dict=headers)
            else:
                http = StatusAndHeaders(
                    "200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))],
                    protocol="HTTP/1.1",
                )
                rec = writer.create_warc_record(url, "response", payload=io.BytesIO(body), length=len(body),
                                                warc_headers_dict=headers, http_headers=http)
            writer.write_record(rec)
            n += 1
    return n


def _uuidish(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:32]}"


def build_local_batches(out_dir: str, n_batches: int = 2, pages_per_batch: int = 200) -> list[str]:
    """Real local WARC (and one WET) batches for the embedded default; returns their paths.

    Batch i holds pages i, i+n, i+2n, ... of :func:`local_web_pages`; the last batch is
    written as WET (extracted text) so both record kinds run. Existing files are kept.
    """
    paths = []
    pages: list[tuple[str, bytes]] | None = None
    for i in range(n_batches):
        wet = n_batches > 1 and i == n_batches - 1
        path = os.path.join(out_dir, f"local-web-{i:02d}" + (".wet.gz" if wet else ".warc.gz"))
        if not os.path.exists(path):
            if pages is None:
                pages = local_web_pages(n_batches * pages_per_batch)
            write_warc(path, pages[i::n_batches], wet=wet)
        paths.append(path)
    return paths

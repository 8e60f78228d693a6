"""The crawl itself: repositories -> code rows, with every skip counted and every repo's
outcome recorded.

Per file, cheap checks come first and need no read: the name decides the language (so a
language partition skips every other file after a ``stat``), vendored and generated names,
symlinks (never followed), and the size from ``lstat`` (a 2 GB file is skipped unopened).
Only then is the file read (bounded) and decoded.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from corpus.crawl.config import CrawlConfig
from corpus.crawl.decode import decode_source, is_minified
from corpus.crawl.languages import HEURISTIC_PEEK_BYTES, NOTEBOOK_EXT, LanguageTable, default_table
from corpus.crawl.licenses import is_allowed
from corpus.crawl.notebooks import NotebookError, parse_notebook
from corpus.crawl.sources import RepoRef
from corpus.crawl.trees import Entry
from corpus.schemas import code_row_id, content_sha256
from corpus.shards import stable_hash

SHEBANG_PEEK = 256

REPOS_SCHEMA = pa.schema(
    [
        pa.field("repo", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("url", pa.string()),
        pa.field("status", pa.string()),  # fetched | skipped | failed
        pa.field("reason", pa.string()),
        pa.field("language", pa.string()),  # the partition this row describes ("" = all)
        pa.field("files", pa.int64()),
        pa.field("bytes", pa.int64()),
        pa.field("skipped_files", pa.int64()),
        pa.field("license", pa.string()),
        pa.field("stars", pa.int64()),
        pa.field("forks", pa.int64()),
        pa.field("revision_date", pa.timestamp("s", tz="UTC")),
        pa.field("commit", pa.string()),
    ]
)


@dataclass
class RepoOutcome:
    repo: RepoRef
    status: str
    reason: str = ""
    files: Counter[str] = field(default_factory=Counter)  # per language
    bytes: Counter[str] = field(default_factory=Counter)
    skipped: int = 0

    def rows(self, languages: Iterable[str]) -> list[dict[str, Any]]:
        r = self.repo
        return [
            {"repo": r.name, "kind": r.kind, "url": r.url, "status": self.status, "reason": self.reason,
             "language": lang, "files": self.files[lang], "bytes": self.bytes[lang], "skipped_files": self.skipped,
             "license": r.license, "stars": r.stars, "forks": r.forks, "revision_date": r.revision_date,
             "commit": r.info.get("commit")}
            for lang in languages
        ]


@dataclass
class CrawlStats:
    skips: Counter[str] = field(default_factory=Counter)  # reason -> files (selected languages only)
    files: Counter[str] = field(default_factory=Counter)  # language -> rows
    bytes: Counter[str] = field(default_factory=Counter)
    encodings: Counter[str] = field(default_factory=Counter)
    notebooks: int = 0
    not_selected: int = 0  # files of other languages (not read)
    vendored_dirs: int = 0
    repos_capped: int = 0  # repos whose walk stopped at max_files_per_repo
    capped_files: int = 0  # files left unread because their language reached its cap
    examples: dict[str, str] = field(default_factory=dict)  # reason -> one repo:path

    def skip(self, reason: str, where: str) -> None:
        self.skips[reason] += 1
        self.examples.setdefault(reason, where)


def order_repos(repos: list[RepoRef], seed: int) -> list[RepoRef]:
    """Seeded, deterministic order, so per-language caps do not favour names starting with 'a'."""
    return sorted(repos, key=lambda r: (hashlib.sha256(f"{seed}:{r.name}".encode()).hexdigest(), r.name))


def fingerprint(repos: list[RepoRef], table: LanguageTable | None = None) -> str:
    """Identity of the crawl's input: commit shas for git, a stat listing for trees."""
    table = table or default_table()
    parts = []
    for r in sorted(repos, key=lambda r: r.name):
        if r.version or r.tree is None:
            parts.append((r.name, r.version, r.error, r.skip, r.license))
            continue
        h = hashlib.sha256()
        for path, size, mtime in r.tree.fingerprint_items(table.is_vendored):
            h.update(f"{path}\0{size}\0{mtime!r}\n".encode("utf-8", "surrogateescape"))
        parts.append((r.name, h.hexdigest(), r.license))
    return stable_hash(parts)


class Crawler:
    """Crawl resolved repositories for a set of languages (None = every language)."""

    def __init__(self, cfg: CrawlConfig, table: LanguageTable | None = None) -> None:
        self.cfg = cfg
        self.table = table or default_table()
        self.stats = CrawlStats()
        self.outcomes: list[RepoOutcome] = []

    def run(self, repos: list[RepoRef], languages: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
        """Yield code rows (CODE_SCHEMA dicts); outcomes and stats fill in as it goes."""
        wanted = set(languages) if languages else (set(self.cfg.languages) if self.cfg.languages else None)
        cap = self.cfg.max_files_per_language
        for repo in order_repos(repos, self.cfg.seed):
            if repo.error or repo.skip:  # its real outcome, whatever the caps
                self.outcomes.append(RepoOutcome(repo, "failed" if repo.error else "skipped",
                                                 repo.error or repo.skip or ""))
                continue
            if wanted is not None and cap is not None and all(self.stats.files[lang] >= cap for lang in wanted):
                self.outcomes.append(RepoOutcome(repo, "skipped", "not visited: language cap reached"))
                continue
            yield from self._crawl_repo(repo, wanted, cap)

    # -- one repository
    def _license_reason(self, repo: RepoRef) -> str | None:
        if repo.license is None:
            return None if self.cfg.allow_unknown_license else "license unknown (no LICENSE file or metadata)"
        if is_allowed(repo.license, [*self.cfg.license_allow, *repo.extra_allowed]):
            return None
        return f"license {repo.license} not in allow-list"

    def _crawl_repo(self, repo: RepoRef, wanted: set[str] | None, cap: int | None) -> Iterator[dict[str, Any]]:
        reason = self._license_reason(repo)
        if reason:
            self.outcomes.append(RepoOutcome(repo, "skipped", reason))
            return
        assert repo.tree is not None
        out = RepoOutcome(repo, "fetched")
        try:
            for entry in repo.tree.entries(self.table.is_vendored, lambda p: self._name_wanted(p, wanted)):
                row = self._file(repo, entry, wanted, cap, out)
                if row is not None:
                    yield row
                    if self.cfg.max_files_per_repo is not None and \
                            sum(out.files.values()) >= self.cfg.max_files_per_repo:
                        out.reason = f"per-repo cap reached ({self.cfg.max_files_per_repo} files)"
                        self.stats.repos_capped += 1
                        break
                if wanted is not None and cap is not None and all(self.stats.files[lang] >= cap for lang in wanted):
                    break
        except OSError as exc:  # the tree vanished or became unreadable mid-walk
            out.status, out.reason = "failed", f"walk error: {exc}"
        finally:
            self.stats.vendored_dirs += len(getattr(repo.tree, "pruned", []))
            for err in getattr(repo.tree, "errors", []):
                self.stats.skip("unreadable_dir", f"{repo.name}:{err}")
                out.skipped += 1
            repo.tree.close()
        if out.status == "fetched" and repo.tree.seen == 0:
            out.status, out.reason = "skipped", "empty repository (no files)"
        self.outcomes.append(out)

    def _name_wanted(self, path: str, wanted: set[str] | None) -> bool:
        """Can ``path`` be a file of a wanted language, judging by its name alone? (No I/O.)"""
        if path.lower().endswith(NOTEBOOK_EXT):
            ok = self.cfg.include_notebooks
        else:
            cands = self.table.candidates(path)
            ok = cands is not None and (not cands or wanted is None or bool(set(cands) & wanted))
            cap = self.cfg.max_files_per_language
            if ok and cands and cap is not None and all(self.stats.files[c] >= cap for c in cands):
                self.stats.capped_files += 1  # its language is full: not read at all
                return False
        if not ok:
            self.stats.not_selected += 1
        return ok

    def _file(self, repo: RepoRef, e: Entry, wanted: set[str] | None, cap: int | None,
              out: RepoOutcome) -> dict[str, Any] | None:
        """One entry that passed ``_name_wanted``: checks without I/O first, then a bounded read."""
        where = f"{repo.name}:{e.path}"
        is_nb = e.path.lower().endswith(NOTEBOOK_EXT)
        cands: tuple[str, ...] = () if is_nb else (self.table.candidates(e.path) or ())

        def skip(reason: str) -> None:
            self.stats.skip(reason, where)
            out.skipped += 1

        tree = repo.tree
        assert tree is not None
        if not is_nb and not cands:
            # Extensionless: only a shebang makes it a source file. Peek (bounded) first, so
            # README-like files and binaries without extension never count as skips.
            lang_hint = None
            if e.kind == "file" and e.size > 0:
                try:
                    lang_hint = self.table.from_shebang(tree.read(e, SHEBANG_PEEK))
                except Exception:  # noqa: BLE001
                    lang_hint = None
            if lang_hint is None or (wanted is not None and lang_hint not in wanted):
                self.stats.not_selected += 1
                return None
        if e.kind == "symlink":
            skip(tree.symlink_reason(e))
            return None
        if e.kind != "file":
            skip("special_file")
            return None
        if self.table.is_vendored(e.path):
            skip("vendored")
            return None
        if self.table.generated_name(e.path):
            skip("generated")
            return None
        if e.size > self.cfg.max_file_bytes:
            skip("too_large")  # decided from lstat: the file is never opened
            return None
        if e.size == 0:
            skip("empty_file")
            return None
        try:
            data = tree.read(e, self.cfg.max_file_bytes + 1)
        except Exception as exc:  # noqa: BLE001  (OSError, zip errors: record and go on)
            skip("read_error")
            self.stats.examples.setdefault("read_error", f"{where}: {type(exc).__name__}: {exc}")
            return None
        if len(data) > self.cfg.max_file_bytes:
            skip("too_large")
            return None
        dec = decode_source(data)
        if not dec.ok:
            skip(dec.reason or "undecodable")
            return None
        text = dec.text
        assert text is not None
        source = repo.source
        if is_nb:
            try:
                nb = parse_notebook(text)
            except NotebookError as exc:
                skip("malformed_notebook")
                self.stats.examples.setdefault("malformed_notebook", f"{where}: {exc}")
                return None
            lang, text, source = nb.language, nb.source, "notebook"
            self.stats.notebooks += 1
        elif not cands:
            lang = self.table.from_shebang(data[:SHEBANG_PEEK]) or ""
        elif len(cands) > 1:  # an extension several languages claim: content heuristics decide
            lang = self.table.from_content(e.path, data[:HEURISTIC_PEEK_BYTES]) or ""
        else:
            lang = cands[0]
        if not lang or (wanted is not None and lang not in wanted):
            self.stats.not_selected += 1
            return None
        if cap is not None and self.stats.files[lang] >= cap:
            skip("language_cap_reached")
            return None
        if self.table.generated_content(text):
            skip("generated")
            return None
        if is_minified(text, e.path):
            skip("minified")
            return None
        # UTF-8 input (the common case) is already the stored byte form: hash it as read.
        raw = data if (dec.encoding == "utf-8" and not is_nb) else text.encode("utf-8", "surrogatepass")
        sha = content_sha256(raw)
        size = len(raw)
        self.stats.files[lang] += 1
        self.stats.bytes[lang] += size
        self.stats.encodings[dec.encoding or "?"] += 1
        out.files[lang] += 1
        out.bytes[lang] += size
        return {
            "id": code_row_id(repo.name, e.path, sha),
            "repo": repo.name,
            "path": e.path,
            "language": lang,
            "content": text,
            "size_bytes": size,
            "sha256": sha,
            "license": repo.license,
            "stars": repo.stars,
            "forks": repo.forks,
            "revision_date": repo.revision_date,
            "source": source,
        }

"""Language detection from a linguist-style table kept in data (languages.yaml).

Detection needs no file content for the common case (filename or extension), so a crawl of
one language partition can skip every other file after a ``stat``. Only extensionless files
(shebang) and extensions claimed by several languages (heuristics) need a bounded peek.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

TABLE_PATH = Path(__file__).with_name("languages.yaml")
NOTEBOOK_EXT = ".ipynb"
HEURISTIC_PEEK_BYTES = 8192
_SHEBANG = re.compile(rb"^#!\s*(\S+)(?:\s+(\S+))?")


@dataclass(frozen=True)
class Language:
    id: str
    name: str
    type: str
    extensions: tuple[str, ...] = ()
    filenames: tuple[str, ...] = ()
    interpreters: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    language: str
    pattern: re.Pattern[str] | None


@dataclass
class LanguageTable:
    """Lookup tables built once from languages.yaml."""

    languages: dict[str, Language]
    by_filename: dict[str, str]
    by_extension: dict[str, str]
    by_interpreter: dict[str, str]
    heuristics: dict[str, list[Rule]]
    vendored_dirs: frozenset[str]
    vendored_suffixes: tuple[str, ...]
    digest: str = ""  # sha256 of the table file: part of a crawl's config hash
    generated_markers: list[re.Pattern[str]] = field(default_factory=list)
    generated_filenames: list[re.Pattern[str]] = field(default_factory=list)

    # -- loading
    @classmethod
    def load(cls, path: str | os.PathLike[str] = TABLE_PATH) -> LanguageTable:
        with open(path, "rb") as fh:
            blob = fh.read()
        raw = yaml.safe_load(blob.decode("utf-8"))
        langs: dict[str, Language] = {}
        by_filename: dict[str, str] = {}
        by_extension: dict[str, str] = {}
        by_interpreter: dict[str, str] = {}
        for lid, spec in raw["languages"].items():
            lang = Language(
                id=lid,
                name=spec["name"],
                type=spec.get("type", "programming"),
                extensions=tuple(e.lower() for e in spec.get("extensions", [])),
                filenames=tuple(spec.get("filenames", [])),
                interpreters=tuple(spec.get("interpreters", [])),
            )
            langs[lid] = lang
            for ext in lang.extensions:
                if ext in by_extension:
                    raise ValueError(f"{path}: extension {ext!r} claimed by {by_extension[ext]!r} and {lid!r}; "
                                     "list it under heuristics instead")
                by_extension[ext] = lid
            for name in lang.filenames:
                by_filename[name] = lid
            for prog in lang.interpreters:
                by_interpreter[prog] = lid
        heuristics: dict[str, list[Rule]] = {}
        for ext, rules in (raw.get("heuristics") or {}).items():
            parsed = []
            for r in rules:
                if r["language"] not in langs:
                    raise ValueError(f"{path}: heuristic for {ext!r} names unknown language {r['language']!r}")
                pat = re.compile(r["pattern"], re.MULTILINE) if r.get("pattern") else None
                parsed.append(Rule(r["language"], pat))
            heuristics[ext.lower()] = parsed
        return cls(
            languages=langs,
            by_filename=by_filename,
            by_extension=by_extension,
            by_interpreter=by_interpreter,
            heuristics=heuristics,
            vendored_dirs=frozenset(raw.get("vendored_dirs", [])),
            vendored_suffixes=tuple(raw.get("vendored_suffixes", [])),
            digest=hashlib.sha256(blob).hexdigest(),
            generated_markers=[_lowercase_regex(path, raw.get("generated_markers", []))],
            generated_filenames=[_lowercase_regex(path, raw.get("generated_filenames", []))],
        )

    # -- queries
    def programming_languages(self) -> list[str]:
        return sorted(k for k, v in self.languages.items() if v.type == "programming")

    def candidates(self, path: str) -> tuple[str, ...] | None:
        """Languages ``path`` may be, from its name alone.

        Returns a 1-tuple when the name decides, several ids for ambiguous extensions
        (content heuristics decide), ``()`` for extensionless files (shebang decides), and None
        when the name rules the file out (unknown extension).
        """
        base = path.rsplit("/", 1)[-1]
        if base in self.by_filename:
            return (self.by_filename[base],)
        stem, dot, ext = base.rpartition(".")
        if not dot or not stem:  # no extension (dotfiles such as ".profile" are names, handled above)
            return ()
        ext = "." + ext.lower()
        if ext in self.heuristics:
            return tuple(dict.fromkeys(r.language for r in self.heuristics[ext]))
        lid = self.by_extension.get(ext)
        return (lid,) if lid else None

    def needs_content(self, path: str) -> bool:
        c = self.candidates(path)
        return c is not None and len(c) != 1

    def from_content(self, path: str, head: bytes) -> str | None:
        """Resolve an ambiguous or extensionless file from its first bytes."""
        base = path.rsplit("/", 1)[-1]
        stem, dot, ext = base.rpartition(".")
        if not dot or not stem:
            return self.from_shebang(head)
        rules = self.heuristics.get("." + ext.lower())
        if not rules:
            return self.by_extension.get("." + ext.lower())
        text = head[:HEURISTIC_PEEK_BYTES].decode("utf-8", "replace")
        for rule in rules:
            if rule.pattern is None or rule.pattern.search(text):
                return rule.language
        return None

    def from_shebang(self, head: bytes) -> str | None:
        m = _SHEBANG.match(head[:256])
        if not m:
            return None
        prog = os.path.basename(m.group(1).decode("utf-8", "replace"))
        if prog == "env" and m.group(2):
            prog = m.group(2).decode("utf-8", "replace")
            if prog.startswith("-"):
                return None
        prog = re.sub(r"[\d.]+$", "", prog) or prog  # python3.11 -> python
        return self.by_interpreter.get(prog) or self.by_interpreter.get(prog + "3")

    def is_vendored(self, path: str) -> bool:
        parts = path.split("/")[:-1]
        return any(p in self.vendored_dirs or p.endswith(self.vendored_suffixes) for p in parts)

    def generated_name(self, path: str) -> bool:
        base = path.rsplit("/", 1)[-1].lower()
        return any(p.search(base) for p in self.generated_filenames)

    def generated_content(self, text: str) -> bool:
        head = text[:2048].lower()
        if "generat" not in head:  # every marker names it: skip the regexes for most files
            return False
        return any(p.search(head) for p in self.generated_markers)


def _lowercase_regex(where: object, patterns: list[str]) -> re.Pattern[str]:
    """One alternation of lowercase patterns, matched against lowercased text (~10x faster
    than re.IGNORECASE). Uppercase is refused rather than lowercased: ``\\S`` is not ``\\s``."""
    for p in patterns:
        if p != p.lower():
            raise ValueError(f"{where}: pattern {p!r} must be lowercase (text is lowercased before matching)")
    return re.compile("|".join(f"(?:{p})" for p in patterns) or "(?!)")


@lru_cache(maxsize=1)
def default_table() -> LanguageTable:
    return LanguageTable.load()

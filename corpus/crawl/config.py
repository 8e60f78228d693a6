"""One config model for every crawl front end (Dagster asset Config and ``codecorpus crawl``).

Sources are written as short strings so both a CLI argument list and a Dagster run config
can carry them; :func:`parse_source` turns each into a typed :class:`SourceSpec`::

    stdlib | stdlib:PATH                 Python standard library, one repo per top-level package
    site-packages | site-packages:PATH   installed distributions, one repo per top-level package
    jdk-src | jdk-src:PATH/src.zip       the JDK's sources, one repo per module
    local:PATH  (or an existing PATH)    a directory crawled as one repo
    git:URL  (or https://, ssh://, git@, file://, a bare repo path)   a git repository
    github:OWNER/NAME                    one GitHub repository
    github:language=python,min_stars=100,pushed_after=2024-01-01,max_repos=20[,q=...]
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from corpus.crawl.licenses import DEFAULT_ALLOWED
from corpus.shards import stable_hash

SourceKind = Literal["github", "git", "local", "stdlib", "site-packages", "jdk-src"]
DEFAULT_MAX_FILE_BYTES = 1_000_000
_URL_PREFIXES = ("https://", "http://", "ssh://", "git://", "file://", "git@")


class SourceSpec(BaseModel):
    kind: SourceKind
    location: str | None = Field(default=None, description="path, URL or owner/name; None = auto-detect")
    language: str | None = Field(default=None, description="github search: language qualifier")
    min_stars: int = 0
    pushed_after: str | None = Field(default=None, description="github search: YYYY-MM-DD")
    max_repos: int = 20
    query: str | None = Field(default=None, description="github search: extra raw qualifiers")
    branch: str | None = None
    extra_allowed_licenses: list[str] = Field(default_factory=list)

    def label(self) -> str:
        if self.kind == "github" and not self.location:
            quals = [f"{k}={v}" for k, v in (("language", self.language), ("min_stars", self.min_stars or None),
                                             ("pushed_after", self.pushed_after), ("q", self.query)) if v]
            return "github:" + ",".join(quals)
        return f"{self.kind}:{self.location}" if self.location else self.kind


def _is_bare_repo(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "HEAD")) and os.path.isdir(os.path.join(path, "objects"))


def parse_source(text: str) -> SourceSpec:
    """Parse one source string (see the module docstring); ValueError names what is wrong."""
    s = text.strip()
    if not s:
        raise ValueError("empty source string")
    head, sep, rest = s.partition(":")
    if head == "jdk-src":
        return jdk_source(rest or None)
    if head in ("stdlib", "site-packages"):
        return SourceSpec(kind=head, location=rest or None)
    if head == "local":
        if not rest:
            raise ValueError(f"source {text!r}: local needs a path (local:/some/dir)")
        return SourceSpec(kind="local", location=os.path.abspath(rest))
    if head == "git":
        if not rest:
            raise ValueError(f"source {text!r}: git needs a URL or path (git:https://host/repo.git)")
        return SourceSpec(kind="git", location=rest)
    if head == "github":
        if "=" not in rest:
            if rest.count("/") != 1:
                raise ValueError(f"source {text!r}: expected github:OWNER/NAME or github:key=value,...")
            return SourceSpec(kind="github", location=rest)
        fields: dict[str, object] = {}
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            key = key.strip()
            if not eq:
                raise ValueError(f"source {text!r}: {item!r} is not key=value")
            if key in ("min_stars", "max_repos"):
                fields[key] = int(value)
            elif key in ("language", "pushed_after", "branch"):
                fields[key] = value.strip()
            elif key == "q":
                fields["query"] = value.strip()
            else:
                raise ValueError(f"source {text!r}: unknown github key {key!r} "
                                 "(language, min_stars, pushed_after, max_repos, q)")
        return SourceSpec(kind="github", **fields)
    if s.startswith(_URL_PREFIXES) or s.endswith(".git"):
        return SourceSpec(kind="git", location=s)
    if os.path.isdir(s):
        path = os.path.abspath(s)
        return SourceSpec(kind="git" if _is_bare_repo(path) else "local", location=path)
    raise ValueError(
        f"source {text!r}: not a known kind (stdlib, site-packages, jdk-src, local:, git:, github:), "
        "a git URL, or an existing directory"
    )


def default_sources() -> list[SourceSpec]:
    """The embedded default: this machine's own real code, no network (see jdk_source for
    the JDK's license)."""
    return [SourceSpec(kind="stdlib"), SourceSpec(kind="site-packages"), jdk_source()]


JDK_LICENSE = "GPL-2.0-only WITH Classpath-exception-2.0"


def jdk_source(location: str | None = None) -> SourceSpec:
    """The JDK's src.zip. Naming this source is choosing its license (GPL-2.0 with the
    Classpath exception), so it is allowed for this source only; rows keep that license."""
    return SourceSpec(kind="jdk-src", location=location, extra_allowed_licenses=[JDK_LICENSE])


class CrawlConfig(BaseModel):
    """Everything that decides what a crawl emits (hashed into the shard set's config hash)."""

    sources: list[SourceSpec] = Field(default_factory=default_sources)
    languages: list[str] | None = Field(default=None, description="language ids to emit; None = all")
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    license_allow: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOWED))
    allow_unknown_license: bool = False
    max_files_per_language: int | None = None
    max_files_per_repo: int | None = None
    seed: int = 0
    include_notebooks: bool = True
    github_api_url: str = "https://api.github.com"
    github_token_env: str = "GITHUB_TOKEN"
    github_max_wait_s: float = 900.0
    git_timeout_s: float = 600.0
    clone_max_age_s: float = 6 * 3600.0

    @field_validator("languages")
    @classmethod
    def _lower(cls, v: list[str] | None) -> list[str] | None:
        return [x.strip().lower() for x in v] if v else None

    @field_validator("max_file_bytes")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v <= 0:
            raise ValueError("max_file_bytes must be positive")
        return v

    def content_hash(self) -> str:
        """Hash of the settings that change output (not timeouts or cache ages)."""
        d = self.model_dump(exclude={"github_max_wait_s", "git_timeout_s", "clone_max_age_s", "github_token_env"})
        return stable_hash(d)

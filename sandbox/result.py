"""Request and Result: the value types of the sandbox API (plain dataclasses, JSON-friendly)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

PASSED = "passed"
FAILED = "failed"
SYNTAX_ERROR = "syntax_error"
COMPILE_ERROR = "compile_error"
TIMEOUT = "timeout"
MEMORY_LIMIT = "memory_limit"
OUTPUT_LIMIT = "output_limit"
SANDBOX_ERROR = "sandbox_error"
INPUT_LIMIT = "input_limit"  # the request is over a host-side cap (source size); nothing was parsed or run
STATUSES = (PASSED, FAILED, SYNTAX_ERROR, COMPILE_ERROR, TIMEOUT, MEMORY_LIMIT, OUTPUT_LIMIT, SANDBOX_ERROR,
            INPUT_LIMIT)


@dataclass(frozen=True)
class Request:
    """One program to run. ``tests`` is code in the same language run against ``code``.

    ``files`` maps relative paths to contents placed in the (fresh, private) work dir.
    """

    code: str
    language: str
    tests: str | None = None
    stdin: str | bytes = ""
    files: Mapping[str, str | bytes] | None = None
    timeout_s: float = 10.0
    memory_mb: int = 512
    backend: str = "auto"


@dataclass
class Result:
    """Outcome of one request. ``status`` is one of ``STATUSES``; ``message`` says why in words."""

    status: str
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration_s: float = 0.0
    backend: str = ""
    language: str = ""
    message: str = ""
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def to_dict(self) -> dict:
        return asdict(self)

"""The one door to code execution: the project sandbox (``import sandbox``).

Stages call an ``Executor`` (a list of requests in, a list of outcomes out, order kept) so the
caller never imports the sandbox's internals and can pass its own worker count. Corpus code is
untrusted: reference functions, generated tests and mutants all run here, never in-process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ExecRequest:
    code: str
    language: str
    tests: str | None = None
    timeout_s: float = 10.0


@dataclass(frozen=True)
class ExecOutcome:
    status: str  # sandbox status: passed | failed | syntax_error | compile_error | timeout | ...
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


Executor = Callable[[Sequence[ExecRequest]], list[ExecOutcome]]


def sandbox_executor(workers: int = 2, memory_mb: int = 512, backend: str = "auto") -> Executor:
    """An Executor backed by ``sandbox.execute_many``."""
    import sandbox

    def run(requests: Sequence[ExecRequest]) -> list[ExecOutcome]:
        if not requests:
            return []
        reqs = [
            sandbox.Request(code=r.code, language=r.language, tests=r.tests, timeout_s=r.timeout_s,
                            memory_mb=memory_mb, backend=backend)
            for r in requests
        ]
        results = sandbox.execute_many(reqs, workers=workers)
        return [
            ExecOutcome(status=res.status, stdout=res.stdout or "", stderr=res.stderr or "",
                        duration_s=float(res.duration_s or 0.0), message=getattr(res, "message", "") or "")
            for res in results
        ]

    return run


def sandbox_languages() -> dict[str, bool]:
    """Languages the local sandbox can run now (``sandbox.available_languages``)."""
    import sandbox

    return dict(sandbox.available_languages())

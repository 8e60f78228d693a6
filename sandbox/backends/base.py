"""What every backend returns per step, and the one place that maps steps to a Result status."""

from __future__ import annotations

import signal
from dataclasses import dataclass

from sandbox import result as R

# Messages runtimes print when an allocation fails under RLIMIT_AS or a heap cap.
MEMORY_MARKERS = (
    b"MemoryError",
    b"std::bad_alloc",
    b"java.lang.OutOfMemoryError",
    b"JavaScript heap out of memory",
    b"memory allocation of ",  # Rust's alloc error handler
    b"runtime: out of memory",  # Go
    b"xmalloc: cannot allocate",  # bash
    b"Cannot allocate memory",
)


@dataclass
class StepOutcome:
    exit_code: int | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    timed_out: bool = False
    output_limited: bool = False
    oom_killed: bool = False
    sandbox_failure: str | None = None
    duration_s: float = 0.0

    @property
    def signal(self) -> int | None:
        """Signal that ended the program (bwrap and shells report 128+N; Popen reports -N)."""
        if self.exit_code is None:
            return None
        if self.exit_code < 0:
            return -self.exit_code
        if 128 < self.exit_code <= 128 + 64:
            return self.exit_code - 128
        return None


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _strip_sentinel(out: bytes, sentinel: bytes | None) -> tuple[bytes, bool]:
    if sentinel is None:
        return out, False
    marker = b"\n" + sentinel + b"\n"
    i = out.rfind(marker)
    if i < 0:
        return out, False
    return out[:i] + out[i + len(marker):], True


def classify(step: StepOutcome, sentinel: bytes | None, *, phase: str, backend: str, language: str) -> R.Result:
    """Map one step's outcome to a Result. ``phase`` is 'compile' or 'run'."""
    stdout, saw = _strip_sentinel(step.stdout, sentinel)
    res = R.Result(
        status=R.FAILED, exit_code=step.exit_code, stdout=_text(stdout), stderr=_text(step.stderr),
        stdout_truncated=step.stdout_truncated, stderr_truncated=step.stderr_truncated,
        duration_s=step.duration_s, backend=backend, language=language,
    )
    sig = step.signal
    if step.sandbox_failure:
        res.status, res.message = R.SANDBOX_ERROR, step.sandbox_failure
    elif step.output_limited and phase == "compile":
        res.status, res.message = R.COMPILE_ERROR, "compiler output exceeded the cap (diagnostics truncated)"
    elif step.output_limited:
        res.status, res.message = R.OUTPUT_LIMIT, f"{phase}: output exceeded the cap; the run was killed"
    elif step.timed_out or sig == signal.SIGXCPU:
        res.status = R.TIMEOUT
        res.message = f"{phase}: " + ("CPU time limit" if sig == signal.SIGXCPU and not step.timed_out
                                      else "wall-clock timeout; the process tree was killed")
    elif step.oom_killed or (step.exit_code != 0 and any(m in step.stderr for m in MEMORY_MARKERS)):
        res.status, res.message = R.MEMORY_LIMIT, f"{phase}: memory limit reached"
    elif phase == "compile":
        if step.exit_code != 0:
            res.status, res.message = R.COMPILE_ERROR, f"compiler exited with {step.exit_code}"
        else:
            res.status = R.PASSED
    elif step.exit_code == 0 and (sentinel is None or saw):
        res.status = R.PASSED
    elif step.exit_code == 0:
        res.message = "exited 0 before the tests finished (pass sentinel missing)"
    elif sig is not None:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        res.message = f"killed by {name}"
    else:
        res.message = f"exited with {step.exit_code}"
    return res

"""Public API: execute one request, execute many on a worker pool, list languages.

Order per request: resolve language -> static tree-sitter check (syntax_error, nothing runs)
-> harness (code + tests + pass sentinel) -> backend compile step (own timeout) -> run step
-> one status. Problems with a request never raise: they come back as a Result whose
``message`` names the cause, so a batch of thousands cannot be stopped by one bad row.
"""

from __future__ import annotations

import os
import posixpath
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import cache

from sandbox import result as R
from sandbox import static, verdict, verdict_js
from sandbox.backends import base
from sandbox.languages import LANGUAGES, Toolchain, build_plan, resolve
from sandbox.limits import Limits
from sandbox.result import Request, Result

BACKENDS = ("bwrap", "docker")
DEFAULT_COMPILE_TIMEOUT_S = 30.0
# Host-side cap on code and tests (each): the static check and the harness parse them in this
# process, so an unbounded source would cost the host time and memory before any sandbox runs.
DEFAULT_MAX_SOURCE_BYTES = 1024 * 1024


def _backend_module(name: str):
    if name == "bwrap":
        from sandbox.backends import bwrap

        return bwrap
    if name == "docker":
        from sandbox.backends import docker

        return docker
    raise ValueError(f"unknown backend {name!r}; choose auto, {', '.join(BACKENDS)}")


@cache
def backend_available(name: str) -> tuple[bool, str]:
    """(usable, detail): whether a backend can run here, and why not."""
    return _backend_module(name).available()


def pick_backend(name: str = "auto") -> str:
    """'auto' means bwrap when it works here, else docker; ValueError when none can run."""
    if name != "auto":
        _backend_module(name)
        return name
    for cand in (os.environ.get("CODECORPUS_SANDBOX_BACKEND") or "bwrap", *BACKENDS):
        if backend_available(cand)[0]:
            return cand
    reasons = "; ".join(f"{b}: {backend_available(b)[1]}" for b in BACKENDS)
    raise ValueError(f"no sandbox backend can run here ({reasons})")


def _toolchain(backend: str, language: str) -> Toolchain | None:
    return _backend_module(backend).toolchain(language)


def _as_bytes(x: str | bytes) -> bytes:
    return x if isinstance(x, bytes) else x.encode("utf-8", "surrogatepass")


def _check_files(files: Mapping[str, str | bytes] | None, limits: Limits) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    total = 0
    for name, data in (files or {}).items():
        norm = posixpath.normpath(name)
        if not name or name.startswith("/") or norm.startswith("..") or norm == "." or "\x00" in name:
            raise ValueError(f"files: {name!r} must be a relative path inside the work dir")
        b = _as_bytes(data)
        total += len(b)
        if len(b) > limits.max_file_bytes:
            raise ValueError(f"files: {name!r} is {len(b)} bytes, over the {limits.max_file_bytes}-byte file limit")
        out[norm] = b
    if total > limits.disk_mb * 1024 * 1024:
        raise ValueError(f"files: {total} bytes in all, over the {limits.disk_mb} MiB work dir")
    return out


def execute(code: str, language: str, *, tests: str | None = None, stdin: str | bytes = "",
            files: Mapping[str, str | bytes] | None = None, timeout_s: float = 10, memory_mb: int = 512,
            backend: str = "auto", compile_timeout_s: float = DEFAULT_COMPILE_TIMEOUT_S,
            max_output_bytes: int = 1024 * 1024, static_check: bool = True,
            max_source_bytes: int = DEFAULT_MAX_SOURCE_BYTES) -> Result:
    """Run ``code`` (and ``tests`` against it) in a sandbox; never raises for bad input.

    For compiled languages a tree-sitter parse error is not final: tree-sitter's grammars lag
    the languages (C++20 and GNU extensions), so the compiler decides; its failure then gives
    ``syntax_error`` with both messages. ``code``/``tests`` over ``max_source_bytes`` (UTF-8)
    are refused with ``input_limit`` before any parsing.
    """
    t0 = time.monotonic()
    lang = language
    try:
        spec = resolve(language)
        lang = spec.name
        name = pick_backend(backend)
    except ValueError as e:
        return Result(R.SANDBOX_ERROR, backend=backend, language=lang, message=str(e))
    phases: dict[str, float] = {}

    def done(res: Result) -> Result:
        res.backend, res.language = name, lang
        res.duration_s = round(time.monotonic() - t0, 6)
        res.phases = {k: round(v, 6) for k, v in phases.items()}
        return res

    for field_name, value, ok in (("code", code, (str, bytes)), ("tests", tests, (str, bytes, type(None))),
                                  ("stdin", stdin, (str, bytes))):
        if not isinstance(value, ok):
            return done(Result(R.SANDBOX_ERROR, message=f"{field_name} must be str or bytes, "
                               f"got {type(value).__name__}"))
    if not (timeout_s > 0) or memory_mb < 16:
        return done(Result(R.SANDBOX_ERROR, message=f"invalid limits: timeout_s={timeout_s}, memory_mb={memory_mb}"
                           " (need timeout_s > 0 and memory_mb >= 16)"))
    for part, text in (("code", code), ("tests", tests)):
        size = 0 if text is None else len(text) if isinstance(text, bytes) else _utf8_len(text)
        if size > max_source_bytes:
            return done(Result(R.INPUT_LIMIT, message=f"{part} is {size} bytes, over max_source_bytes="
                               f"{max_source_bytes}; shorten it or raise max_source_bytes (execute() argument)"))
    deferred = ""  # a parse error the compiler gets to overrule
    if static_check:
        ts = time.monotonic()
        for part, text in (("code", code), ("tests", tests)):
            try:
                why = None if text is None else static.check(text, spec.grammar)
            except static.ParseLimit as e:
                return done(Result(R.INPUT_LIMIT, message=f"{part}: {e}"))
            if why and spec.compiled and why.startswith(f"{spec.grammar} parse error"):
                deferred = deferred or f"{part}: {why}"
            elif why:
                phases["static"] = time.monotonic() - ts
                return done(Result(R.SYNTAX_ERROR, message=f"{part}: {why}"))
        phases["static"] = time.monotonic() - ts
    tc = _toolchain(name, spec.name)
    if tc is None:
        why = _backend_module(name).toolchain_reason(spec.name)
        return done(Result(R.SANDBOX_ERROR, message=f"no usable {spec.name} toolchain in the {name} backend: {why} "
                           f"(see `python -m sandbox languages --backend {name}`)"))
    limits = Limits(timeout_s=float(timeout_s), memory_mb=int(memory_mb), max_output_bytes=int(max_output_bytes))
    try:
        code_b = _as_bytes(code)
        tests_b = None if tests is None else _as_bytes(tests)
        plan = build_plan(spec, tc, code_b, tests_b, limits, compile_timeout_s)
        work_files = _check_files(files, limits)
    except static.ParseLimit as e:
        return done(Result(R.INPUT_LIMIT, message=f"harness: {e}"))
    except (ValueError, UnicodeEncodeError) as e:
        return done(Result(R.FAILED, message=f"request cannot be run: {e}"))
    stdin_b = _as_bytes(stdin)
    # Room for the sentinel line on top of the caller's cap.
    plan.run_limits = Limits(**{**plan.run_limits.__dict__, "max_output_bytes": limits.max_output_bytes + 256})
    try:
        comp, run = _backend_module(name).run_plan(plan, tc, stdin_b, work_files)
    except Exception as e:  # infrastructure failure: report it on this request, keep the batch going
        return done(Result(R.SANDBOX_ERROR, message=f"{name} backend failed: {type(e).__name__}: {e}"))
    if comp is not None:
        phases["compile"] = comp.duration_s
        res = base.classify(comp, None, phase="compile", backend=name, language=lang)
        if res.status == R.COMPILE_ERROR and deferred:
            res.status, res.message = R.SYNTAX_ERROR, f"{deferred}; the compiler rejected it too"
        if res.status != R.PASSED or run is None:
            if res.status == R.PASSED:
                res.status, res.message = R.SANDBOX_ERROR, "compile step passed but the run step did not start"
            return done(res)
    phases["run"] = run.duration_s
    res = base.classify(run, plan.sources.sentinel, phase="run", backend=name, language=lang)
    lp = plan.sources.literal
    if lp is not None:
        judge = verdict_js.judge if isinstance(lp, verdict_js.LiteralPlan) else verdict.judge
        res.stdout, why = judge(res.stdout, lp)
        if why and res.status == R.PASSED:
            res.status, res.message = R.FAILED, why
    if len(res.stdout.encode("utf-8", "replace")) > limits.max_output_bytes:
        res.stdout = res.stdout.encode("utf-8", "replace")[: limits.max_output_bytes].decode("utf-8", "replace")
        res.stdout_truncated = True
    return done(res)


def _utf8_len(text: str) -> int:
    """UTF-8 length without building a second copy when the string is plain ASCII."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def execute_request(req: Request, **overrides) -> Result:
    kw = dict(tests=req.tests, stdin=req.stdin, files=req.files, timeout_s=req.timeout_s,
              memory_mb=req.memory_mb, backend=req.backend)
    kw.update(overrides)
    return execute(req.code, req.language, **kw)


def execute_many(requests: Iterable[Request], *, workers: int | None = None, backend: str | None = None,
                 progress: Callable[[int, Result], None] | None = None) -> list[Result]:
    """Run requests on a thread pool (each thread drives one sandbox); results in input order.

    ``backend`` overrides every request's backend when given. ``progress(index, result)`` is
    called as each finishes.
    """
    reqs = list(requests)
    n = workers or os.cpu_count() or 2
    over = {"backend": backend} if backend else {}

    def one(i: int) -> Result:
        try:
            res = execute_request(reqs[i], **over)
        except Exception as e:  # a bug must not lose the other results
            res = Result(R.SANDBOX_ERROR, language=reqs[i].language, message=f"{type(e).__name__}: {e}")
        if progress is not None:
            progress(i, res)
        return res

    if n <= 1 or len(reqs) <= 1:
        return [one(i) for i in range(len(reqs))]
    with ThreadPoolExecutor(max_workers=min(n, len(reqs)), thread_name_prefix="sandbox") as pool:
        return list(pool.map(one, range(len(reqs))))


def languages_report(backend: str = "auto") -> list[dict]:
    """One row per language: name, whether its toolchain is present in ``backend``, version."""
    try:
        name = pick_backend(backend)
    except ValueError as e:
        return [{"language": k, "available": False, "backend": backend, "version": "", "reason": str(e)}
                for k in LANGUAGES]
    rows = []
    for lang in LANGUAGES:
        try:
            tc = _toolchain(name, lang)
        except Exception as e:  # detection of one toolchain must not hide the others
            tc, why = None, f"{type(e).__name__}: {e}"
        else:
            why = "" if tc else _backend_module(name).toolchain_reason(lang)
        rows.append({"language": lang, "available": tc is not None, "backend": name,
                     "version": tc.version if tc else "", "reason": why})
    return rows


def available_languages(backend: str = "auto") -> dict[str, bool]:
    return {r["language"]: r["available"] for r in languages_report(backend)}

"""The execution seam: run a stage's per-shard work in-process, on a local process pool, or on
a Ray cluster, with the same results in the same order.

A stage is written as a picklable task ``fn(item, shared) -> result`` over its input shards
plus a driver that merges results in input order, so whatever the executor and the number of
workers, the bytes the stage commits are the same. ``shared`` is read-only state every task
needs (a rule set, a decontamination index): it crosses to each worker once (a pool
initializer, or Ray's object store), never once per task.

Faults: a worker process that dies is replaced and its task re-run (``max_retries``); a task
that fails for good raises ``TaskError`` naming its input shard and the error. An unreachable
Ray address fails at once, naming the address.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

KINDS = ("local", "process", "ray")


class TaskError(RuntimeError):
    """A shard's task failed for good; the message names the shard and the cause."""


class ExecutorError(RuntimeError):
    """The executor cannot start (bad setting, unreachable cluster); the message says which."""


@dataclass(frozen=True)
class ExecutorSpec:
    """Which engine runs a stage's shard tasks.

    ``kind``: ``local`` (this process, one shard after another), ``process`` (a pool of
    ``workers`` processes on this machine) or ``ray``. ``address`` (ray only): ``local`` starts
    an in-process cluster with ``workers`` CPUs, ``auto`` joins the cluster this machine is part
    of, ``host:port`` or ``ray://host:10001`` an existing one.
    """

    kind: str = "local"
    workers: int = 1
    address: str = "local"
    max_retries: int = 2

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ExecutorError(f"executor {self.kind!r}: use one of {', '.join(KINDS)}")
        if self.workers < 1:
            raise ExecutorError(f"workers={self.workers}: must be >= 1")
        if self.max_retries < 0:
            raise ExecutorError(f"max_retries={self.max_retries}: must be >= 0")

    @classmethod
    def from_env(cls) -> ExecutorSpec:
        """``CODECORPUS_EXECUTOR`` (local|process|ray), ``CODECORPUS_WORKERS``, ``CODECORPUS_RAY_ADDRESS``."""
        try:
            workers = int(os.environ.get("CODECORPUS_WORKERS", "1"))
        except ValueError:
            raise ExecutorError(f"CODECORPUS_WORKERS={os.environ['CODECORPUS_WORKERS']!r}: a whole number") from None
        return cls(kind=os.environ.get("CODECORPUS_EXECUTOR", "local"), workers=workers,
                   address=os.environ.get("CODECORPUS_RAY_ADDRESS", "local"))


Label = Callable[[Any], str]


class LocalExecutor:
    """Tasks in this process, in order: today's behaviour and the reference for the others."""

    def __init__(self, spec: ExecutorSpec = ExecutorSpec()) -> None:
        self.spec = spec

    def map(self, fn: Callable[[Any, Any], Any], items: Sequence[Any], shared: Any = None,
            label: Label = str, passthrough: tuple[type[BaseException], ...] = ()) -> Iterator[Any]:
        for item in items:
            try:
                yield fn(item, shared)
            except passthrough:
                raise
            except Exception as exc:
                raise TaskError(f"{label(item)}: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        pass


def _worker_loop(conn: Any, shared: Any) -> None:
    """A pool worker: receive ``(fn, item)``, send back ``(True, result)`` or ``(False, error)``."""
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        fn, item = msg
        try:
            conn.send((True, fn(item, shared)))
        except Exception as exc:  # noqa: BLE001 - the driver decides what to do with it
            try:
                conn.send((False, exc))
            except Exception:  # noqa: BLE001 - an exception that does not pickle
                conn.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


class _Worker:
    def __init__(self, ctx: Any, shared: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_loop, args=(child, shared), daemon=True)
        self.proc.start()
        child.close()
        self.task: int | None = None

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.proc.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.conn.close()


class ProcessExecutor:
    """A pool of worker processes on this machine; ``shared`` is sent once per worker.

    Workers are spawned (not forked: forking a process that runs Arrow/polars thread pools can
    deadlock). A worker that dies is replaced and its task re-run, up to ``max_retries`` times."""

    def __init__(self, spec: ExecutorSpec) -> None:
        self.spec = spec

    def map(self, fn: Callable[[Any, Any], Any], items: Sequence[Any], shared: Any = None,
            label: Label = str, passthrough: tuple[type[BaseException], ...] = ()) -> Iterator[Any]:
        from multiprocessing.connection import wait

        items = list(items)
        ctx = mp.get_context("spawn")
        workers = [_Worker(ctx, shared) for _ in range(min(self.spec.workers, max(1, len(items))))]
        todo = list(range(len(items)))[::-1]  # a stack: pop() gives the next in input order
        attempts = dict.fromkeys(range(len(items)), 0)
        results: dict[int, Any] = {}
        next_out = 0
        try:
            while next_out < len(items):
                for i, w in enumerate(list(workers)):
                    if w.task is None and todo:
                        w.task = todo.pop()
                        try:
                            w.conn.send((fn, items[w.task]))
                        except OSError:  # died while idle: the task goes to a fresh worker
                            todo.append(w.task)
                            w.task = None
                            w.stop(kill=True)
                            workers[i] = _Worker(ctx, shared)
                busy = [w for w in workers if w.task is not None]
                ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy])
                for i, w in enumerate(list(workers)):
                    if w.task is None or (w.conn not in ready and w.proc.sentinel not in ready):
                        continue
                    task = w.task
                    try:
                        ok, value = w.conn.recv()
                    except (EOFError, OSError):  # the worker died (killed, OOM) mid-task
                        attempts[task] += 1
                        if attempts[task] > self.spec.max_retries:
                            raise TaskError(f"{label(items[task])}: worker process died {attempts[task]} times; "
                                            "giving up") from None
                        w.stop(kill=True)
                        workers[i] = _Worker(ctx, shared)
                        todo.append(task)
                        continue
                    w.task = None
                    if not ok:
                        if isinstance(value, passthrough):
                            raise value
                        raise TaskError(f"{label(items[task])}: {type(value).__name__}: {value}") from value
                    results[task] = value
                while next_out in results:  # stream results out in input order
                    yield results.pop(next_out)
                    next_out += 1
        finally:
            for w in workers:
                w.stop(kill=w.task is not None)

    def close(self) -> None:
        pass


class RayExecutor:
    """Tasks on a Ray cluster; ``shared`` goes through the object store once per map."""

    def __init__(self, spec: ExecutorSpec) -> None:
        self.spec = spec
        try:
            import ray
        except ImportError as exc:
            raise ExecutorError("executor 'ray' needs the ray package: pip install 'codecorpus[ray]'") from exc
        self.ray = ray
        self._owns = False
        if not ray.is_initialized():
            self._connect()

    def _connect(self) -> None:
        ray, spec = self.ray, self.spec
        kwargs: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False,
                                  "runtime_env": {"env_vars": _worker_env()}}
        try:
            if spec.address == "local":
                ray.init(num_cpus=spec.workers, **kwargs)
            else:
                _check_reachable(spec.address)
                ray.init(address=spec.address, **kwargs)
        except ExecutorError:
            raise
        except Exception as exc:  # ray raises ConnectionError, RuntimeError, ValueError...
            raise ExecutorError(f"cannot connect to the Ray cluster at {spec.address!r}: {exc}; "
                                "check the address (ray://host:10001, host:6379, auto or local)") from exc
        self._owns = True

    def map(self, fn: Callable[[Any, Any], Any], items: Sequence[Any], shared: Any = None,
            label: Label = str, passthrough: tuple[type[BaseException], ...] = ()) -> Iterator[Any]:
        ray = self.ray
        items = list(items)
        shared_ref = ray.put(shared)
        remote = ray.remote(max_retries=self.spec.max_retries, num_cpus=1)(_call_remote)
        # A bounded window of tasks in flight keeps the driver's memory flat on huge inputs.
        window = max(2, 2 * self._cpus())
        refs: dict[int, Any] = {}
        submitted = 0
        for i in range(len(items)):
            while submitted < len(items) and submitted < i + window:
                refs[submitted] = remote.remote(fn, items[submitted], shared_ref)
                submitted += 1
            try:
                yield ray.get(refs.pop(i))
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                if isinstance(cause, passthrough):
                    raise cause from None
                raise TaskError(f"{label(items[i])}: {type(cause).__name__}: {cause}") from exc
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayError) as exc:
                raise TaskError(f"{label(items[i])}: worker lost after {self.spec.max_retries} retries: "
                                f"{exc}") from exc

    def _cpus(self) -> int:
        try:
            return max(1, int(self.ray.cluster_resources().get("CPU", 1)))
        except Exception:  # noqa: BLE001 - sizing only
            return self.spec.workers

    def close(self) -> None:
        if self._owns:
            self.ray.shutdown()
            self._owns = False


def _call_remote(fn: Callable[[Any, Any], Any], item: Any, shared: Any) -> Any:
    return fn(item, shared)


def _worker_env() -> dict[str, str]:
    """What workers on any node need to import this project the way the driver does."""
    env = {}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    for k in ("CODECORPUS_INVALID_TEXT", "CODECORPUS_KEEP_VERSIONS", "CODECORPUS_FAILPOINTS",
              "CODECORPUS_FAILPOINT_DIR"):
        if k in os.environ:
            env[k] = os.environ[k]
    return env


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds, naming the address, instead of Ray's long connection retries."""
    import socket

    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError(f"Ray address {address!r}: expected host:port, ray://host:port, auto or local")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ExecutorError(f"cannot reach the Ray cluster at {address!r} ({exc}); is `ray start --head` "
                            "running there, and is the port open?") from exc


def make_executor(spec: ExecutorSpec | None = None) -> LocalExecutor | ProcessExecutor | RayExecutor:
    spec = spec or ExecutorSpec()
    if spec.kind == "local":
        return LocalExecutor(spec)
    if spec.kind == "process":
        return ProcessExecutor(spec)
    return RayExecutor(spec)

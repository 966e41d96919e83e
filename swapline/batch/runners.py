"""Where tasks run: Ray (started here, or a cluster's), or a local process pool when Ray is absent.

Both run the same function (tasks.run_task) and hand back results as they finish. A worker
process that dies mid-task is replaced and its task run again, up to max_retries times: Ray does
this itself (a task's max_retries); the pool is rebuilt and the unfinished tasks resubmitted.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
from collections.abc import Hashable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from swapline.batch.options import BatchOptions
from swapline.batch.tasks import JobContext, Shipped, run_task, shipping_key
from swapline.errors import SwaplineError

log = logging.getLogger("swapline.batch")

# A Ray started here stays on this machine and off the network: no usage report, loopback
# only, and proxies pointed at a closed local port (workers inherit this environment).
_DEAD_PROXY = "http://127.0.0.1:9"
OFFLINE_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "HTTP_PROXY": _DEAD_PROXY,
    "HTTPS_PROXY": _DEAD_PROXY,
    "http_proxy": _DEAD_PROXY,
    "https_proxy": _DEAD_PROXY,
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


class WorkerLost(SwaplineError):
    """A task's worker process died more often than max_retries allows (the input is not at fault)."""


def local_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _leave_interrupts_to_the_driver() -> None:
    """Pool workers ignore Ctrl-C (sent to the whole terminal group): the driver stops the batch."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class PoolRunner:
    """Worker processes on this machine (spawned, so each loads its own models once)."""

    def __init__(self, workers: int, max_retries: int):
        self.workers, self.max_retries = workers, max_retries
        self.name = "process pool"
        self.retries = 0
        self._executor: ProcessPoolExecutor | None = None

    def share(self, value):
        return value

    def ship(self, paths: list[Path]) -> dict[Path, Shipped]:
        return {}  # the workers read the driver's files

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            context = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=context, initializer=_leave_interrupts_to_the_driver
            )
        return self._executor

    def results(self, tasks: dict[Hashable, object], context: JobContext, source) -> Iterator[tuple]:
        """(key, result or exception) for every task, as they finish."""
        todo = dict(tasks)
        attempts = dict.fromkeys(tasks, 0)
        while todo:
            futures: dict[Future, Hashable] = {
                self._pool().submit(run_task, task, context, source): key for key, task in todo.items()
            }
            broken = False
            for future in as_completed(futures):
                key = futures[future]
                try:
                    result = future.result()
                except BrokenProcessPool:
                    broken = True  # a worker died: every unfinished task goes again
                    continue
                except Exception as exc:
                    result = exc
                del todo[key]
                yield key, result
            if broken:
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None
                for key in list(todo):
                    attempts[key] += 1
                    self.retries += 1
                    if attempts[key] > self.max_retries:
                        del todo[key]
                        yield key, WorkerLost(f"a worker process died {attempts[key]} times running this task")
                log.warning("a worker process died; %d task(s) run again", len(todo))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


class RayRunner:
    """Ray tasks: on a Ray started here (one worker per core, shut down at the end) or a cluster."""

    def __init__(self, address: str | None, workers: int | None, max_retries: int, ship_files: bool | None):
        import ray

        self._ray = ray
        self.max_retries = max_retries
        self.retries = 0  # Ray retries by itself and does not say
        self.started = False
        if not ray.is_initialized():
            quiet = {"log_to_driver": False, "logging_level": logging.WARNING, "configure_logging": False}
            if address is None:
                with _environment(OFFLINE_ENV):
                    ray.init(
                        num_cpus=workers or local_cores(),
                        _node_ip_address="127.0.0.1",
                        include_dashboard=False,
                        **quiet,
                    )
            else:
                ray.init(address=address, **quiet)
            self.started = True
        self.workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.name = "ray (local)" if address is None else f"ray ({address})"
        self.ship_files = address is not None if ship_files is None else ship_files

    def share(self, value):
        return self._ray.put(value)

    def ship(self, paths: list[Path]) -> dict[Path, Shipped]:
        """On a cluster the driver's files travel through the object store (once per machine)."""
        if not self.ship_files:
            return {}
        return {path: Shipped(shipping_key(path), self._ray.put(path.read_bytes())) for path in paths}

    def results(self, tasks: dict[Hashable, object], context: JobContext, source) -> Iterator[tuple]:
        ray = self._ray
        remote = ray.remote(run_task).options(num_cpus=1, max_retries=self.max_retries)
        shared = ray.put(context)
        refs = {remote.remote(task, shared, source): key for key, task in tasks.items()}
        try:
            while refs:
                (ready,), _ = ray.wait(list(refs), num_returns=1)
                key = refs.pop(ready)
                try:
                    result = ray.get(ready)
                except ray.exceptions.RayTaskError as exc:
                    cause = exc.cause if isinstance(exc.cause, Exception) else None
                    result = cause or SwaplineError(str(exc).strip().splitlines()[-1])
                except ray.exceptions.RayError as exc:  # worker or node lost beyond the retries
                    result = WorkerLost(f"the worker was lost {self.max_retries + 1} times ({type(exc).__name__})")
                yield key, result
        finally:
            for ref in refs:  # stopped early (Ctrl-C): a cluster's workers stop too
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)

    def close(self) -> None:
        if self.started:
            self._ray.shutdown()
            self.started = False


def open_runner(options: BatchOptions, on_notice=None) -> PoolRunner | RayRunner:
    """Ray when it is installed (or asked for), else the local pool, which is said once."""
    wanted = options.runner
    if wanted == "pool" or (wanted == "auto" and options.address is None and not ray_available()):
        if wanted == "auto":
            text = "Ray is not installed (pip install 'swapline[ray]'): running on a local process pool"
            log.info(text)
            if on_notice is not None:
                on_notice(text)
        if options.address is not None:
            raise SwaplineError("--address needs Ray; install it with pip install 'swapline[ray]'")
        return PoolRunner(options.workers or local_cores(), options.max_retries)
    if not ray_available():
        raise SwaplineError("Ray is not installed; install it with pip install 'swapline[ray]'")
    return RayRunner(options.address, options.workers, options.max_retries, options.ship_files)

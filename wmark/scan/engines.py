"""Where ``scan_file`` runs: in this process, in a pool of worker processes, or on a dask cluster.

Each engine is a context manager (entering it loads the models on its workers) with
``map(paths) -> rows`` in completion order. Paths are pulled lazily and the tasks in flight are
bounded, so memory stays flat however many files there are.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Iterator
from itertools import islice

import torch

from wmark.errors import WmarkError
from wmark.scan.pool import ProcessPool
from wmark.scan.job import ScanConfig, error_row, scan_file, warm

ENGINES = ("local", "dask")
GRACE_S = 1.0
"""A worker that has not given a file up this long after ``--timeout`` is killed and replaced."""
IN_FLIGHT_PER_THREAD = 2
"""Dask tasks submitted ahead per worker thread: enough to keep workers busy, few enough to stay small."""


def _init_worker(config: ScanConfig) -> None:
    torch.set_num_threads(1)  # files are the parallel unit; threads that spin for a busy core only slow it
    warm(config)


class InProcess:
    """``--workers 0``: files are scanned one after the other in this process (``--timeout`` is
    checked between stages, so a call stuck in a decoder is not interrupted)."""

    def __init__(self, config: ScanConfig) -> None:
        self.config = config

    def __enter__(self) -> InProcess:
        warm(self.config)
        return self

    def __exit__(self, *exc) -> None:
        pass

    def map(self, paths: Iterable[str]) -> Iterator[dict]:
        return (scan_file(self.config, path) for path in paths)


class LocalPool:
    """``--workers N``: N processes with one torch thread each, the models loaded once in each, one
    file each at a time.

    With ``--timeout``, a worker that does not give a file up is killed and replaced; a worker
    that crashes (a decoder fault) is replaced too, and its file gets an error row.
    """

    def __init__(self, config: ScanConfig, workers: int) -> None:
        limit = None if config.timeout is None else config.timeout + GRACE_S
        self.pool = ProcessPool(functools.partial(scan_file, config), workers, _init_worker, (config,), limit)

    def __enter__(self) -> LocalPool:
        self.pool.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.pool.__exit__(*exc)

    def map(self, paths: Iterable[str]) -> Iterator[dict]:
        for path, row, failure in self.pool.imap_unordered(paths):
            yield row if failure is None else error_row(path, failure)


class Dask:
    """``--engine dask``: the same ``scan_file`` as dask tasks, on the scheduler at ``address`` or
    on a LocalCluster (``workers`` processes; 0: threads in this process).

    With ``--device cuda`` each task asks for the worker resource ``GPU=1``: start GPU workers with
    ``dask worker ADDRESS --nthreads 1 --resources GPU=1``. ``--timeout`` is checked between stages.
    """

    def __init__(self, config: ScanConfig, address: str | None, workers: int) -> None:
        try:
            import distributed
        except ImportError:
            raise WmarkError('--engine dask needs dask: pip install "wmark[dask]"') from None
        self._distributed = distributed
        self.config = config
        self.address = address
        self.workers = workers
        self.resources = {"GPU": 1} if config.device.startswith("cuda") else None
        self.client = self.cluster = None

    def __enter__(self) -> Dask:
        distributed = self._distributed
        try:
            if self.address is None:
                self.cluster = distributed.LocalCluster(
                    n_workers=max(1, self.workers), threads_per_worker=1, processes=self.workers > 0,
                    dashboard_address=None, silence_logs=logging.ERROR, resources=self.resources)
            self.client = distributed.Client(self.address or self.cluster, timeout=30)
        except (OSError, ValueError) as exc:
            self.__exit__()
            raise WmarkError(f"cannot reach the dask scheduler {self.address}: {exc}") from None
        try:
            self.client.run(warm, self.config)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for part in (self.client, self.cluster):
            if part is not None:
                part.close()

    def map(self, paths: Iterable[str]) -> Iterator[dict]:
        paths = iter(paths)
        window = IN_FLIGHT_PER_THREAD * max(1, sum(self.client.nthreads().values()))
        pending = {}
        running = self._distributed.as_completed()
        for path in islice(paths, window):
            self._submit(path, pending, running)
        for future in running:
            path = pending.pop(future.key)
            try:
                row = future.result()
            except Exception as exc:  # the worker was lost, or the cluster failed the task
                row = error_row(path, f"dask: {type(exc).__name__}: {exc}")
            yield row
            for path in islice(paths, 1):
                self._submit(path, pending, running)

    def _submit(self, path: str, pending: dict, running) -> None:
        future = self.client.submit(scan_file, self.config, path, pure=False, resources=self.resources)
        pending[future.key] = path
        running.add(future)


def engine(name: str, config: ScanConfig, workers: int = 1, address: str | None = None):
    """The engine called ``name`` ("local" or "dask")."""
    if name not in ENGINES:
        raise WmarkError(f"unknown engine {name!r}; valid: {', '.join(ENGINES)}")
    if workers < 0:
        raise WmarkError(f"--workers must be 0 or more, got {workers}")
    if name == "dask":
        return Dask(config, address, workers)
    if address is not None:
        raise WmarkError("--address is for --engine dask")
    return InProcess(config) if workers == 0 else LocalPool(config, workers)

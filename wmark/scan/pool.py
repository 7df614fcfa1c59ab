"""A pool of worker processes with a time limit per task: a stuck or dead worker is replaced.

Unlike ``multiprocessing.Pool`` or ``concurrent.futures``, one task that hangs in C code or
crashes its process costs only that task: the worker is killed and a fresh one starts (its
initializer runs again), while the others go on. Each worker holds one task at a time, so the
tasks in flight never exceed the number of workers, whatever the length of the input.
Workers come from a fork server that has imported wmark (and torch) once and never runs
models itself, so a replacement starts in milliseconds and CUDA stays usable in workers.
"""
from __future__ import annotations

import multiprocessing
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import wait

_END = object()


def _serve(conn, func: Callable, initializer: Callable | None, initargs: tuple) -> None:
    """A worker's loop: run the initializer, say ready, then answer tasks until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        if initializer is not None:
            initializer(*initargs)
    except Exception as exc:
        conn.send(("failed", exc))
        return
    conn.send(("ready", None))
    while True:
        try:
            item = conn.recv()
        except EOFError:  # the parent is gone
            return
        if item is None:
            return
        try:
            conn.send(("done", func(item)))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class _Worker:
    def __init__(self, context, func, initializer, initargs) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, func, initializer, initargs), daemon=True)
        self.process.start()
        child.close()
        self.ready = False
        self.item = _END
        self.deadline = float("inf")

    def assign(self, item, limit: float | None) -> None:
        self.item = item
        self.deadline = float("inf") if limit is None else time.monotonic() + limit
        self.conn.send(item)

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()


class ProcessPool:
    """``workers`` processes running ``func``; use as a context manager.

    ``initializer(*initargs)`` runs once in each worker (load models there). An exception it
    raises in the first workers is raised again by ``__enter__``.
    """

    def __init__(self, func: Callable, workers: int, initializer: Callable | None = None, initargs: tuple = (),
                 limit: float | None = None) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["wmark.scan.pool"])  # the server imports torch once; workers fork from it
        self._spawn = lambda: _Worker(context, func, initializer, initargs)
        self._size = workers
        self._limit = limit
        self._workers: list[_Worker] = []

    def __enter__(self) -> ProcessPool:
        self._workers = [self._spawn() for _ in range(self._size)]
        try:
            for worker in self._workers:
                self._await_ready(worker, block=True)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for worker in self._workers:
            if worker.ready and worker.item is _END:
                try:
                    worker.conn.send(None)
                except OSError:  # it is gone already
                    pass
        for worker in self._workers:
            if worker.item is _END:
                worker.process.join(timeout=5)
            worker.kill()
        self._workers = []

    def _await_ready(self, worker: _Worker, block: bool) -> None:
        if not block and not worker.conn.poll() and worker.process.is_alive():
            return
        try:
            status, detail = worker.conn.recv()
        except EOFError:
            code = worker.process.exitcode
            raise RuntimeError(f"a worker process exited while starting (exit code {code})") from None
        if status == "failed":
            raise detail
        worker.ready = True

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self._workers[self._workers.index(worker)] = self._spawn()

    def imap_unordered(self, items: Iterable) -> Iterator[tuple[object, object, str | None]]:
        """Yield (item, result, None) as tasks finish, or (item, None, reason) for a task that failed.

        Items are pulled from ``items`` only when a worker is free.
        """
        items = iter(items)
        exhausted = False
        while True:
            for worker in list(self._workers):
                if not exhausted and worker.ready and worker.item is _END:
                    item = next(items, _END)
                    exhausted = item is _END
                    if not exhausted:
                        try:
                            worker.assign(item, self._limit)
                        except OSError:  # it died while idle (killed from outside)
                            yield item, None, self._died(worker)
            busy = [w for w in self._workers if w.item is not _END]
            starting = [w for w in self._workers if not w.ready]
            if not busy and (exhausted or not starting):
                return
            soonest = min((w.deadline for w in busy), default=float("inf"))
            timeout = None if soonest == float("inf") else max(0.0, soonest - time.monotonic())
            wait([w.conn for w in busy + starting] + [w.process.sentinel for w in busy + starting], timeout)
            for worker in starting:
                self._await_ready(worker, block=False)
            for worker in busy:
                outcome = self._outcome(worker)
                if outcome is not None:
                    yield outcome

    def _outcome(self, worker: _Worker) -> tuple[object, object, str | None] | None:
        """The finished task of a busy worker, if any; replaces the worker when it died or ran out of time."""
        item = worker.item
        if worker.conn.poll():
            try:
                status, detail = worker.conn.recv()
            except EOFError:
                status = "dead"
            if status != "dead":
                worker.item = _END
                return (item, detail, None) if status == "done" else (item, None, detail)
        if not worker.process.is_alive():
            return item, None, self._died(worker)
        if time.monotonic() < worker.deadline:
            return None
        self._replace(worker)
        return item, None, f"timed out: no result within {self._limit:g} s, the worker was killed and replaced"

    def _died(self, worker: _Worker) -> str:
        worker.process.join()
        reason = f"crashed: the worker process died (exit code {worker.process.exitcode})"
        self._replace(worker)
        return reason

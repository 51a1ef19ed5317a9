"""Bulk ingest: files on disk into ivoa.obscore and lick.files, idempotently.

Files are compared with the database by size and mtime, so a second run over the same
tree reads nothing; changed files are re-read and their rows updated; unreadable files
go to ``ingest.rejected_files`` and are retried when they change.  The files to read
are cut into batches that a process pool ingests in parallel, each process reading,
mapping and writing its batch in one transaction over both tables and the
rejected-file table (:mod:`ingest.batch`), so that a crash leaves either the whole
batch or nothing.  The watcher drives the same `Loader`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions

from ingest.batch import (
    APPLICATION_NAME,
    BatchIngester,
    BatchOutcome,
    ingest_in_worker,
    start_worker,
)
from ingest.config import IngestConfig, IngestError
from ingest.disk import DiskFile, collect
from ingest.schedule import ScheduleSource
from ingest.store import Known, Rejected, known
from ingest.summary import IngestSummary

log = logging.getLogger(__name__)

# A batch is at most ``batch_size`` files (well under a minute even on a loaded
# machine); a pool that has not answered in this time is treated like a broken one.
_BATCH_TIMEOUT = 120.0


class Loader:
    """Plans a run, hands batches to the process pool and counts what they did.

    ``ingest`` is safe to call again after a database error: nothing is committed for
    a batch that failed, and the next call compares with the database again.
    """

    def __init__(self, config: IngestConfig, dsn: str, *,
                 schedule: ScheduleSource | None = None, dry_run: bool = False) -> None:
        self.config = config
        self.dsn = dsn
        self.dry_run = dry_run
        self._schedule = schedule
        self._conn: psycopg2.extensions.connection | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._local: BatchIngester | None = None
        self._generation = 0
        self.pool_restarts = 0

    # -- resources

    def connection(self) -> psycopg2.extensions.connection:
        """The parent's own connection (comparisons, the watcher's bookkeeping)."""
        if self._conn is None or self._conn.closed:
            self._conn = psycopg2.connect(self.dsn, application_name=APPLICATION_NAME)
        return self._conn

    @property
    def local(self) -> BatchIngester:
        """The ingester of this process: small runs and lone files; the watcher's
        recompute uses its access rules."""
        if self._local is None:
            self._local = BatchIngester(self.config, self.dsn, schedule=self._schedule,
                                        dry_run=self.dry_run)
        return self._local

    def drop_connection(self) -> None:
        """Forget the connections after a failure (the watcher reconnects later)."""
        if self._conn is not None:
            with contextlib.suppress(psycopg2.Error):
                self._conn.close()
            self._conn = None
        if self._local is not None:
            self._local.close()

    def close(self) -> None:
        self.drop_connection()
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def forget_caches(self) -> None:
        """Drop cached override rules and schedule answers, here and in the pool."""
        self._generation += 1
        if self._local is not None:
            self._local.rules.forget()

    # -- comparison with the database

    def known(self, paths: Sequence[str]) -> dict[str, Known]:
        """Size and mtime recorded for ``paths`` (ingested or rejected)."""
        conn = self.connection()
        with conn.cursor() as cur:
            found = known(cur, paths)
        conn.rollback()
        return found

    def plan(self, files: Sequence[DiskFile],
             summary: IngestSummary) -> tuple[list[DiskFile], dict[str, Known]]:
        """The files that must be read: new, changed, or rejected and since changed."""
        known = self.known([f.path for f in files])
        todo = []
        for disk in files:
            previous = known.get(disk.path)
            if previous is not None and (previous.size, previous.mtime) == (disk.size,
                                                                            disk.mtime):
                if previous.rejected:
                    summary.still_rejected += 1
                else:
                    summary.unchanged += 1
                continue
            todo.append(disk)
        return todo, known

    # -- the pool

    def _start_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver: workers do not inherit the parent's connections or threads.
            # The server preloads the readers so that workers start warm, and the main
            # module, which every worker would otherwise import again for itself.  As
            # with "spawn", a calling script needs the ``if __name__ == "__main__"`` guard.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["__main__", "ingest.records", "ingest.obscore_map",
                                            "ingest.batch"])
            self._pool = ProcessPoolExecutor(
                self.config.workers, mp_context=context, initializer=start_worker,
                initargs=(self.config, self.dsn, self._schedule, self.dry_run, os.getpid()))
        return self._pool

    def _restart_pool(self) -> None:
        self.pool_restarts += 1
        if self._pool is not None:
            # A pool can also hang rather than break (CPython may miss a worker killed
            # at the wrong moment): end its processes so nothing is left waiting.
            for process in list(getattr(self._pool, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    process.terminate()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _submit(self, batch: list[DiskFile], known: dict[str, Known]) -> Future[BatchOutcome]:
        all_new = _all_new(batch, known)
        try:
            return self._start_pool().submit(ingest_in_worker, batch, all_new,
                                             self._generation)
        except BrokenProcessPool:  # a worker died while idle
            self._restart_pool()
            return self._start_pool().submit(ingest_in_worker, batch, all_new,
                                             self._generation)

    def _one_by_one(self, batch: list[DiskFile], known: dict[str, Known]) -> BatchOutcome:
        """After a crash: each file of the batch alone in the pool, so that a file on
        which a worker dies is named, and rejected as ``reader_crashed``."""
        outcome = BatchOutcome()
        for disk in batch:
            try:
                outcome += self._submit([disk], known).result(timeout=_BATCH_TIMEOUT)
            except (BrokenProcessPool, TimeoutError):
                self._restart_pool()
                log.error("a worker process died or hung on %s", disk.absolute)
                self.local.write([], [Rejected(disk.path, disk.size, disk.mtime,
                                               "reader_crashed",
                                               "the worker process died reading this file")])
                outcome += BatchOutcome(rejected=((disk.path, "reader_crashed"),))
        return outcome

    def _run(self, todo: Sequence[DiskFile], known: dict[str, Known],
             stop: Callable[[], bool] | None) -> Iterator[tuple[list[DiskFile], BatchOutcome]]:
        """(batch, outcome) in order, with a bounded number of batches in flight.

        A worker that dies (a reader crash, the OOM killer) breaks the pool: it is
        restarted and the batch is ingested again file by file (its transaction was
        rolled back with the dead worker's connection).  A database or configuration
        error ends the run once the batches in flight are done.  ``stop`` is asked
        after every batch; when it says so, no further batch starts.
        """
        workers = self.config.workers
        size = min(self.config.batch_size, max(1, math.ceil(len(todo) / workers)))
        batches = (list(todo[i:i + size]) for i in range(0, len(todo), size))
        if workers == 1 or len(todo) < 8:
            for batch in batches:
                yield batch, self.local.ingest(batch, all_new=_all_new(batch, known),
                                               generation=self._generation)
                if stop is not None and stop():
                    return
            return
        pending: deque[tuple[list[DiskFile], Future[BatchOutcome]]] = deque()
        for batch in batches:
            pending.append((batch, self._submit(batch, known)))
            if len(pending) >= 2 * workers:
                break
        error: BaseException | None = None
        starting = True
        while pending:
            batch, future = pending.popleft()
            try:
                outcome = future.result(timeout=_BATCH_TIMEOUT)
            except (BrokenProcessPool, TimeoutError):
                self._restart_pool()
                rest = [b for b, _ in pending]
                pending.clear()
                outcome = self._one_by_one(batch, known)
                pending.extend((b, self._submit(b, known)) for b in rest)
            except (psycopg2.Error, IngestError) as exc:
                error, starting = error or exc, False
                continue
            if starting and stop is not None and stop():
                starting = False
            following = next(batches, None) if starting else None
            if following is not None:
                pending.append((following, self._submit(following, known)))
            yield batch, outcome
        if error is not None:
            raise error

    # -- the whole run

    def ingest(self, files: Sequence[DiskFile],
               progress: Callable[[int], None] | None = None,
               stop: Callable[[], bool] | None = None) -> IngestSummary:
        """Ingest ``files`` (already stat'ed); returns what happened.

        ``stop`` is asked after every batch: when it says so, the run ends with
        everything written so far committed and the rest left for the next run.
        """
        started = time.monotonic()
        summary = IngestSummary(dry_run=self.dry_run)
        todo, known = self.plan(files, summary)
        if progress is not None and len(files) > len(todo):
            progress(len(files) - len(todo))
        for batch, outcome in self._run(todo, known, stop):
            for path in outcome.written:
                previous = known.get(path)
                if previous is None or previous.rejected:
                    summary.new += 1
                else:
                    summary.updated += 1
            summary.rejected.update(reason for _, reason in outcome.rejected)
            if progress is not None:
                progress(len(batch))
        summary.seconds = time.monotonic() - started
        return summary


def _all_new(batch: Sequence[DiskFile], known: dict[str, Known]) -> bool:
    """No file of the batch had a row when the run compared disk and database."""
    return all(disk.path not in known for disk in batch)


# ---------------------------------------------------------------- entry points


def ingest_paths(config: IngestConfig, dsn: str, paths: Sequence[Path | str], *,
                 dry_run: bool = False, show_progress: bool = True, console: Any = None,
                 schedule: ScheduleSource | None = None) -> IngestSummary:
    """``lick-archive ingest PATH...``: ingest files and trees behind a progress bar.

    The caller prints the summary it returns (``ingest.report.print_summary``).
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = console or Console(stderr=True)
    files, ignored = collect(paths, config)
    with Loader(config, dsn, schedule=schedule, dry_run=dry_run) as loader:
        if show_progress:
            with Progress(TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                          TimeRemainingColumn(), console=console, transient=False) as bar:
                task = bar.add_task("ingest", total=len(files), rate="")
                started = time.monotonic()

                def advance(n: int) -> None:
                    bar.advance(task, n)
                    done = bar.tasks[0].completed
                    rate = done / max(time.monotonic() - started, 1e-6)
                    bar.update(task, rate=f"{rate:,.0f} files/s")

                summary = loader.ingest(files, advance)
        else:
            summary = loader.ingest(files)
    summary.ignored = ignored
    return summary

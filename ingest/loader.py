"""Bulk ingest: files on disk into ivoa.obscore and lick.files, idempotently.

Files are compared with the database by size and mtime, so a second run over the same
tree reads nothing; changed files are re-read and their rows updated; unreadable files
go to ``ingest.rejected_files`` and are retried when they change.  Headers are read in
a process pool (bounded, so memory stays flat); rows are written in batches, each
batch in one transaction covering both tables and the rejected-file table, so that a
crash leaves either the whole batch or nothing.  The watcher drives the same `Loader`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions

from ingest.access import AccessDecision, decide_access, override_number, read_overrides
from ingest.config import IngestConfig
from ingest.schedule import PostgresSchedule, ScheduleSource
from ingest.store import BatchWriter, Known, Rejected, known

if TYPE_CHECKING:
    from ingest.recompute import RecomputeSummary

log = logging.getLogger(__name__)

OVERRIDE_FLAG = "obstype_override"
_EPOCH = datetime(1970, 1, 1)


# A chunk is at most 64 header reads (well under a second); a pool that has not
# answered in this time is treated like a broken one.
_READ_TIMEOUT = 120.0


class IngestError(RuntimeError):
    """Ingest cannot start or go on; the message says what the operator must fix."""


# ---------------------------------------------------------------- files on disk


@dataclass(frozen=True)
class DiskFile:
    """A file of the archive as seen by ``stat`` before it is read."""

    root: Path
    path: str  # relative to root, POSIX separators: YYYY-MM/DD/<instrument dir>/<file>
    size: int
    mtime: datetime  # UTC, naive, truncated to microseconds (as stored)

    @property
    def absolute(self) -> Path:
        return self.root / self.path

    @property
    def directory(self) -> str:
        return self.path.rsplit("/", 1)[0]

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[1]


def mtime_of(st: os.stat_result) -> datetime:
    """The mtime as stored in the database: UTC, naive, whole microseconds."""
    return _EPOCH + timedelta(microseconds=st.st_mtime_ns // 1000)


def night_of(relative: str) -> date | None:
    """The observing night of a layout path ``YYYY-MM/DD/<dir>/<file>``, else None."""
    parts = relative.split("/")
    if len(parts) != 4 or len(parts[0]) != 7 or parts[0][4] != "-" or len(parts[1]) != 2:
        return None
    try:
        return date(int(parts[0][:4]), int(parts[0][5:]), int(parts[1]))
    except ValueError:
        return None


def is_archive_file(relative: str, config: IngestConfig) -> bool:
    """Whether ``relative`` is an ingestible file: the layout, a configured instrument
    directory, not hidden, not an override file."""
    parts = relative.split("/")
    return (
        night_of(relative) is not None
        and parts[2] in config.instrument_dirs
        and not parts[3].startswith(".")
        and override_number(parts[3]) is None
    )


def find_root(path: Path, config: IngestConfig) -> Path:
    """The configured root that contains ``path``."""
    resolved = path.resolve()
    for root in config.roots:
        if resolved == root.resolve() or resolved.is_relative_to(root.resolve()):
            return root
    roots = ", ".join(str(r) for r in config.roots) or "(none configured)"
    raise IngestError(f"{path} is not below any archive root ({roots}); "
                      "add its root to [ingest] roots")


def stat_file(root: Path, relative: str) -> DiskFile | None:
    try:
        st = (root / relative).stat()
    except OSError:
        return None
    return DiskFile(root, relative, st.st_size, mtime_of(st))


def scan_directory(root: Path, relative_dir: str, config: IngestConfig) -> list[DiskFile]:
    """The archive files directly inside one instrument directory."""
    found: list[DiskFile] = []
    try:
        entries = list(os.scandir(root / relative_dir))
    except OSError:
        return found
    for entry in entries:
        relative = f"{relative_dir}/{entry.name}"
        if not is_archive_file(relative, config):
            continue
        try:
            if not entry.is_file():
                continue
            st = entry.stat()
        except OSError:
            continue  # vanished between listing and stat
        found.append(DiskFile(root, relative, st.st_size, mtime_of(st)))
    return sorted(found, key=lambda f: f.path)


def instrument_dirs(root: Path, config: IngestConfig, below: str = "") -> Iterator[str]:
    """Relative ``YYYY-MM/DD/<dir>`` directories of a root (or below a part of it)."""
    base = root / below if below else root
    depth = len([p for p in below.split("/") if p])
    if depth == 3:
        if (base).is_dir() and below.split("/")[2] in config.instrument_dirs:
            yield below.strip("/")
        return
    try:
        children = sorted(e.name for e in os.scandir(base) if e.is_dir())
    except OSError:
        return
    for name in children:
        child = f"{below.strip('/')}/{name}" if below.strip("/") else name
        if depth == 0 and not (len(name) == 7 and name[4] == "-"):
            continue
        if depth == 1 and len(name) != 2:
            continue
        if depth == 2 and name not in config.instrument_dirs:
            continue
        yield from instrument_dirs(root, config, child)


def collect(paths: Iterable[Path | str], config: IngestConfig) -> tuple[list[DiskFile], int]:
    """Files named by ``paths`` (files or directories); returns (files, ignored count)."""
    files: dict[tuple[Path, str], DiskFile] = {}
    ignored = 0
    for given in paths:
        path = Path(given)
        root = find_root(path, config)
        relative = path.resolve().relative_to(root.resolve()).as_posix()
        relative = "" if relative == "." else relative
        if path.is_file():
            disk = stat_file(root, relative)
            if disk is not None and is_archive_file(relative, config):
                files[(root, relative)] = disk
            else:
                ignored += 1
            continue
        if not path.is_dir():
            raise IngestError(f"{path} does not exist")
        depth = len(relative.split("/")) if relative else 0
        if depth > 3:
            raise IngestError(f"{path} is below an instrument directory: not the archive layout")
        for directory in instrument_dirs(root, config, relative):
            for disk in scan_directory(root, directory, config):
                files[(root, disk.path)] = disk
    return sorted(files.values(), key=lambda f: f.path), ignored


# ---------------------------------------------------------------- reading (pool workers)


@dataclass(frozen=True)
class ReadResult:
    """What a worker sends back: the metadata or the rejection, plus the checksum."""

    disk: DiskFile
    meta: Any  # ingest.records.FileMetadata, or None when rejected
    reason: str | None = None
    detail: str = ""
    checksum: str | None = None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_one(disk: DiskFile, config: IngestConfig) -> ReadResult:
    """Read one file; never raises, so that one bad file cannot stop a run."""
    from ingest.records import Rejection, read_file

    try:
        result = read_file(disk.absolute, disk.root, config.instrument_config, checksum=True)
    except Exception as exc:  # a reader bug must reject the file, not kill the run
        log.exception("reader failed on %s", disk.absolute)
        return ReadResult(disk, None, "reader_error", f"{type(exc).__name__}: {exc}")
    if isinstance(result, Rejection):
        return ReadResult(disk, None, str(result.reason), str(getattr(result, "detail", "")))
    checksum = getattr(result, "checksum", None)
    if not checksum:
        try:
            checksum = sha256_of(disk.absolute)
        except OSError as exc:
            return ReadResult(disk, None, "unreadable", str(exc))
    return ReadResult(disk, result, checksum=checksum)


def _worker_init() -> None:
    # Ctrl-C reaches the whole foreground process group: the parent decides what to
    # do.  SIGTERM stays deadly: the executor uses it to clean up after a dead worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _read_chunk(chunk: Sequence[DiskFile], config: IngestConfig) -> list[ReadResult]:
    return [read_one(d, config) for d in chunk]


# ---------------------------------------------------------------- rows


def flags_with(flags: str | None, flag: str, present: bool) -> str:
    words = [w for w in (flags or "").split() if w != flag]
    if present:
        words.append(flag)
    return " ".join(words)


@dataclass
class IngestSummary:
    """Counts of one run; ``rejected`` counts files rejected in this run, by reason."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    still_rejected: int = 0
    ignored: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return (self.new + self.updated + self.unchanged + self.still_rejected
                + sum(self.rejected.values()))

    def add(self, other: IngestSummary) -> None:
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.still_rejected += other.still_rejected
        self.ignored += other.ignored
        self.rejected.update(other.rejected)
        self.seconds += other.seconds


@dataclass(frozen=True)
class PreparedBatch:
    """One batch ready for the database: rows, rejections, and whether all rows are new."""

    good: list[tuple[dict[str, Any], dict[str, Any]]]
    bad: list[Rejected]
    all_new: bool


# ---------------------------------------------------------------- the loader


class Loader:
    """Reads files and writes their rows; owns one connection and one process pool.

    ``ingest`` is safe to call again after a database error: nothing is committed for
    a batch that failed, and the next call compares with the database again.
    """

    def __init__(self, config: IngestConfig, dsn: str, *,
                 schedule: ScheduleSource | None = None, dry_run: bool = False) -> None:
        self.config = config
        self.dsn = dsn
        self.dry_run = dry_run
        self._schedule = schedule
        self._conns: dict[int, psycopg2.extensions.connection] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._overrides: dict[tuple[Path, str], tuple[Any, ...]] = {}
        self._writer = BatchWriter()
        self.pool_restarts = 0

    # -- resources

    @property
    def schedule(self) -> ScheduleSource:
        if self._schedule is None:
            self._schedule = PostgresSchedule(self.config.schedule_dsn or self.dsn,
                                              self.config.schedule_schema)
        return self._schedule

    def connection(self) -> psycopg2.extensions.connection:
        """The calling thread's connection (writer threads write in parallel)."""
        key = threading.get_ident()
        conn = self._conns.get(key)
        if conn is None or conn.closed:
            conn = psycopg2.connect(self.dsn, application_name="lick-archive-ingest")
            # Full headers are ~15 kB of text per row: lz4 compresses them 3-4 times
            # faster than the default pglz (a session setting, not a schema change).
            try:
                with conn.cursor() as cur:
                    cur.execute("SET default_toast_compression = 'lz4'")
                conn.commit()
            except psycopg2.Error:
                conn.rollback()
            self._conns[key] = conn
        return conn

    def drop_connection(self) -> None:
        """Forget the connections after a failure (the watcher reconnects later)."""
        for conn in list(self._conns.values()):
            self._writer.forget(conn)
            with contextlib.suppress(psycopg2.Error):
                conn.close()
        self._conns.clear()
        if isinstance(self._schedule, PostgresSchedule):
            self._schedule.close()

    def close(self) -> None:
        self.drop_connection()
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def recompute(self, target: str | date | Path) -> RecomputeSummary:
        """Re-apply the access rules to a night, directory or file (see recompute_access)."""
        from ingest.recompute import recompute

        return recompute(self, target)

    def forget_caches(self) -> None:
        """Drop cached override rules and schedule answers (they may have changed)."""
        self._overrides.clear()
        invalidate = getattr(self._schedule, "invalidate", None)
        if callable(invalidate):
            invalidate()

    # -- comparison with the database

    def known(self, paths: Sequence[str]) -> dict[str, Known]:
        """Size and mtime recorded for ``paths`` (ingested or rejected)."""
        conn = self.connection()
        with conn.cursor() as cur:
            found = known(cur, paths)
        conn.rollback()
        return found

    # -- access

    def overrides_for(self, root: Path, directory: str) -> tuple[Any, ...]:
        key = (root, directory)
        if key not in self._overrides:
            self._overrides[key] = read_overrides(root / directory)
        return self._overrides[key]

    def decide(self, root: Path, relative: str, frame_type: str | None,
               program: str | None, observer: str | None) -> AccessDecision:
        night = night_of(relative)
        if night is None:
            raise IngestError(f"{relative}: not YYYY-MM/DD/<dir>/<file>")
        directory, filename = relative.rsplit("/", 1)
        instrument_dir = directory.split("/")[2]
        try:
            runs, observers = self.schedule.runs_on(night), self.schedule.observers()
        except (psycopg2.errors.UndefinedTable, psycopg2.errors.InvalidSchemaName) as exc:
            raise IngestError(
                f"the scheduling database has no observers/runs tables in schema "
                f"{self.config.schedule_schema!r}: load a schedule (lick-archive demo-data "
                f"loads the synthetic one) or set [schedule] dsn ({exc.pgerror or exc})"
            ) from exc
        return decide_access(
            night=night, filename=filename, instrument_dir=instrument_dir,
            telescope=self.config.telescope_of(instrument_dir), frame_type=frame_type,
            program=program, observer=observer,
            overrides=self.overrides_for(root, directory), runs=runs, observers=observers,
            always_public=self.config.always_public,
            release_period=self.config.release_period,
        )

    # -- rows

    def rows_for(self, result: ReadResult) -> tuple[dict[str, Any], dict[str, Any]]:
        """The obscore and files rows of a successfully read file."""
        from ingest.obscore_map import files_row, obscore_row

        meta = result.meta
        disk = result.disk
        frame_type = getattr(meta, "frame_type", None)
        decision = self.decide(disk.root, disk.path, frame_type,
                               getattr(meta, "program", None), getattr(meta, "observer", None))
        overridden = (decision.obstype_override is not None
                      and decision.obstype_override != frame_type)
        if overridden and dataclasses.is_dataclass(meta) and not isinstance(meta, type) \
                and hasattr(meta, "frame_type"):
            meta = dataclasses.replace(meta, frame_type=decision.obstype_override)
        release = decision.release_date
        kwargs: dict[str, Any] = {
            "authority": self.config.authority, "base_url": self.config.base_url,
            "release_date": release, "data_rights": decision.data_rights,
            "owner_ids": list(decision.owner_ids),
        }
        obscore = obscore_row(meta, **kwargs)
        files = files_row(meta, **kwargs)
        # The stat taken before reading is what later runs compare with.
        files["file_size"] = disk.size
        files["file_mtime"] = disk.mtime
        files["checksum"] = result.checksum
        files["path"] = disk.path
        files["ingested_at"] = datetime.now(UTC).replace(tzinfo=None)
        if overridden:
            files["frame_type"] = decision.obstype_override
        files["ingest_flags"] = flags_with(str(files.get("ingest_flags") or ""), OVERRIDE_FLAG,
                                            overridden)
        files["owner_ids"] = list(decision.owner_ids)
        files["release_date"] = release
        obscore["owner_ids"] = list(decision.owner_ids)
        obscore["obs_release_date"] = release
        obscore["data_rights"] = decision.data_rights
        return obscore, files

    # -- writing

    def prepare_batch(self, results: Sequence[ReadResult], known: dict[str, Known]
                      ) -> PreparedBatch:
        """Rows and rejections of one batch (CPU work: access rules, ObsCore mapping)."""
        good: list[tuple[dict[str, Any], dict[str, Any]]] = []
        bad: list[ReadResult] = []
        for result in results:
            if result.meta is None:
                bad.append(result)
                continue
            try:
                good.append(self.rows_for(result))
            except (psycopg2.Error, IngestError):
                raise  # the database or the configuration, not this file
            except Exception as exc:  # a mapping bug rejects the file, not the run
                log.exception("cannot map %s", result.disk.path)
                bad.append(dataclasses.replace(
                    result, meta=None, reason="mapping_error",
                    detail=f"{type(exc).__name__}: {exc}"))
        rejected = [Rejected(r.disk.path, r.disk.size, r.disk.mtime, r.reason or "unknown",
                             r.detail) for r in bad]
        return PreparedBatch(good, rejected,
                             all(str(f["path"]) not in known for _, f in good))

    def commit_batch(self, batch: PreparedBatch) -> None:
        """Write one batch in one transaction (nothing in a dry run)."""
        if self.dry_run:
            return
        conn = self.connection()
        try:
            self._writer.write(conn, batch.good, batch.bad, all_new=batch.all_new)
            conn.commit()
        except BaseException:
            with contextlib.suppress(psycopg2.Error):
                conn.rollback()
            raise

    @staticmethod
    def count(batch: PreparedBatch, summary: IngestSummary, known: dict[str, Known]) -> None:
        for _, files in batch.good:
            previous = known.get(str(files["path"]))
            if previous is None or previous.rejected:
                summary.new += 1
            else:
                summary.updated += 1
        for rejected in batch.bad:
            summary.rejected[rejected.reason] += 1

    def write_batch(self, results: Sequence[ReadResult], summary: IngestSummary,
                    known: dict[str, Known]) -> None:
        """Prepare, write and count one batch, all in the calling thread."""
        batch = self.prepare_batch(results, known)
        self.commit_batch(batch)
        self.count(batch, summary, known)

    # -- the whole run

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

    def _start_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver: workers do not inherit the parent's database connection or
            # threads; they ignore SIGINT, which the parent handles.
            # The server preloads the readers so that workers start warm.  As with
            # "spawn", a calling script needs the ``if __name__ == "__main__"`` guard.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["ingest.records", "ingest.obscore_map"])
            self._pool = ProcessPoolExecutor(self.config.workers, mp_context=context,
                                             initializer=_worker_init)
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

    def _read_alone(self, disk: DiskFile,
                    work: Callable[[Sequence[DiskFile]], list[ReadResult]]) -> ReadResult:
        try:
            try:
                future = self._start_pool().submit(work, [disk])
            except BrokenProcessPool:
                self._restart_pool()
                future = self._start_pool().submit(work, [disk])
            return future.result(timeout=_READ_TIMEOUT)[0]
        except (BrokenProcessPool, TimeoutError):
            self._restart_pool()
            log.error("a reader process died or hung on %s", disk.absolute)
            return ReadResult(disk, None, "reader_crashed",
                              "the reader process died reading this file")

    def read(self, files: Sequence[DiskFile]) -> Iterator[ReadResult]:
        """Results in order, from the pool, with a bounded number of chunks in flight.

        A worker that dies (a reader crash, the OOM killer) breaks the pool: it is
        restarted, the chunk is read again file by file, each alone in the pool, and a
        file on which a worker dies alone is rejected as ``reader_crashed``; the run
        goes on.
        """
        if self.config.workers == 1 or len(files) < 8:
            for disk in files:
                yield read_one(disk, self.config)
            return
        size = max(1, min(64, len(files) // (self.config.workers * 4) or 1))
        work = partial(_read_chunk, config=self.config)
        chunks = (list(files[i:i + size]) for i in range(0, len(files), size))
        pending: deque[tuple[list[DiskFile], Future[list[ReadResult]]]] = deque()

        def submit(chunk: list[DiskFile]) -> tuple[list[DiskFile], Future[list[ReadResult]]]:
            try:
                return chunk, self._start_pool().submit(work, chunk)
            except BrokenProcessPool:  # a worker died while idle
                self._restart_pool()
                return chunk, self._start_pool().submit(work, chunk)

        for chunk in chunks:
            pending.append(submit(chunk))
            if len(pending) >= self.config.workers * 3:
                break
        while pending:
            chunk, future = pending.popleft()
            try:
                done = future.result(timeout=_READ_TIMEOUT)
            except (BrokenProcessPool, TimeoutError):
                # Every future in flight is lost; read this chunk one file at a time,
                # each alone in the pool, so that a crash names its file.
                self._restart_pool()
                rest = [c for c, _ in pending]
                pending.clear()
                done = [self._read_alone(disk, work) for disk in chunk]
                pending.extend(submit(c) for c in rest)
            following = next(chunks, None)
            if following is not None:
                pending.append(submit(following))
            yield from done

    def ingest(self, files: Sequence[DiskFile],
               progress: Callable[[int], None] | None = None,
               stop: Callable[[], bool] | None = None) -> IngestSummary:
        """Ingest ``files`` (already stat'ed); returns what happened.

        Batches are written by writer threads (psycopg2 waits for the server without
        the GIL), each on its own connection and in its own transaction, while the
        next batch is prepared, so mapping and PostgreSQL work overlap.  ``stop`` is
        asked after every batch: when it says so, the run ends with everything
        written so far committed and the rest left for the next run.
        """
        started = time.monotonic()
        summary = IngestSummary(dry_run=self.dry_run)
        todo, known = self.plan(files, summary)
        if progress is not None and len(files) > len(todo):
            progress(len(files) - len(todo))
        # Two writers when reading in parallel: a single PostgreSQL backend (index and
        # TOAST work per row) is otherwise the slowest stage.
        writers = 2 if self.config.workers > 1 and not self.dry_run else 1
        writer = ThreadPoolExecutor(writers, thread_name_prefix="lick-ingest-writer")
        in_flight: deque[tuple[PreparedBatch, Future[None], int]] = deque()

        def finish(keep: int) -> None:
            while len(in_flight) > keep:
                batch, future, size = in_flight.popleft()
                future.result()
                self.count(batch, summary, known)
                if progress is not None:
                    progress(size)

        def hand_over(results: list[ReadResult]) -> None:
            batch = self.prepare_batch(results, known)
            finish(writers - 1)
            in_flight.append((batch, writer.submit(self.commit_batch, batch), len(results)))

        try:
            pending: list[ReadResult] = []
            for result in self.read(todo):
                pending.append(result)
                if len(pending) >= self.config.batch_size:
                    hand_over(pending)
                    pending = []
                    if stop is not None and stop():
                        break
            else:
                if pending:
                    hand_over(pending)
            finish(0)
        finally:
            # Never leave a write running behind the caller's back (the watcher drops
            # the connections after an error); the writers' connections end with them.
            writer.shutdown(wait=True)
            mine = threading.get_ident()
            for key in [k for k in self._conns if k != mine]:
                conn = self._conns.pop(key)
                self._writer.forget(conn)
                with contextlib.suppress(psycopg2.Error):
                    conn.close()
        summary.seconds = time.monotonic() - started
        return summary


# ---------------------------------------------------------------- access recompute


def recompute_access(config: IngestConfig, dsn: str, target: str | date | Path, *,
                     schedule: ScheduleSource | None = None) -> RecomputeSummary:
    """``lick-archive access recompute PATH|NIGHT``: re-apply the access rules.

    ``target`` is a night (``date`` or ``YYYY-MM-DD``), or a file or directory
    (absolute below a root, or relative to the roots).  Schedule answers and override
    rules are read afresh; rows whose owners, release date, rights or overridden
    frame type change are updated in one transaction.
    """
    from ingest.recompute import recompute

    with Loader(config, dsn, schedule=schedule) as loader:
        return recompute(loader, target)


# ---------------------------------------------------------------- entry points


def ingest_paths(config: IngestConfig, dsn: str, paths: Sequence[Path | str], *,
                 dry_run: bool = False, show_progress: bool = True, console: Any = None,
                 schedule: ScheduleSource | None = None) -> IngestSummary:
    """``lick-archive ingest PATH...``: ingest files and trees, print a summary."""
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
    if show_progress:
        from ingest.report import print_summary

        print_summary(summary, console)
    return summary

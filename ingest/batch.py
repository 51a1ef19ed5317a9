"""One batch of files read, mapped and written in one transaction: the unit of ingest work.

Every process of the ingest pool holds a `BatchIngester` with its own database
connection: it reads the headers of its batch, applies the access rules, builds the
rows and writes them (COPY) in one transaction.  The parent process only hands out
batches and counts outcomes: nothing crosses a process boundary but file names and a
few counts.  (Sending the ~15 kB headers back to one parent that mapped and wrote every
row cost as much CPU as reading them, and serialised the work on one core.)
A crash leaves the whole batch or nothing; the parent decides what to do about it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing.util
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions

from ingest.access import AccessDecision, decide_access, read_overrides
from ingest.config import IngestConfig, IngestError
from ingest.disk import DiskFile, night_of
from ingest.lifetime import end_with
from ingest.schedule import PostgresSchedule, Run, ScheduleSource
from ingest.store import BatchWriter, Rejected, Row

log = logging.getLogger(__name__)

OVERRIDE_FLAG = "obstype_override"
APPLICATION_NAME = "lick-archive-ingest"


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class ReadResult:
    """One file read: its metadata, or the reason it was rejected."""

    disk: DiskFile
    meta: Any  # ingest.records.FileMetadata, or None when rejected
    reason: str | None = None
    detail: str = ""


def read_one(disk: DiskFile, config: IngestConfig) -> ReadResult:
    """Read one file with its checksum; never raises, so one bad file cannot stop a run."""
    from ingest.records import Rejection, read_file

    try:
        result = read_file(disk.absolute, disk.root, config.instrument_config, checksum=True)
    except Exception as exc:  # a reader bug must reject the file, not kill the run
        log.exception("reader failed on %s", disk.absolute)
        return ReadResult(disk, None, "reader_error", f"{type(exc).__name__}: {exc}")
    if isinstance(result, Rejection):
        return ReadResult(disk, None, result.reason, result.detail)
    return ReadResult(disk, result)


# ---------------------------------------------------------------- access rules


def flags_with(flags: str | None, flag: str, present: bool) -> str:
    words = [w for w in (flags or "").split() if w != flag]
    if present:
        words.append(flag)
    return " ".join(words)


class AccessRules:
    """The access rules with their inputs cached: schedule answers per night (in the
    schedule source) and override files per directory, until `forget`."""

    def __init__(self, config: IngestConfig, dsn: str,
                 schedule: ScheduleSource | None = None) -> None:
        self.config = config
        self._dsn = dsn
        self._schedule = schedule
        self._overrides: dict[tuple[Path, str], tuple[Any, ...]] = {}

    @property
    def schedule(self) -> ScheduleSource:
        if self._schedule is None:
            self._schedule = PostgresSchedule(self.config.schedule_dsn or self._dsn,
                                              self.config.schedule_schema)
        return self._schedule

    def forget(self) -> None:
        """Drop cached override rules and schedule answers (they may have changed)."""
        self._overrides.clear()
        invalidate = getattr(self._schedule, "invalidate", None)
        if callable(invalidate):
            invalidate()

    def all_runs(self) -> Sequence[Run]:
        """Every run of the scheduling database, read afresh."""
        try:
            return self.schedule.all_runs()
        except (psycopg2.errors.UndefinedTable, psycopg2.errors.InvalidSchemaName) as exc:
            raise self._no_schedule(exc) from exc

    def _no_schedule(self, exc: psycopg2.Error) -> IngestError:
        return IngestError(
            f"the scheduling database has no observers/runs tables in schema "
            f"{self.config.schedule_schema!r}: load a schedule (lick-archive demo-data "
            f"loads the synthetic one) or set [schedule] dsn ({exc.pgerror or exc})")

    def close(self) -> None:
        if isinstance(self._schedule, PostgresSchedule):
            self._schedule.close()

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
            raise self._no_schedule(exc) from exc
        return decide_access(
            night=night, filename=filename, instrument_dir=instrument_dir,
            telescope=self.config.telescope_of(instrument_dir), frame_type=frame_type,
            program=program, observer=observer,
            overrides=self.overrides_for(root, directory), runs=runs, observers=observers,
            always_public=self.config.always_public,
            release_period=self.config.release_period,
        )


def rows_for(result: ReadResult, rules: AccessRules) -> tuple[Row, Row]:
    """The obscore and files rows of a successfully read file."""
    from ingest.obscore_map import files_row, obscore_row

    meta = result.meta
    disk = result.disk
    decision = rules.decide(disk.root, disk.path, meta.frame_type, meta.program, meta.observer)
    overridden = (decision.obstype_override is not None
                  and decision.obstype_override != meta.frame_type)
    if overridden:
        meta = dataclasses.replace(meta, frame_type=decision.obstype_override)
    kwargs: dict[str, Any] = {
        "authority": rules.config.authority, "base_url": rules.config.base_url,
        "release_date": decision.release_date, "data_rights": decision.data_rights,
        "owner_ids": list(decision.owner_ids),
    }
    obscore = obscore_row(meta, **kwargs)
    files = files_row(meta, **kwargs)
    # The stat taken before reading is what later runs compare with.
    files["file_size"] = disk.size
    files["file_mtime"] = disk.mtime
    files["path"] = disk.path
    files["ingested_at"] = datetime.now(UTC).replace(tzinfo=None)
    files["ingest_flags"] = flags_with(str(files["ingest_flags"]), OVERRIDE_FLAG, overridden)
    return obscore, files


# ---------------------------------------------------------------- one batch


@dataclass(frozen=True)
class BatchOutcome:
    """What happened to the files of a batch: paths written, (path, reason) rejected."""

    written: tuple[str, ...] = ()
    rejected: tuple[tuple[str, str], ...] = ()

    def __add__(self, other: BatchOutcome) -> BatchOutcome:
        return BatchOutcome(self.written + other.written, self.rejected + other.rejected)


class BatchIngester:
    """Reads, maps and writes batches on its own connection (one per pool process).

    ``generation`` comes with every batch: when the parent forgets its caches (the
    watcher does at every poll, to see schedule and override edits), it counts up
    and this ingester forgets its own before the next batch.
    """

    def __init__(self, config: IngestConfig, dsn: str, *,
                 schedule: ScheduleSource | None = None, dry_run: bool = False) -> None:
        self.config = config
        self.dsn = dsn
        self.dry_run = dry_run
        self.rules = AccessRules(config, dsn, schedule)
        self._writer = BatchWriter()
        self._conn: psycopg2.extensions.connection | None = None
        self._generation = 0

    def connection(self) -> psycopg2.extensions.connection:
        if self._conn is None or self._conn.closed:
            conn = psycopg2.connect(self.dsn, application_name=APPLICATION_NAME)
            with conn.cursor() as cur:
                # Full headers are ~15 kB of text per row: lz4 compresses them 3-4 times
                # faster than the default pglz (a session setting, not a schema change).
                cur.execute("SET default_toast_compression = 'lz4'")
                # A stuck server surfaces as an error long before the parent's patience
                # with a silent worker runs out.
                cur.execute("SET statement_timeout = '60s'")
            conn.commit()
            self._writer.forget(conn)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._writer.forget(self._conn)
            with contextlib.suppress(psycopg2.Error):
                self._conn.close()
            self._conn = None
        self.rules.close()

    def ingest(self, files: Sequence[DiskFile], *, all_new: bool,
               generation: int = 0) -> BatchOutcome:
        """Read, map and write ``files`` in one transaction.

        ``all_new`` says that none of them had a row when the parent compared disk and
        database (their rows are then COPied straight in).  Database and configuration
        errors propagate: nothing of the batch is committed then.
        """
        if generation != self._generation:
            self.rules.forget()
            self._generation = generation
        try:
            good, bad = self._read(files)
            self.write(good, bad, all_new=all_new)
        except psycopg2.Error:
            self.close()  # reconnect for the next batch: the server may have restarted
            raise
        return BatchOutcome(tuple(str(f["path"]) for _, f in good),
                            tuple((r.path, r.reason) for r in bad))

    def _read(self, files: Sequence[DiskFile]) -> tuple[list[tuple[Row, Row]], list[Rejected]]:
        good: list[tuple[Row, Row]] = []
        bad: list[Rejected] = []
        for disk in files:
            result = read_one(disk, self.config)
            if result.meta is not None:
                try:
                    good.append(rows_for(result, self.rules))
                    continue
                except (psycopg2.Error, IngestError):
                    raise  # the database or the configuration, not this file
                except Exception as exc:  # a mapping bug rejects the file, not the run
                    log.exception("cannot map %s", disk.path)
                    result = ReadResult(disk, None, "mapping_error",
                                        f"{type(exc).__name__}: {exc}")
            bad.append(Rejected(disk.path, disk.size, disk.mtime, result.reason or "unknown",
                                result.detail))
        return good, bad

    def write(self, good: Sequence[tuple[Row, Row]], bad: Sequence[Rejected], *,
              all_new: bool = False) -> None:
        """One transaction (nothing in a dry run)."""
        if self.dry_run or not (good or bad):
            return
        conn = self.connection()
        try:
            self._writer.write(conn, good, bad, all_new=all_new)
            conn.commit()
        except BaseException:
            with contextlib.suppress(psycopg2.Error):
                conn.rollback()
            raise


# ---------------------------------------------------------------- pool processes

_ingester: BatchIngester | None = None


def start_worker(config: IngestConfig, dsn: str, schedule: ScheduleSource | None,
                 dry_run: bool, owner_pid: int) -> None:
    """Pool initializer: one ingester (and connection) per process, closed at its exit.

    The process ends with ``owner_pid``, the process that started the pool, however
    that one ends (:mod:`ingest.lifetime`).
    """
    global _ingester
    end_with(owner_pid)
    # Ctrl-C reaches the whole foreground process group: the parent decides what to
    # do.  SIGTERM stays deadly: the executor uses it to clean up after a dead worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _ingester = BatchIngester(config, dsn, schedule=schedule, dry_run=dry_run)
    multiprocessing.util.Finalize(_ingester, _ingester.close, exitpriority=10)


def ingest_in_worker(files: Sequence[DiskFile], all_new: bool, generation: int) -> BatchOutcome:
    if _ingester is None:
        raise RuntimeError("ingest_in_worker runs in a pool started with start_worker")
    return _ingester.ingest(files, all_new=all_new, generation=generation)

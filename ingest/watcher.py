"""``lick-archive watch``: the daemon that keeps the database in step with the archive disk.

The archive is an NFS mount, where inotify misses changes made by other hosts, so
the watcher polls.  On start (and every ``rescan_seconds``) it compares every
instrument directory with the database by name, size and mtime; between full scans
it lists only directories that are new, whose mtime changed, that hold files still
being written, or that belong to the last ``active_nights`` nights.  A file is
complete once its size and mtime have stayed the same for ``stable_seconds``.
Complete files go through the same `Loader` as bulk ingest, straight into PostgreSQL.

A database outage is an ordinary event: the poll fails, nothing of the failed batch
is committed, the connection is dropped and the poll retried with an exponential
backoff; files are matched by path, size and mtime, so nothing is lost or written
twice.  When a directory's override file changes, its access rules are re-applied;
so are they to the nights of a run that changed in the scheduling database (an
observer added, a new release date: ``ingest.schedule_changes``), checked every
``schedule_check_seconds``.
SIGTERM (or SIGINT) ends the loop after the current batch.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg2

from auth.identity import observing_night
from ingest.config import IngestConfig, IngestError
from ingest.disk import DiskFile, instrument_dirs, night_of, scan_directory
from ingest.loader import Loader
from ingest.metrics import WatchMetrics
from ingest.recompute import OverrideState, recompute, record_override_state
from ingest.schedule import ScheduleSource
from ingest.schedule_changes import ScheduleChanges, apply_schedule_changes
from ingest.summary import IngestSummary

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1)


@dataclass
class _Pending:
    size: int
    mtime: datetime
    since: float  # monotonic time at which this size and mtime were first seen


@dataclass
class PollResult:
    """What one poll did (for logs and tests)."""

    directories_scanned: int = 0
    pending: int = 0
    summary: IngestSummary = field(default_factory=IngestSummary)
    recomputed: list[str] = field(default_factory=list)
    #: the nights re-applied after a schedule change (``ingest.schedule_changes``)
    schedule: ScheduleChanges | None = None


class Watcher:
    """Polls the roots and ingests complete files; `poll_once` is one round."""

    def __init__(self, config: IngestConfig, dsn: str, *,
                 schedule: ScheduleSource | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.loader = Loader(config, dsn, schedule=schedule)
        self._clock = clock
        self._wall = wall_clock
        self._pending: dict[tuple[Path, str], _Pending] = {}
        self._dir_mtimes: dict[tuple[Path, str], datetime | None] = {}
        self._overrides: dict[str, OverrideState] | None = None
        self._last_full_scan: float | None = None
        self._last_schedule_check: float | None = None

    def close(self) -> None:
        self.loader.close()

    # -- which directories to list

    def _today(self) -> date:
        return observing_night(datetime.fromtimestamp(self._wall(), UTC))

    def _directories(self, full: bool) -> list[tuple[Path, str]]:
        """Every instrument directory (full scan), or those of the recent months.

        Between full scans only the months holding the active nights are walked, so a
        poll costs a few directory listings however many years the archive holds;
        a directory that appears in an old month is found by the next full scan.
        """
        if full:
            return [(root, d) for root in self.config.roots
                    for d in instrument_dirs(root, self.config)]
        today = self._today()
        first = today - timedelta(days=max(self.config.active_nights, 1))
        months = sorted({f"{day:%Y-%m}" for day in (first, today, today + timedelta(days=1))})
        found: list[tuple[Path, str]] = []
        for root in self.config.roots:
            for month in months:
                if (root / month).is_dir():
                    found.extend((root, d) for d in instrument_dirs(root, self.config, month))
        return found

    def _active(self, directory: str) -> bool:
        night = night_of(directory + "/x")
        if night is None:
            return False
        return self._today() - night <= timedelta(days=max(self.config.active_nights - 1, 0))

    def _to_scan(self, now: float) -> tuple[list[tuple[Path, str]], bool]:
        full = (self._last_full_scan is None
                or now - self._last_full_scan >= self.config.rescan_seconds)
        pending_dirs = {(root, path.rsplit("/", 1)[0]) for root, path in self._pending}
        candidates = dict.fromkeys([*self._directories(full), *sorted(pending_dirs)])
        chosen = []
        for root, directory in candidates:
            try:
                st = (root / directory).stat()
                mtime: datetime | None = _EPOCH + timedelta(microseconds=st.st_mtime_ns // 1000)
            except OSError:
                continue
            key = (root, directory)
            if (full or self._dir_mtimes.get(key, _EPOCH) != mtime or key in pending_dirs
                    or self._active(directory)):
                chosen.append(key)
            self._dir_mtimes[key] = mtime
        return chosen, full

    # -- stability

    def _stable(self, disk: DiskFile, now: float) -> bool:
        key = (disk.root, disk.path)
        seen = self._pending.get(key)
        if seen is None or (seen.size, seen.mtime) != (disk.size, disk.mtime):
            self._pending[key] = _Pending(disk.size, disk.mtime, now)
            # First sight: complete only if untouched on disk for longer than the delay
            # (catch-up after a restart); a file seen changing must be watched again.
            age = self._wall() - (disk.mtime - _EPOCH).total_seconds()
            return seen is None and age >= self.config.stable_seconds
        return now - seen.since >= self.config.stable_seconds

    # -- one round

    def _load_override_states(self) -> dict[str, OverrideState]:
        conn = self.loader.connection()
        with conn.cursor() as cur:
            cur.execute("SELECT directory, name, size, mtime FROM ingest.override_files")
            states = {row[0]: OverrideState(row[1], row[2], row[3]) for row in cur.fetchall()}
        conn.rollback()
        return states

    def _record_directories(self, scanned: list[tuple[Path, str, int]]) -> None:
        conn = self.loader.connection()
        with conn.cursor() as cur:
            for root, directory, count in scanned:
                cur.execute(
                    "INSERT INTO ingest.directories (path, mtime, file_count) VALUES (%s, %s, %s)"
                    " ON CONFLICT (path) DO UPDATE SET mtime = EXCLUDED.mtime,"
                    " file_count = EXCLUDED.file_count, scanned_at = now()",
                    (directory, self._dir_mtimes.get((root, directory)), count))
        conn.commit()

    def poll_once(self, stop: Callable[[], bool] | None = None) -> PollResult:
        """Scan what needs scanning, ingest complete files, re-apply changed overrides.

        Raises the database error if PostgreSQL is unreachable; state kept in memory
        (files being watched) survives, so the next call resumes.
        """
        result = PollResult()
        now = self._clock()
        # A daemon must see schedule edits and override files of tonight: forget
        # what the previous poll cached (one query per night per poll with new files).
        self.loader.forget_caches()
        if self._overrides is None:
            self._overrides = self._load_override_states()
        chosen, full = self._to_scan(now)
        seen_files: list[DiskFile] = []
        counts: list[tuple[Path, str, int]] = []
        override_changed: list[tuple[Path, str, OverrideState]] = []
        for root, directory in chosen:
            files = scan_directory(root, directory, self.config)
            seen_files.extend(files)
            counts.append((root, directory, len(files)))
            state = OverrideState.of(root / directory)
            if state != self._overrides.get(directory, OverrideState(None, None, None)):
                override_changed.append((root, directory, state))
        result.directories_scanned = len(chosen)

        # Only files that differ from the database need watching.
        known = self.loader.known([f.path for f in seen_files])
        on_disk = {(f.root, f.path) for f in seen_files}
        scanned_dirs = {(root, d) for root, d in chosen}
        for key in list(self._pending):
            if (key[0], key[1].rsplit("/", 1)[0]) in scanned_dirs and key not in on_disk:
                del self._pending[key]  # vanished before it was complete
        complete: list[DiskFile] = []
        for disk in seen_files:
            previous = known.get(disk.path)
            if previous is not None and (previous.size, previous.mtime) == (disk.size,
                                                                            disk.mtime):
                self._pending.pop((disk.root, disk.path), None)
                continue
            if self._stable(disk, now):
                complete.append(disk)
        if complete:
            result.summary = self.loader.ingest(complete, stop=stop)
            for disk in complete:
                self._pending.pop((disk.root, disk.path), None)
        for root, directory, state in override_changed:
            conn = self.loader.connection()
            summary = recompute(conn, self.loader.local.rules, root / directory)
            # recompute records the state of directories holding rows; an override in
            # a directory without rows yet is recorded here.
            with conn.cursor() as cur:
                record_override_state(cur, directory, state)
            conn.commit()
            self._overrides[directory] = state
            result.recomputed.append(directory)
            log.info("override changed in %s: %d rows examined, %d changed",
                     directory, summary.examined, summary.changed)
        if (self._last_schedule_check is None
                or now - self._last_schedule_check >= self.config.schedule_check_seconds):
            rules = self.loader.local.rules
            result.schedule = apply_schedule_changes(
                self.loader.connection(), rules, rules.all_runs())
            self._last_schedule_check = now
        self._record_directories(
            [(r, d, n) for r, d, n in counts
             if not any(k[0] == r and k[1].startswith(d + "/") for k in self._pending)])
        if full:
            self._last_full_scan = now
        result.pending = len(self._pending)
        return result

    # -- the loop

    def run(self, stop: threading.Event, metrics: WatchMetrics | None = None) -> None:
        """Poll until ``stop`` is set; database errors back off and retry."""
        delay = 0.0
        while not stop.is_set():
            try:
                result = self.poll_once(stop.is_set)
                delay = 0.0
                if metrics is not None:
                    metrics.poll_done(result.summary, result.pending, len(result.recomputed),
                                      len(result.schedule.nights) if result.schedule else 0)
                s = result.summary
                if s.new or s.updated or s.rejected or result.recomputed or (
                        result.schedule is not None and result.schedule.nights):
                    log.info("ingested %d new, %d updated, %d rejected; %d files pending",
                             s.new, s.updated, sum(s.rejected.values()), result.pending)
                stop.wait(self.config.poll_seconds)
            except IngestError as exc:
                # A configuration problem (say, no schedule loaded): say so, keep trying
                # slowly, so that the daemon recovers once the operator fixes it.
                if metrics is not None:
                    metrics.poll_failed("configuration")
                self.loader.drop_connection()
                self._overrides = None
                delay = self.config.retry_max_seconds
                log.error("%s; retrying in %.0f s", exc, delay)
                stop.wait(delay)
            except (psycopg2.Error, OSError) as exc:
                if metrics is not None:
                    metrics.poll_failed("database_unavailable")
                self.loader.drop_connection()
                self._overrides = None
                delay = min(max(delay * 2, 0.5), self.config.retry_max_seconds)
                log.warning("database unavailable (%s); retrying in %.1f s",
                            str(exc).strip().splitlines()[0] if str(exc).strip() else exc,
                            delay)
                stop.wait(delay)


def watch(config: IngestConfig, dsn: str, *, stop: threading.Event | None = None,
          schedule: ScheduleSource | None = None) -> None:
    """``lick-archive watch``: run the watcher until SIGTERM/SIGINT (or ``stop``)."""
    stop = stop or threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        def handle(signum: int, frame: FrameType | None) -> None:
            log.info("signal %d: stopping after the current batch", signum)
            stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, handle)
    watcher = Watcher(config, dsn, schedule=schedule)
    metrics = WatchMetrics()
    metrics.serve(config.metrics_host, config.metrics_port)
    log.info("watching %s every %.0f s%s", ", ".join(map(str, config.roots)),
             config.poll_seconds, f"; metrics on {config.metrics_host}:{config.metrics_port}"
             if config.metrics_port else "")
    try:
        watcher.run(stop, metrics)
    finally:
        metrics.close()
        watcher.close()
        for number, handler in previous.items():
            signal.signal(number, handler)
        log.info("watcher stopped")


def night_today(now: datetime | None = None) -> date:
    """The current observing night (for the CLI's messages)."""
    return observing_night(now or datetime.now(UTC))

"""The job runner: a bounded thread pool executing QUEUED jobs, plus their housekeeping.

Worker threads claim QUEUED jobs (``FOR UPDATE SKIP LOCKED``, so any number of threads
and server instances share one queue) and call the injected executor, which writes its
result files into the job's directory.  A monitor thread enforces each job's execution
duration and notices ABORT and DELETE requests made by any server instance; it then
calls the cancel callbacks the executor registered (e.g. ``connection.cancel``) so that
the database query stops too.  A sweeper deletes jobs past their destruction time with
their files and fails jobs whose runner process died.

Liveness: a runner holds a session advisory lock on its random key for its lifetime.
Jobs left EXECUTING by a runner whose lock is free (its process died, so PostgreSQL
closed its session) are set to ERROR with a reason, at start-up and on every sweep.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, TypeVar

import psycopg2
import psycopg2.extensions

from vo_service.errors import TransientFault
from vo_service.logs import REQUEST_ID
from vo_service.uws.errors import ExecutionFailed
from vo_service.uws.events import PhaseEvents
from vo_service.uws.model import ErrorSummary, ErrorType, Job, JobResult, Phase
from vo_service.uws.store import LOCK_CLASS_RUNNER, JobStore

log = logging.getLogger(__name__)

STORAGE_MESSAGE = (
    "the service cannot store job results right now (its storage is full or unavailable); "
    "run the job again later"
)


class QuotaExceeded(ExecutionFailed):
    """A result outgrew the storage left to its owner (or to all jobs)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the result is larger than the {limit} bytes of storage left for your jobs; "
            "delete finished jobs, or lower MAXREC or the columns selected")


class Workspace:
    """Where an executor writes a job's results, within a byte budget.

    Results are written to temporary files and renamed into place only when complete
    (:meth:`ResultFile.commit`), so a failed job never leaves a partial result; every
    uncommitted file is removed when the job ends, however it ends.  A write beyond
    ``max_bytes`` (what is left of the owner's and the service's storage quotas)
    raises :class:`QuotaExceeded`; a write the disk refuses (full, read-only) raises
    :class:`ExecutionFailed` with a message that names no server path.
    """

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.used = 0
        self._pending: list[Path] = []

    @property
    def uploads(self) -> Path:
        return self.directory / "uploads"

    def result_file(self, filename: str) -> ResultFile:
        return ResultFile(self, filename)

    def discard_partial(self) -> None:
        for path in self._pending:
            path.unlink(missing_ok=True)
        self._pending.clear()


class ResultFile:
    """One result being written (a context manager yielding a binary writer)."""

    def __init__(self, workspace: Workspace, filename: str) -> None:
        self.workspace = workspace
        self.path = workspace.directory / filename
        self.partial = workspace.directory / f".{filename}.partial"
        self.size = 0
        self._stream: BinaryIO | None = None

    def __enter__(self) -> ResultFile:
        try:
            self._stream = self.partial.open("wb")
        except OSError as exc:
            raise _storage_failure(exc) from None
        self.workspace._pending.append(self.partial)
        return self

    def write(self, data: bytes) -> None:
        assert self._stream is not None
        self.size += len(data)
        self.workspace.used += len(data)
        if self.workspace.used > self.workspace.max_bytes:
            raise QuotaExceeded(self.workspace.max_bytes)
        try:
            self._stream.write(data)
        except OSError as exc:
            raise _storage_failure(exc) from None

    def __exit__(self, *exc_info: object) -> None:
        if self._stream is not None:
            try:
                self._stream.close()
            except OSError as exc:
                if exc_info[0] is None:
                    raise _storage_failure(exc) from None

    def commit(self) -> int:
        """Put the complete file in place (after the ``with`` block); its size."""
        try:
            os.replace(self.partial, self.path)
        except OSError as exc:
            raise _storage_failure(exc) from None
        self.workspace._pending.remove(self.partial)
        return self.size


def _storage_failure(exc: OSError) -> ExecutionFailed:
    log.error("cannot write a job result: %s", exc)
    return ExecutionFailed(STORAGE_MESSAGE, transient=True)


#: Runs one job: reads ``job.parameters``, writes result files through the workspace it
#: is given (whose directory exists and holds the job's uploads under ``uploads/``),
#: returns their descriptions.  Raise :class:`ExecutionFailed` for a client-facing
#: failure message.
Executor = Callable[[Job, Workspace], list[JobResult]]

RESTART_MESSAGE = (
    "the server restarted while the job was running; its result is lost: run the job again"
)
LOST_MESSAGE = (
    "the job's outcome could not be recorded (the database was unreachable when it"
    " ended): run the job again"
)
SHUTDOWN_MESSAGE = (
    "the server was shut down while the job was running; its result is lost: run the job again"
)

_current = threading.local()
T = TypeVar("T")


@dataclass
class _Running:
    """A job executing in this process, with what is needed to stop it."""

    job: Job
    deadline: float
    cancelled: threading.Event = field(default_factory=threading.Event)
    callbacks: list[Callable[[], None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def cancel(self) -> None:
        with self.lock:
            if self.cancelled.is_set():
                return
            self.cancelled.set()
            callbacks = list(self.callbacks)
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("cancel callback of job %s failed", self.job.job_id)


def register_cancel(callback: Callable[[], None]) -> None:
    """Called by an executor, in its own thread: run ``callback`` (from another thread)
    if the job is aborted, deleted or exceeds its execution duration.  Called at once
    when that already happened.  Outside a runner thread this does nothing."""
    running: _Running | None = getattr(_current, "running", None)
    if running is None:
        return
    with running.lock:
        if not running.cancelled.is_set():
            running.callbacks.append(callback)
            return
    callback()


def is_cancelled() -> bool:
    """True when the job the calling executor runs has been stopped (see above)."""
    running: _Running | None = getattr(_current, "running", None)
    return running is not None and running.cancelled.is_set()


def _retrying(write: Callable[[], T], attempts: int = 4) -> T:
    """Retry a job's final write while the database is briefly unreachable (restart,
    failover); the monitor fails the job later if every attempt is lost."""
    delay = 0.5
    for _ in range(attempts - 1):
        try:
            return write()
        except (psycopg2.OperationalError, TransientFault) as exc:
            log.warning("recording a job's end failed (%s); retrying in %.1f s", exc, delay)
            time.sleep(delay)
            delay *= 2
    return write()


class JobRunner:
    """Executes jobs from ``store`` with ``executor`` in ``threads`` worker threads.

    Result files live in ``jobs_dir/<job_id>/``; the directory goes when the job does.
    The runner's advisory lock is held in a session of its own (the store's role).
    ``events`` (optional) wakes idle workers as soon as a job is queued; without it
    they poll every ``poll_interval`` seconds.  ``bytes_per_owner`` and ``bytes_total``
    bound the storage of results (with the uploads); ``pending_lifetime_s`` is how long
    a job may stay PENDING before the sweeper destroys it.
    """

    def __init__(
        self,
        store: JobStore,
        executor: Executor,
        jobs_dir: Path,
        *,
        bytes_per_owner: int = 10**10,
        bytes_total: int = 10**11,
        pending_lifetime_s: int = 3600,
        threads: int = 2,
        events: PhaseEvents | None = None,
        poll_interval: float = 1.0,
        monitor_interval: float = 0.5,
        sweep_interval: float = 300.0,
        orphan_dir_age: float = 3600.0,
        lost_job_grace: float = 60.0,
        on_finished: Callable[[str], None] | None = None,
    ) -> None:
        if threads < 1:
            raise ValueError("a runner needs at least one thread")
        self.store = store
        self.executor = executor
        self.jobs_dir = jobs_dir
        self.bytes_per_owner = bytes_per_owner
        self.bytes_total = bytes_total
        self.pending_lifetime_s = pending_lifetime_s
        self.threads = threads
        self.events = events
        self.poll_interval = poll_interval
        self.monitor_interval = monitor_interval
        self.sweep_interval = sweep_interval
        self.orphan_dir_age = orphan_dir_age
        self.lost_job_grace = lost_job_grace
        #: told each executed job's final phase (ABORTED: aborted or deleted meanwhile)
        self.on_finished = on_finished
        self.runner_key = secrets.randbits(31)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: dict[str, _Running] = {}
        self._running_lock = threading.Lock()
        self._liveness: psycopg2.extensions.connection | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Take the liveness lock, fail orphaned jobs, then start the threads."""
        if self._threads:
            return
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self._stopping.clear()
        self._take_liveness_lock()
        self.recover()
        for number in range(self.threads):
            self._spawn(self._work, f"uws-worker-{number}")
        self._spawn(self._monitor, "uws-monitor")
        self._spawn(self._sweeper, "uws-sweeper")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the threads; jobs still running end in ERROR with a reason."""
        self._stopping.set()
        if self.events is not None:
            self.events.wake_all()
        with self._running_lock:
            running = list(self._running.values())
        for item in running:
            self._fail(item, SHUTDOWN_MESSAGE, ErrorType.TRANSIENT)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        if self._liveness is not None:
            self._liveness.close()
            self._liveness = None

    def _take_liveness_lock(self) -> None:
        """Hold this runner's advisory lock in a dedicated session for its lifetime."""
        conn = psycopg2.connect(self.store.dsn, application_name="lick-uws-runner")
        conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS_RUNNER, self.runner_key))
        self._liveness = conn

    def check_liveness(self) -> None:
        """Re-take the liveness lock if its session was lost (database restart), so other
        instances do not take this runner's future jobs for orphans."""
        conn = self._liveness
        if conn is not None and not conn.closed:
            try:
                with conn.cursor() as cursor:
                    cursor.execute("SELECT 1")
                return
            except psycopg2.Error:
                conn.close()
        log.warning("uws runner lost its liveness session; taking the lock again")
        self._take_liveness_lock()

    def job_dir(self, job_id: str) -> Path:
        """Where the job's uploads and result files live."""
        return self.jobs_dir / job_id

    def running_jobs(self) -> list[str]:
        """Ids of the jobs executing in this process."""
        with self._running_lock:
            return list(self._running)

    # -- housekeeping ------------------------------------------------------------------

    def recover(self) -> list[str]:
        """EXECUTING jobs of dead runners → ERROR (:data:`RESTART_MESSAGE`)."""
        failed = self.store.fail_orphans(self.runner_key, RESTART_MESSAGE)
        for job_id in failed:
            log.warning("job %s was running when its server died: set to ERROR", job_id)
        return failed

    def sweep(self) -> list[str]:
        """Delete jobs past their destruction time and their directories.

        Also removes directories without a job (left by a crash between deleting a row
        and its files) once they are older than ``orphan_dir_age`` seconds, so disk use
        stays bounded by the retention period.
        """
        deleted = self.store.delete_expired(self.pending_lifetime_s)
        for job_id in deleted:
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        if self.jobs_dir.is_dir():
            now = time.time()
            candidates = [
                path
                for path in self.jobs_dir.iterdir()
                if path.is_dir() and now - path.stat().st_mtime > self.orphan_dir_age
            ]
            if candidates:
                alive = self.store.existing([path.name for path in candidates])
                for path in candidates:
                    if path.name not in alive:
                        shutil.rmtree(path, ignore_errors=True)
        if deleted:
            log.info("destroyed %d expired jobs", len(deleted))
        return deleted

    def check_running(self) -> None:
        """Stop local jobs that exceeded their duration, were aborted or deleted; fail
        jobs still EXECUTING under this runner that no thread runs any more (their end
        could not be written, e.g. the database was restarting at that moment)."""
        with self._running_lock:
            running = list(self._running.values())
            local = set(self._running)
        grace = datetime.now(UTC) - timedelta(seconds=self.lost_job_grace)
        for job_id, started in self.store.executing_for(self.runner_key):
            if job_id not in local and started is not None and started < grace:
                log.warning("job %s is EXECUTING but runs nowhere: set to ERROR", job_id)
                self.store.try_set_phase(
                    job_id, Phase.ERROR, error=ErrorSummary(ErrorType.TRANSIENT, LOST_MESSAGE)
                )
        if not running:
            return
        now = time.monotonic()
        for item in running:
            if not item.cancelled.is_set() and now > item.deadline:
                self._fail(
                    item,
                    f"the job exceeded its execution duration of {item.job.execution_duration}"
                    " s and was stopped: set a larger EXECUTIONDURATION or a cheaper query",
                    ErrorType.FATAL,
                )
        phases = self.store.existing([item.job.job_id for item in running])
        for item in running:
            if phases.get(item.job.job_id) is not Phase.EXECUTING:
                item.cancel()

    # -- execution ---------------------------------------------------------------------

    def run_one(self) -> Job | None:
        """Claim and execute one QUEUED job in the calling thread; None if none queued.

        The threads use this; tests and the CLI may call it directly.
        """
        job = self.store.claim_next(self.runner_key)
        if job is None:
            return None
        # every line logged while the job runs names it, as a request's lines name it
        token = REQUEST_ID.set(f"job-{job.job_id}")
        try:
            finished = self._execute(job)
        finally:
            REQUEST_ID.reset(token)
        if self.on_finished is not None:
            self.on_finished(finished.phase.value if finished is not None else "ABORTED")
        return finished

    def _execute(self, job: Job) -> Job | None:
        duration = job.execution_duration if job.execution_duration > 0 else 10**9
        item = _Running(job=job, deadline=time.monotonic() + duration)
        with self._running_lock:
            self._running[job.job_id] = item
        _current.running = item
        workdir = self.job_dir(job.job_id)
        try:
            own, total = self.store.stored_bytes(job.owner_id)
            workspace = Workspace(workdir, max(0, min(self.bytes_per_owner - own,
                                                      self.bytes_total - total)))
            try:
                workdir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _storage_failure(exc) from None
            try:
                results = self.executor(job, workspace)
            finally:  # before the job's phase tells anyone it ended
                workspace.discard_partial()
        except ExecutionFailed as exc:
            error_type = ErrorType.TRANSIENT if exc.transient else ErrorType.FATAL
            return self._end_in_error(item, exc.message, error_type)
        except TransientFault as exc:
            return self._end_in_error(item, exc.message, ErrorType.TRANSIENT)
        except Exception:
            if not item.cancelled.is_set():
                log.exception("job %s failed", job.job_id)
            return self._end_in_error(
                item, "the job failed on an internal error; it has been logged",
                ErrorType.FATAL)
        finally:
            _current.running = None
            with self._running_lock:
                self._running.pop(job.job_id, None)
        finished = _retrying(lambda: self.store.complete(job.job_id, results))
        if finished is None:
            for result in results:
                if result.filename:
                    (workdir / result.filename).unlink(missing_ok=True)
        return finished

    def _end_in_error(self, item: _Running, message: str, error_type: ErrorType) -> Job | None:
        return _retrying(
            lambda: self.store.try_set_phase(
                item.job.job_id, Phase.ERROR, error=ErrorSummary(error_type, message)
            )
        )

    def _fail(self, item: _Running, message: str, error_type: ErrorType) -> None:
        """End a running job in ERROR (if it is still EXECUTING) and stop its work."""
        try:
            self.store.try_set_phase(
                item.job.job_id, Phase.ERROR, error=ErrorSummary(error_type, message)
            )
        finally:
            item.cancel()

    # -- threads -----------------------------------------------------------------------

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _work(self) -> None:
        while not self._stopping.is_set():
            seen = self.events.queued_count if self.events is not None else 0
            try:
                job = self.run_one()
            except (psycopg2.Error, TransientFault) as exc:
                log.warning("uws worker cannot reach the database: %s", exc)
                self._stopping.wait(self.poll_interval)
                continue
            if job is None and not self._stopping.is_set():
                if self.events is not None:
                    self.events.wait_for_queued(seen, self.poll_interval)
                else:
                    self._stopping.wait(self.poll_interval)

    def _monitor(self) -> None:
        rounds = 0
        while not self._stopping.wait(self.monitor_interval):
            rounds += 1
            try:
                if rounds % 10 == 0:
                    self.check_liveness()
                self.check_running()
            except (psycopg2.Error, TransientFault) as exc:
                log.warning("uws monitor cannot reach the database: %s", exc)

    def _sweeper(self) -> None:
        while not self._stopping.wait(self.sweep_interval):
            try:
                self.sweep()
                self.recover()
            except (psycopg2.Error, TransientFault, OSError) as exc:
                log.warning("uws sweep failed: %s", exc)

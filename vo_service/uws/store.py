"""PostgreSQL storage of UWS jobs (schema ``uws``, migration ``0004_uws``).

Each public method owns one transaction and returns plain :mod:`vo_service.uws.model`
objects.  Every phase change reads the row ``FOR UPDATE`` and checks the transition table
before writing, so two requests (or a request and a runner) racing on one job serialize
and the loser sees the winner's phase.  Counting a creator's unfinished jobs and inserting
the new one happen under a transaction-scoped advisory lock per owner, so caps hold under
concurrent creation.  Values are always bound parameters; rows become named objects
(:class:`psycopg2.extras.NamedTupleCursor`) and then model objects, never positional
tuples.  Connections come from a :class:`~vo_service.database.pool.Pool`, which turns a
lost database into a TransientFault (503).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

import psycopg2.extensions
import psycopg2.extras

from vo_service.database.pool import Pool
from vo_service.params import Params
from vo_service.uws.errors import (
    InvalidPhaseChange,
    JobLimitReached,
    JobNotFound,
    JobNotPending,
)
from vo_service.uws.model import (
    UNFINISHED_PHASES,
    ErrorSummary,
    ErrorType,
    Job,
    JobRef,
    JobResult,
    Phase,
    can_transition,
    check_transition,
)

log = logging.getLogger(__name__)

#: First key of the two-integer advisory locks used here ("UWS1"); the second key is an
#: owner hash (job caps) or a runner key (liveness of a runner process).
LOCK_CLASS_CAPS = 0x55575331
LOCK_CLASS_RUNNER = 0x55575332

_JOB_COLUMNS = (
    "job_id, run_id, owner_id, phase, creation_time, start_time, end_time, quote, "
    "execution_duration, destruction, error_type, error_message"
)


class _Cursor(Protocol):
    """A cursor whose rows are named tuples (``row.job_id``), as the store uses it."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, query: str, vars: Any = ...) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


@dataclass(frozen=True)
class JobCaps:
    """Limits checked when a job is created.

    Numbers of unfinished jobs (PENDING, QUEUED, EXECUTING, HELD, SUSPENDED): per
    authenticated owner, for all anonymous users together and per anonymous client
    address; bytes of stored results and uploads: per owner (anonymous users share
    one account) and for all jobs.
    """

    per_owner: int
    anonymous: int
    per_address: int
    bytes_per_owner: int
    bytes_total: int


def _owner_lock_key(owner_id: str | None) -> int:
    """A stable int4 for the owner's advisory lock (anonymous users share one)."""
    text = "\x00anonymous" if owner_id is None else owner_id
    return zlib.crc32(text.encode()) - 2**31


class JobStore:
    """Jobs in PostgreSQL through a :class:`Pool` of owner-role connections."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    @property
    def dsn(self) -> str:
        return self.pool.dsn

    @contextmanager
    def _transaction(self) -> Iterator[_Cursor]:
        """One transaction on a pooled connection, rows as named tuples."""
        with self.pool.connection() as conn, conn, \
                conn.cursor(cursor_factory=psycopg2.extras.NamedTupleCursor) as raw:
            cursor = cast(_Cursor, raw)
            cursor.execute("SET LOCAL TIME ZONE 'UTC'")
            yield cursor

    # -- reading -----------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        """The job with its parameters and results; :class:`JobNotFound` if absent."""
        with self._transaction() as cursor:
            return self._load(cursor, job_id, lock=False)

    def find(self, job_id: str) -> Job | None:
        """The job, or None when it does not exist."""
        try:
            return self.get(job_id)
        except JobNotFound:
            return None

    def list_jobs(
        self,
        owner_id: str,
        *,
        phases: Sequence[Phase] | None = None,
        after: datetime | None = None,
        last: int | None = None,
    ) -> list[JobRef]:
        """The owner's jobs, newest first (UWS 1.1 sect. 2.2.3.1 filters).

        Without ``phases`` ARCHIVED jobs are left out, as UWS 1.1 asks.  ``after`` keeps
        jobs created strictly after that instant; ``last`` keeps the ``last`` most recently
        created of what remains.  The three filters combine (logical AND).
        """
        sql = [
            "SELECT job_id, phase, run_id, owner_id, creation_time FROM uws.jobs "
            "WHERE owner_id = %(owner)s"
        ]
        args: dict[str, Any] = {"owner": owner_id}
        if phases:
            sql.append("AND phase = ANY(%(phases)s)")
            args["phases"] = [str(p) for p in phases]
        else:
            sql.append("AND phase <> 'ARCHIVED'")
        if after is not None:
            sql.append("AND creation_time > %(after)s")
            args["after"] = after
        sql.append("ORDER BY creation_time DESC, job_id")
        if last is not None:
            sql.append("LIMIT %(last)s")
            args["last"] = last
        with self._transaction() as cursor:
            cursor.execute(" ".join(sql), args)
            return [
                JobRef(job_id=row.job_id, phase=Phase(row.phase), run_id=row.run_id,
                       owner_id=row.owner_id, creation_time=row.creation_time)
                for row in cursor.fetchall()
            ]

    def count_unfinished(self, owner_id: str | None) -> int:
        """How many unfinished jobs the owner (or all anonymous users) has."""
        with self._transaction() as cursor:
            return self._count_unfinished(cursor, owner_id)

    def stored_bytes(self, owner_id: str | None) -> tuple[int, int]:
        """Bytes of results and uploads kept for ``owner_id`` (anonymous: all anonymous
        jobs) and for every job."""
        with self._transaction() as cursor:
            return self._stored_bytes(cursor, owner_id)

    # -- writing -----------------------------------------------------------------------

    def create(self, job: Job, caps: JobCaps | None = None, *,
               creator_address: str | None = None, upload_bytes: int = 0) -> Job:
        """Insert ``job`` (phase PENDING or QUEUED); refuse it when a cap is reached.

        The creation time is the database clock truncated to milliseconds, the precision
        the job documents show, so an AFTER filter given a shown creationTime behaves.
        """
        if job.phase not in (Phase.PENDING, Phase.QUEUED):
            raise ValueError(f"a new job must be PENDING or QUEUED, not {job.phase}")
        with self._transaction() as cursor:
            if caps is not None:
                self._check_caps(cursor, job.owner_id, creator_address, upload_bytes, caps)
            cursor.execute(
                "INSERT INTO uws.jobs (job_id, run_id, owner_id, phase, creation_time, "
                "quote, execution_duration, destruction, creator_address, upload_bytes) "
                "VALUES (%s, %s, %s, %s, date_trunc('milliseconds', now()), %s, %s, %s, "
                "%s, %s)",
                (job.job_id, job.run_id, job.owner_id, str(job.phase), job.quote,
                 job.execution_duration, job.destruction, creator_address, upload_bytes),
            )
            self._insert_parameters(cursor, job.job_id, 0, job.parameters)
            return self._load(cursor, job.job_id, lock=False)

    def _check_caps(self, cursor: _Cursor, owner_id: str | None,
                    address: str | None, upload_bytes: int, caps: JobCaps) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                       (LOCK_CLASS_CAPS, _owner_lock_key(owner_id)))
        limit = caps.anonymous if owner_id is None else caps.per_owner
        count = self._count_unfinished(cursor, owner_id)
        if count >= limit:
            who = "anonymous users together" if owner_id is None else "you"
            raise JobLimitReached(
                f"{who} already have {count} unfinished jobs (the limit is {limit});"
                " wait for some to finish or delete them, then retry")
        if owner_id is None and address is not None:
            cursor.execute(
                "SELECT count(*) AS n FROM uws.jobs WHERE owner_id IS NULL "
                "AND creator_address = %s AND phase = ANY(%s)",
                (address, [str(p) for p in UNFINISHED_PHASES]))
            row = cursor.fetchone()
            if row is not None and row.n >= caps.per_address:
                raise JobLimitReached(
                    f"your address already has {row.n} unfinished anonymous jobs (the "
                    f"limit is {caps.per_address}); wait for them or log in")
        own, total = self._stored_bytes(cursor, owner_id)
        if own + upload_bytes > caps.bytes_per_owner or \
                total + upload_bytes > caps.bytes_total:
            raise JobLimitReached(
                "the storage for job results and uploads is full (yours: "
                f"{own} of {caps.bytes_per_owner} bytes); delete finished jobs and retry")

    def add_parameters(self, job_id: str, parameters: Params) -> Job:
        """Set parameters of a PENDING job (DALI: only PENDING jobs accept them); the
        names sent replace the values the job had (UWS 1.1 sect. 2.2.3.4)."""
        with self._transaction() as cursor:
            job = self._load(cursor, job_id, lock=True)
            if job.phase is not Phase.PENDING:
                raise JobNotPending(
                    f"job {job_id} is {job.phase}: parameters can only be added to a"
                    " PENDING job; create a new job instead"
                )
            cursor.execute("DELETE FROM uws.parameters WHERE job_id = %s", (job_id,))
            self._insert_parameters(cursor, job_id, 0, job.parameters.replaced_by(parameters))
            return self._load(cursor, job_id, lock=False)

    def add_upload_bytes(self, job_id: str, size: int) -> None:
        """Count uploads added to a PENDING job against its owner's storage."""
        with self._transaction() as cursor:
            cursor.execute("UPDATE uws.jobs SET upload_bytes = upload_bytes + %s "
                           "WHERE job_id = %s", (size, job_id))

    def update_limits(
        self,
        job_id: str,
        *,
        execution_duration: int | None = None,
        destruction: datetime | None = None,
        quote: datetime | None = None,
    ) -> Job:
        """Change execution duration (only before it executes), destruction time, quote."""
        with self._transaction() as cursor:
            job = self._load(cursor, job_id, lock=True)
            if execution_duration is not None and job.phase not in (
                Phase.PENDING,
                Phase.QUEUED,
                Phase.HELD,
            ):
                raise JobNotPending(
                    f"job {job_id} is {job.phase}: its execution duration can only change"
                    " before it starts"
                )
            cursor.execute(
                "UPDATE uws.jobs SET "
                "execution_duration = coalesce(%s, execution_duration), "
                "destruction = coalesce(%s, destruction), quote = coalesce(%s, quote) "
                "WHERE job_id = %s",
                (execution_duration, destruction, quote, job_id),
            )
            return self._load(cursor, job_id, lock=False)

    def set_phase(
        self,
        job_id: str,
        phase: Phase,
        *,
        expected: Sequence[Phase] | None = None,
        error: ErrorSummary | None = None,
        idempotent: bool = False,
    ) -> Job:
        """Move a job to ``phase`` under a row lock, checking the transition table.

        ``expected`` optionally restricts the phases the change may start from (the
        caller's precondition).  With ``idempotent`` a job already in ``phase`` is
        returned unchanged instead of refused.  Entering EXECUTING sets the start time
        and quote; entering COMPLETED, ERROR or ABORTED sets the end time.
        """
        with self._transaction() as cursor:
            job = self._load(cursor, job_id, lock=True)
            if idempotent and job.phase is phase:
                return job
            if expected is not None and job.phase not in expected:
                allowed = ", ".join(str(p) for p in expected)
                raise InvalidPhaseChange(
                    f"job {job_id} is {job.phase}; it can only change to {phase} from {allowed}"
                )
            check_transition(job.phase, phase)
            self._write_phase(cursor, job_id, phase, error)
            return self._load(cursor, job_id, lock=False)

    def try_set_phase(
        self, job_id: str, phase: Phase, *, error: ErrorSummary | None = None
    ) -> Job | None:
        """Like :meth:`set_phase` but None (nothing written) when the job is gone or the
        transition is not allowed from its current phase: the runner uses this, racing
        with client requests that may already have aborted or deleted the job."""
        with self._transaction() as cursor:
            try:
                job = self._load(cursor, job_id, lock=True)
            except JobNotFound:
                return None
            if not can_transition(job.phase, phase):
                return None
            self._write_phase(cursor, job_id, phase, error)
            return self._load(cursor, job_id, lock=False)

    def complete(self, job_id: str, results: Sequence[JobResult]) -> Job | None:
        """EXECUTING → COMPLETED with ``results``; None when the job left EXECUTING
        meanwhile (aborted, timed out, deleted): its results are then discarded."""
        with self._transaction() as cursor:
            try:
                job = self._load(cursor, job_id, lock=True)
            except JobNotFound:
                return None
            if job.phase is not Phase.EXECUTING:
                return None
            cursor.execute("DELETE FROM uws.results WHERE job_id = %s", (job_id,))
            for position, result in enumerate(results):
                cursor.execute(
                    "INSERT INTO uws.results (job_id, position, result_id, mime_type, "
                    "filename, size, href) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (
                        job_id,
                        position,
                        result.result_id,
                        result.mime_type,
                        result.filename,
                        result.size,
                        result.href,
                    ),
                )
            self._write_phase(cursor, job_id, Phase.COMPLETED, None)
            return self._load(cursor, job_id, lock=False)

    def delete(self, job_id: str) -> bool:
        """Delete the job row (parameters and results cascade); False if it was absent."""
        with self._transaction() as cursor:
            cursor.execute("DELETE FROM uws.jobs WHERE job_id = %s", (job_id,))
            return bool(cursor.rowcount)

    def delete_expired(self, pending_lifetime_s: int) -> list[str]:
        """Delete every job whose destruction time has passed, and every job left
        PENDING (never run) for longer than ``pending_lifetime_s``; return their ids."""
        with self._transaction() as cursor:
            cursor.execute(
                "DELETE FROM uws.jobs WHERE destruction <= now() OR (phase = 'PENDING' "
                "AND creation_time < now() - make_interval(secs => %s)) RETURNING job_id",
                (pending_lifetime_s,))
            return [row.job_id for row in cursor.fetchall()]

    def existing(self, job_ids: Sequence[str]) -> dict[str, Phase]:
        """Phases of those of ``job_ids`` that still exist."""
        with self._transaction() as cursor:
            cursor.execute(
                "SELECT job_id, phase FROM uws.jobs WHERE job_id = ANY(%s)", (list(job_ids),)
            )
            return {row.job_id: Phase(row.phase) for row in cursor.fetchall()}

    # -- runner support ----------------------------------------------------------------

    def claim_next(self, runner_key: int) -> Job | None:
        """Take the oldest QUEUED job for this runner: QUEUED → EXECUTING.

        ``SKIP LOCKED`` lets several runner threads (and server instances) claim jobs
        concurrently without waiting for each other or taking the same job twice.
        """
        with self._transaction() as cursor:
            cursor.execute(
                "SELECT job_id FROM uws.jobs WHERE phase = 'QUEUED' "
                "ORDER BY creation_time, job_id LIMIT 1 FOR UPDATE SKIP LOCKED"
            )
            row = cursor.fetchone()
            if row is None:
                return None
            job_id = row.job_id
            cursor.execute(
                "UPDATE uws.jobs SET runner_key = %s WHERE job_id = %s", (runner_key, job_id)
            )
            self._write_phase(cursor, job_id, Phase.EXECUTING, None)
            return self._load(cursor, job_id, lock=False)

    def executing_for(self, runner_key: int) -> list[tuple[str, datetime]]:
        """(job id, start time) of the jobs EXECUTING under ``runner_key``."""
        with self._transaction() as cursor:
            cursor.execute(
                "SELECT job_id, start_time FROM uws.jobs "
                "WHERE phase = 'EXECUTING' AND runner_key = %s",
                (runner_key,),
            )
            return [(row.job_id, row.start_time) for row in cursor.fetchall()]

    def fail_orphans(self, own_runner_key: int, message: str) -> list[str]:
        """EXECUTING jobs whose runner is dead → ERROR with ``message``.

        A live runner holds a session advisory lock on its key for as long as its process
        (and so its connection) lives; when we can take that lock, the runner is gone.
        This is exact across server instances, unlike a heartbeat guess.
        """
        failed: list[str] = []
        with self._transaction() as cursor:
            cursor.execute(
                "SELECT DISTINCT runner_key FROM uws.jobs WHERE phase = 'EXECUTING' "
                "AND runner_key IS DISTINCT FROM %s",
                (own_runner_key,),
            )
            keys = [row.runner_key for row in cursor.fetchall()]
            for key in keys:
                if key is not None:
                    cursor.execute(
                        "SELECT pg_try_advisory_xact_lock(%s, %s)", (LOCK_CLASS_RUNNER, key)
                    )
                    row = cursor.fetchone()
                    if not (row and row.pg_try_advisory_xact_lock):
                        continue
                cursor.execute(
                    "SELECT job_id FROM uws.jobs WHERE phase = 'EXECUTING' "
                    "AND runner_key IS NOT DISTINCT FROM %s FOR UPDATE",
                    (key,),
                )
                for row in cursor.fetchall():
                    self._write_phase(cursor, row.job_id, Phase.ERROR,
                                      ErrorSummary(ErrorType.TRANSIENT, message))
                    failed.append(row.job_id)
        return failed

    # -- helpers -----------------------------------------------------------------------

    @staticmethod
    def _count_unfinished(cursor: _Cursor, owner_id: str | None) -> int:
        cursor.execute(
            "SELECT count(*) AS n FROM uws.jobs WHERE owner_id IS NOT DISTINCT FROM %s "
            "AND phase = ANY(%s)",
            (owner_id, [str(p) for p in UNFINISHED_PHASES]),
        )
        row = cursor.fetchone()
        return int(row.n) if row else 0

    @staticmethod
    def _stored_bytes(cursor: _Cursor, owner_id: str | None
                      ) -> tuple[int, int]:
        cursor.execute(
            "SELECT coalesce(sum(j.upload_bytes + coalesce(r.size, 0)) FILTER "
            "  (WHERE j.owner_id IS NOT DISTINCT FROM %s), 0) AS own, "
            "  coalesce(sum(j.upload_bytes + coalesce(r.size, 0)), 0) AS total "
            "FROM uws.jobs AS j LEFT JOIN (SELECT job_id, sum(size) AS size FROM uws.results "
            "  GROUP BY job_id) AS r USING (job_id)",
            (owner_id,))
        row = cursor.fetchone()
        return (int(row.own), int(row.total)) if row else (0, 0)

    @staticmethod
    def _insert_parameters(
        cursor: _Cursor, job_id: str, start: int, parameters: Params
    ) -> None:
        for offset, (name, value) in enumerate(parameters):
            cursor.execute(
                "INSERT INTO uws.parameters (job_id, position, name, value) "
                "VALUES (%s, %s, %s, %s)",
                (job_id, start + offset, name, value),
            )

    @staticmethod
    def _write_phase(
        cursor: _Cursor,
        job_id: str,
        phase: Phase,
        error: ErrorSummary | None,
    ) -> None:
        """Write a checked phase change with its side effects on times and error."""
        cursor.execute(
            "UPDATE uws.jobs SET phase = %(phase)s, "
            "start_time = CASE WHEN %(phase)s = 'EXECUTING' AND start_time IS NULL "
            "  THEN date_trunc('milliseconds', clock_timestamp()) ELSE start_time END, "
            "quote = CASE WHEN %(phase)s = 'EXECUTING' "
            "  THEN date_trunc('milliseconds', clock_timestamp()) "
            "       + make_interval(secs => execution_duration) ELSE quote END, "
            "end_time = CASE WHEN %(phase)s IN ('COMPLETED', 'ERROR', 'ABORTED') "
            "  THEN date_trunc('milliseconds', clock_timestamp()) ELSE end_time END, "
            "error_type = coalesce(%(etype)s, error_type), "
            "error_message = coalesce(%(emsg)s, error_message) "
            "WHERE job_id = %(job_id)s",
            {
                "phase": str(phase),
                "etype": str(error.type) if error else None,
                "emsg": error.message if error else None,
                "job_id": job_id,
            },
        )

    @staticmethod
    def _load(cursor: _Cursor, job_id: str, *, lock: bool) -> Job:
        cursor.execute(
            f"SELECT {_JOB_COLUMNS} FROM uws.jobs WHERE job_id = %s"
            + (" FOR UPDATE" if lock else ""),
            (job_id,),
        )
        row = cursor.fetchone()
        if row is None:
            raise JobNotFound(f"no job {job_id!r}: it never existed, was deleted or expired")
        cursor.execute(
            "SELECT name, value FROM uws.parameters WHERE job_id = %s ORDER BY position",
            (job_id,),
        )
        parameters = Params((p.name, p.value) for p in cursor.fetchall())
        cursor.execute(
            "SELECT result_id, mime_type, filename, size, href FROM uws.results "
            "WHERE job_id = %s ORDER BY position",
            (job_id,),
        )
        results = tuple(
            JobResult(result_id=r.result_id, mime_type=r.mime_type, filename=r.filename,
                      size=r.size, href=r.href)
            for r in cursor.fetchall()
        )
        error = (ErrorSummary(ErrorType(row.error_type), row.error_message)
                 if row.error_type is not None else None)
        return Job(
            job_id=row.job_id,
            run_id=row.run_id,
            owner_id=row.owner_id,
            phase=Phase(row.phase),
            creation_time=row.creation_time,
            start_time=row.start_time,
            end_time=row.end_time,
            quote=row.quote,
            execution_duration=row.execution_duration,
            destruction=row.destruction,
            error=error,
            parameters=parameters,
            results=results,
        )

"""UWS 1.1 operations, as the HTTP layer calls them (framework-free).

Every operation takes the requesting owner id (None for anonymous).  A job of another
owner answers exactly like a missing job (:class:`JobNotFound`), so ids reveal nothing.
Anonymous jobs are reachable by anyone holding their unguessable id, and the job list of
an anonymous requester is always empty: without an identity there is no list to show,
and listing all anonymous jobs would hand out everyone's ids.
Control parameters arrive as client strings and are validated here with messages that
say what to send instead; limits are clamped to the configured hard values.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vo_service.errors import TransientFault
from vo_service.params import Params
from vo_service.settings import UwsSettings
from vo_service.uws.errors import (
    InvalidParameter,
    InvalidPhaseChange,
    JobNotFound,
    ResourceNotFound,
)
from vo_service.uws.events import PhaseEvents
from vo_service.uws.model import (
    FINAL_PHASES,
    WAITABLE_PHASES,
    ErrorSummary,
    Job,
    JobRef,
    JobResult,
    Phase,
    new_job_id,
)
from vo_service.uws.store import JobCaps, JobStore

log = logging.getLogger("lick_archive.uws")

#: UWS control parameters: they set job properties and are not stored as job parameters.
CONTROL_PARAMETERS = frozenset({"PHASE", "RUNID", "EXECUTIONDURATION", "DESTRUCTION", "ACTION"})
_UPLOAD_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
#: What :func:`new_job_id` makes (URL-safe base64); anything else names no job.
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class ListFilters:
    """Job list filters of UWS 1.1 sect. 2.2.3.1, already validated."""

    phases: tuple[Phase, ...] = ()
    after: datetime | None = None
    last: int | None = None


def parse_datetime(value: str, name: str) -> datetime:
    """An ISO 8601 instant; a value without zone is UTC (as DALI timestamps are)."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidParameter(
            f"{name}={value[:40]!r} is not an ISO 8601 time; send e.g. 2026-01-31T12:00:00Z"
        ) from None


def parse_list_filters(params: Params) -> ListFilters:
    """PHASE (repeatable), AFTER and LAST from a job-list request."""
    phases: list[Phase] = []
    for value in params.get_all("PHASE"):
        try:
            phases.append(Phase(value.strip().upper()))
        except ValueError:
            known = ", ".join(p.value for p in Phase)
            raise InvalidParameter(
                f"PHASE={value!r} is not a UWS phase; use one of {known}"
            ) from None
    after_text = params.get("AFTER")
    after = parse_datetime(after_text, "AFTER") if after_text else None
    last: int | None = None
    last_text = params.get("LAST")
    if last_text:
        try:
            last = int(last_text)
        except ValueError:
            last = 0
        if not 0 < last < 2**31:
            raise InvalidParameter(f"LAST={last_text[:40]!r} must be a positive integer "
                                   "below 2147483648")
    return ListFilters(phases=tuple(dict.fromkeys(phases)), after=after, last=last)


@dataclass(frozen=True)
class WaitRequest:
    """A UWS 1.1 blocking request (sect. 2.2.3.4.2): at most ``seconds``, and only while
    the job is in ``phase`` when given."""

    seconds: float
    phase: Phase | None = None


def parse_wait(params: Params, max_wait_s: float) -> WaitRequest | None:
    """WAIT (seconds; negative: the server's maximum) and PHASE; None: do not block."""
    text = params.get("WAIT")
    if text is None or not text.strip():
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds):
        raise InvalidParameter(f"WAIT={text[:40]!r} is not a number of seconds (-1: the "
                               f"maximum, {max_wait_s:.0f} s)")
    if seconds == 0:
        return None
    phase: Phase | None = None
    phase_text = params.get("PHASE")
    if phase_text:
        try:
            phase = Phase(phase_text.strip().upper())
        except ValueError:
            raise InvalidParameter(f"PHASE={phase_text[:40]!r} is not a UWS phase") from None
    limit = float(max_wait_s)
    return WaitRequest(limit if seconds < 0 else min(seconds, limit), phase)


async def wait_for_change(job: Job, request: WaitRequest, events: PhaseEvents,
                          read: Callable[[], Awaitable[Job]]) -> Job:
    """Block (on the event loop, holding no thread or connection) while ``job`` stays in
    its phase, at most ``request.seconds``; ``read`` re-reads the job.

    Blocking only happens while the job is PENDING, QUEUED or EXECUTING and, when the
    request names a phase, still in that one.  Notifications wake the wait at once;
    re-reading every few seconds covers any notification lost while the listener
    reconnected.
    """
    if job.phase not in WAITABLE_PHASES or (request.phase is not None
                                            and job.phase is not request.phase):
        return job
    start_phase = job.phase
    deadline = time.monotonic() + request.seconds
    while (remaining := deadline - time.monotonic()) > 0:
        await events.job_changed(job.job_id, min(remaining, 5.0))
        job = await read()
        if job.phase is not start_phase:
            break
    return job


class UwsService:
    """The job operations on top of a :class:`JobStore`.

    Blocking (PostgreSQL and the job directory): call it from a worker thread.
    """

    def __init__(self, store: JobStore, limits: UwsSettings, jobs_dir: Path) -> None:
        self.store = store
        self.limits = limits
        self.jobs_dir = jobs_dir

    # -- creation and parameters -------------------------------------------------------

    def create(self, owner_id: str | None, params: Params, *,
               address: str | None = None) -> Job:
        """A new job from the POST to the job list; PHASE=RUN queues it at once.

        RUNID, EXECUTIONDURATION and DESTRUCTION set the job's properties; the other
        parameters are stored as given (case-insensitive names, repeated values kept).
        ``params.files`` are multipart parts (name → content), kept under ``uploads/``
        for ``UPLOAD=table,param:name``; they are written before the job row exists,
        so a failed write leaves no job behind (and the sweeper removes the files of
        a job whose row was never written).  ``address`` is the client's, for the cap
        on unfinished anonymous jobs per address.
        """
        phase_value = params.get("PHASE")
        run = self._parse_phase_request(phase_value) if phase_value else None
        if run is Phase.ABORTED:
            raise InvalidParameter("PHASE=ABORT makes no sense for a new job; omit it")
        duration = self._parse_duration(params.get("EXECUTIONDURATION"))
        now = datetime.now(UTC)
        destruction = now + timedelta(days=self.limits.default_destruction_days)
        destruction_value = params.get("DESTRUCTION")
        if destruction_value:
            destruction = self._clamp_destruction(
                parse_datetime(destruction_value, "DESTRUCTION"), now
            )
        job = Job(
            job_id=new_job_id(),
            owner_id=owner_id,
            phase=Phase.PENDING,
            creation_time=now,
            execution_duration=duration,
            destruction=destruction,
            run_id=params.get("RUNID"),
            quote=now + timedelta(seconds=duration),
            parameters=Params(params.without(CONTROL_PARAMETERS).items()),
        )
        limits = self.limits
        caps = JobCaps(
            per_owner=limits.max_active_jobs_per_owner,
            anonymous=limits.max_active_anonymous_jobs,
            per_address=limits.max_active_jobs_per_address,
            bytes_per_owner=limits.max_result_bytes_per_owner,
            bytes_total=limits.max_result_bytes_total,
        )
        upload_bytes = self._save_files(job.job_id, params.files)
        try:
            job = self.store.create(job, caps, creator_address=address if owner_id is None
                                    else None, upload_bytes=upload_bytes)
        except BaseException:
            shutil.rmtree(self.job_dir(job.job_id), ignore_errors=True)
            raise
        if run is Phase.QUEUED:
            job = self.store.set_phase(job.job_id, Phase.QUEUED)
        return job

    def add_parameters(self, owner_id: str | None, job_id: str, params: Params) -> Job:
        """POST to ``{job}/parameters``: set parameters while the job is PENDING."""
        self._owned(owner_id, job_id)
        job = self.store.add_parameters(job_id, params.without(CONTROL_PARAMETERS))
        if params.files:
            self.store.add_upload_bytes(job_id, self._save_files(job_id, params.files))
        return job

    # -- reading -----------------------------------------------------------------------

    def get(self, owner_id: str | None, job_id: str) -> Job:
        """The job, if the requester may see it (see :func:`wait_for_change` for WAIT)."""
        return self._owned(owner_id, job_id)

    def list(self, owner_id: str | None, filters: ListFilters) -> list[JobRef]:
        """The requester's jobs, newest first; always empty for anonymous requesters."""
        if owner_id is None:
            return []
        return self.store.list_jobs(
            owner_id, phases=filters.phases or None, after=filters.after, last=filters.last
        )

    def error(self, owner_id: str | None, job_id: str) -> ErrorSummary:
        """The error of a job in ERROR; :class:`ResourceNotFound` otherwise (DALI)."""
        job = self._owned(owner_id, job_id)
        if job.phase is not Phase.ERROR or job.error is None:
            raise ResourceNotFound(f"job {job_id} is {job.phase}: it has no error")
        return job.error

    def result(
        self, owner_id: str | None, job_id: str, result_id: str
    ) -> tuple[JobResult, Path | None]:
        """A result and its file (None when the result lives at ``href`` instead)."""
        job = self._owned(owner_id, job_id)
        found = job.result(result_id)
        if found is None:
            raise ResourceNotFound(f"job {job_id} has no result {result_id!r} (phase {job.phase})")
        if found.filename is None:
            if found.href is None:
                raise ResourceNotFound(f"result {result_id!r} of job {job_id} has no content")
            return found, None
        path = self.job_dir(job_id) / found.filename
        if not path.is_file():
            raise ResourceNotFound(f"the file of result {result_id!r} of job {job_id} is gone")
        return found, path

    # -- control -----------------------------------------------------------------------

    def set_phase(self, owner_id: str | None, job_id: str, value: str | None) -> Job:
        """POST PHASE=RUN (queue; a no-op when already queued or executing) or ABORT."""
        if not value:
            raise InvalidParameter("PHASE is missing: send PHASE=RUN or PHASE=ABORT")
        target = self._parse_phase_request(value)
        return (
            self.run(owner_id, job_id) if target is Phase.QUEUED else self.abort(owner_id, job_id)
        )

    def run(self, owner_id: str | None, job_id: str) -> Job:
        """PENDING or HELD → QUEUED; repeated RUN on a queued or running job is harmless."""
        job = self._owned(owner_id, job_id)
        if job.phase in (Phase.QUEUED, Phase.EXECUTING):
            return job
        if job.phase in FINAL_PHASES:
            raise InvalidPhaseChange(
                f"job {job_id} is {job.phase} and cannot run again; create a new job"
            )
        return self.store.set_phase(
            job_id, Phase.QUEUED, expected=(Phase.PENDING, Phase.HELD), idempotent=True
        )

    def abort(self, owner_id: str | None, job_id: str) -> Job:
        """Abort a job that has not finished; aborting an ABORTED job is harmless."""
        self._owned(owner_id, job_id)
        return self.store.set_phase(job_id, Phase.ABORTED, idempotent=True)

    def set_execution_duration(self, owner_id: str | None, job_id: str, value: str | None) -> Job:
        """EXECUTIONDURATION in seconds, clamped to the hard limit (0: the hard limit)."""
        self._owned(owner_id, job_id)
        if not value:
            raise InvalidParameter("EXECUTIONDURATION is missing: send a number of seconds")
        duration = self._parse_duration(value)
        return self.store.update_limits(
            job_id,
            execution_duration=duration,
            quote=datetime.now(UTC) + timedelta(seconds=duration),
        )

    def set_destruction(self, owner_id: str | None, job_id: str, value: str | None) -> Job:
        """DESTRUCTION as an ISO 8601 time, clamped to creation + the retention limit."""
        job = self._owned(owner_id, job_id)
        if not value:
            raise InvalidParameter("DESTRUCTION is missing: send an ISO 8601 time")
        requested = parse_datetime(value, "DESTRUCTION")
        return self.store.update_limits(
            job_id, destruction=self._clamp_destruction(requested, job.creation_time)
        )

    def delete(self, owner_id: str | None, job_id: str) -> None:
        """Delete the job and its files; a runner executing it notices and stops it."""
        self._owned(owner_id, job_id)
        if not self.store.delete(job_id):
            raise JobNotFound(f"no job {job_id!r}: it was deleted meanwhile")
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    # -- helpers -----------------------------------------------------------------------

    def job_dir(self, job_id: str) -> Path:
        """Directory of the job's uploads and results (shared with the runner)."""
        return self.jobs_dir / job_id

    def _owned(self, owner_id: str | None, job_id: str) -> Job:
        if not _JOB_ID.match(job_id):
            raise JobNotFound(f"no job {job_id[:64]!r}: job ids are letters, digits, - and _")
        job = self.store.get(job_id)
        if job.owner_id is not None and job.owner_id != owner_id:
            raise JobNotFound(f"no job {job_id!r}: it never existed, was deleted or expired")
        return job

    def _save_files(self, job_id: str, files: Mapping[str, bytes]) -> int:
        """Write the uploads under the job's directory; their total size.

        A failed write (disk full, read-only) removes what it wrote and is a
        TransientFault whose message names no server path.
        """
        for name in files:
            if not _UPLOAD_NAME.match(name):
                raise InvalidParameter(
                    f"upload part name {name[:40]!r} is not allowed: use letters, digits, "
                    "_ . -")
        if not files:
            return 0
        uploads = self.job_dir(job_id) / "uploads"
        try:
            uploads.mkdir(parents=True, exist_ok=True)
            for name, content in files.items():
                (uploads / name).write_bytes(content)
        except OSError as exc:
            shutil.rmtree(uploads, ignore_errors=True)
            log.error("cannot store the uploads of job %s: %s", job_id, exc)
            raise TransientFault("the service cannot store uploads right now (its storage "
                                 "is full or unavailable); try again later",
                                 retry_after=60) from None
        return sum(len(content) for content in files.values())

    @staticmethod
    def _parse_phase_request(value: str) -> Phase:
        word = value.strip().upper()
        if word == "RUN":
            return Phase.QUEUED
        if word == "ABORT":
            return Phase.ABORTED
        raise InvalidParameter(f"PHASE={value!r} is not understood: send PHASE=RUN or ABORT")

    def _parse_duration(self, value: str | None) -> int:
        hard = self.limits.hard_execution_duration_s
        if value is None or not value.strip():
            return min(self.limits.default_execution_duration_s, hard)
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise InvalidParameter(
                f"EXECUTIONDURATION={value[:40]!r} is not a number of seconds")
        if number < 0:
            raise InvalidParameter(f"EXECUTIONDURATION={value[:40]!r} must not be negative")
        seconds = int(min(number, hard))
        return hard if seconds == 0 else seconds

    def _clamp_destruction(self, requested: datetime, creation: datetime) -> datetime:
        latest = creation + timedelta(days=self.limits.hard_destruction_days)
        return min(requested, latest)

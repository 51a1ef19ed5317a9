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

import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
    Parameters,
    Phase,
    new_job_id,
)
from vo_service.uws.store import JobCaps, JobStore

#: UWS control parameters: they set job properties and are not stored as job parameters.
CONTROL_PARAMETERS = frozenset({"PHASE", "RUNID", "EXECUTIONDURATION", "DESTRUCTION", "ACTION"})
_UPLOAD_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")


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
    except ValueError:
        raise InvalidParameter(
            f"{name}={value!r} is not an ISO 8601 time; send e.g. 2026-01-31T12:00:00Z"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_list_filters(params: Parameters) -> ListFilters:
    """PHASE (repeatable), AFTER and LAST from a job-list request."""
    phases: list[Phase] = []
    for value in params.getall("PHASE"):
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
        if last <= 0:
            raise InvalidParameter(f"LAST={last_text!r} must be a positive integer")
    return ListFilters(phases=tuple(dict.fromkeys(phases)), after=after, last=last)


class UwsService:
    """The job operations on top of a :class:`JobStore`.

    ``events`` lets WAIT return as soon as a phase changes; without it WAIT polls.
    """

    def __init__(
        self, store: JobStore, limits: UwsSettings, jobs_dir: Path,
        events: PhaseEvents | None = None
    ) -> None:
        self.store = store
        self.limits = limits
        self.jobs_dir = jobs_dir
        self.events = events

    # -- creation and parameters -------------------------------------------------------

    def create(
        self,
        owner_id: str | None,
        params: Parameters,
        files: Mapping[str, bytes] | None = None,
    ) -> Job:
        """A new job from the POST to the job list; PHASE=RUN queues it at once.

        RUNID, EXECUTIONDURATION and DESTRUCTION set the job's properties; the other
        parameters are stored as given (case-insensitive names, repeated values kept).
        ``files`` are multipart parts (name → content), kept under ``uploads/`` for
        ``UPLOAD=table,param:name``.
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
        stored = Parameters(
            (name, value) for name, value in params if name not in CONTROL_PARAMETERS
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
            parameters=stored,
        )
        caps = JobCaps(
            per_owner=self.limits.max_active_jobs_per_owner,
            anonymous=self.limits.max_active_anonymous_jobs,
        )
        job = self.store.create(job, caps)
        if files:
            try:
                self._save_files(job.job_id, files)
            except InvalidParameter:
                self.store.delete(job.job_id)
                shutil.rmtree(self.job_dir(job.job_id), ignore_errors=True)
                raise
        if run is Phase.QUEUED:
            job = self.store.set_phase(job.job_id, Phase.QUEUED)
        return job

    def add_parameters(
        self,
        owner_id: str | None,
        job_id: str,
        params: Parameters,
        files: Mapping[str, bytes] | None = None,
    ) -> Job:
        """POST to ``{job}/parameters``: append parameters while the job is PENDING."""
        self._owned(owner_id, job_id)
        stored = Parameters((n, v) for n, v in params if n not in CONTROL_PARAMETERS)
        job = self.store.add_parameters(job_id, stored)
        if files:
            self._save_files(job_id, files)
        return job

    # -- reading -----------------------------------------------------------------------

    def get(
        self,
        owner_id: str | None,
        job_id: str,
        *,
        wait: float | None = None,
        wait_phase: Phase | None = None,
    ) -> Job:
        """The job; with ``wait`` (UWS 1.1 WAIT) block while it stays in its phase.

        Blocking only happens while the job is PENDING, QUEUED or EXECUTING and, when
        ``wait_phase`` is given, still in that phase; it lasts at most ``wait`` seconds
        (negative: the server maximum), capped at ``max_wait_s``.
        """
        job = self._owned(owner_id, job_id)
        if wait is None or wait == 0 or job.phase not in WAITABLE_PHASES:
            return job
        if wait_phase is not None and job.phase is not wait_phase:
            return job
        limit = float(self.limits.max_wait_s)
        timeout = limit if wait < 0 else min(float(wait), limit)
        start_phase = job.phase
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return job
            if self.events is not None:
                self.events.wait_for_job(job_id, min(remaining, 2.0))
            else:
                time.sleep(min(remaining, 0.2))
            job = self._owned(owner_id, job_id)
            if job.phase is not start_phase:
                return job

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
        job = self.store.get(job_id)
        if job.owner_id is not None and job.owner_id != owner_id:
            raise JobNotFound(f"no job {job_id!r}: it never existed, was deleted or expired")
        return job

    def _save_files(self, job_id: str, files: Mapping[str, bytes]) -> None:
        uploads = self.job_dir(job_id) / "uploads"
        for name in files:
            if not _UPLOAD_NAME.match(name):
                raise InvalidParameter(
                    f"upload part name {name!r} is not allowed: use letters, digits, _ . -"
                )
        uploads.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (uploads / name).write_bytes(content)

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
            seconds = int(float(value))
        except ValueError:
            raise InvalidParameter(
                f"EXECUTIONDURATION={value!r} is not a number of seconds"
            ) from None
        if seconds < 0:
            raise InvalidParameter(f"EXECUTIONDURATION={value!r} must not be negative")
        return hard if seconds == 0 else min(seconds, hard)

    def _clamp_destruction(self, requested: datetime, creation: datetime) -> datetime:
        latest = creation + timedelta(days=self.limits.hard_destruction_days)
        return min(requested, latest)

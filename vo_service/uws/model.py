"""The UWS 1.1 job model: phases, the table of allowed phase changes, and plain job objects.

Everything here is pure data: the store turns rows into these objects at its boundary,
the service and serializer only ever see them.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from vo_service.params import Params
from vo_service.uws.errors import InvalidPhaseChange


class Phase(enum.StrEnum):
    """UWS 1.1 execution phases (the ``uws:ExecutionPhase`` enumeration)."""

    PENDING = "PENDING"
    QUEUED = "QUEUED"
    EXECUTING = "EXECUTING"
    COMPLETED = "COMPLETED"
    ERROR = "ERROR"
    ABORTED = "ABORTED"
    UNKNOWN = "UNKNOWN"
    HELD = "HELD"
    SUSPENDED = "SUSPENDED"
    ARCHIVED = "ARCHIVED"


#: Phases in which a job still waits for, or uses, the runner.  They count against the
#: per-owner caps, and a UWS 1.1 WAIT only blocks in PENDING, QUEUED and EXECUTING.
UNFINISHED_PHASES: frozenset[Phase] = frozenset(
    {Phase.PENDING, Phase.QUEUED, Phase.EXECUTING, Phase.HELD, Phase.SUSPENDED}
)
WAITABLE_PHASES: frozenset[Phase] = frozenset({Phase.PENDING, Phase.QUEUED, Phase.EXECUTING})
FINAL_PHASES: frozenset[Phase] = frozenset(
    {Phase.COMPLETED, Phase.ERROR, Phase.ABORTED, Phase.ARCHIVED}
)

#: The only phase changes the store performs.  A change not listed here is a bug or a
#: client asking for something impossible (RUN on a COMPLETED job) and is refused.
TRANSITIONS: Mapping[Phase, frozenset[Phase]] = {
    Phase.PENDING: frozenset(
        {Phase.QUEUED, Phase.HELD, Phase.ABORTED, Phase.ERROR, Phase.ARCHIVED}
    ),
    Phase.HELD: frozenset({Phase.QUEUED, Phase.ABORTED, Phase.ERROR, Phase.ARCHIVED}),
    Phase.QUEUED: frozenset({Phase.EXECUTING, Phase.HELD, Phase.ABORTED, Phase.ERROR}),
    Phase.EXECUTING: frozenset({Phase.COMPLETED, Phase.ERROR, Phase.ABORTED, Phase.SUSPENDED}),
    Phase.SUSPENDED: frozenset({Phase.EXECUTING, Phase.ABORTED, Phase.ERROR}),
    Phase.UNKNOWN: frozenset({Phase.ERROR, Phase.ABORTED, Phase.ARCHIVED}),
    Phase.COMPLETED: frozenset({Phase.ARCHIVED}),
    Phase.ERROR: frozenset({Phase.ARCHIVED}),
    Phase.ABORTED: frozenset({Phase.ARCHIVED}),
    Phase.ARCHIVED: frozenset(),
}


def can_transition(old: Phase, new: Phase) -> bool:
    """True when ``old → new`` is in :data:`TRANSITIONS`."""
    return new in TRANSITIONS[old]


def check_transition(old: Phase, new: Phase) -> None:
    """Raise :class:`InvalidPhaseChange` unless ``old → new`` is allowed."""
    if not can_transition(old, new):
        raise InvalidPhaseChange(f"a job in phase {old} cannot change to {new}")


def new_job_id() -> str:
    """An unguessable job id: anonymous jobs are reachable by nothing but their id."""
    return secrets.token_urlsafe(18)


class ErrorType(enum.StrEnum):
    """UWS ``errorSummary/@type``."""

    TRANSIENT = "transient"
    FATAL = "fatal"


@dataclass(frozen=True)
class ErrorSummary:
    """Why a job ended in ERROR; ``message`` is shown to the client as is."""

    type: ErrorType
    message: str


@dataclass(frozen=True)
class JobResult:
    """One result of a job.

    ``filename`` is relative to the job directory when the service serves the file itself;
    ``href`` is set instead for a result that lives elsewhere (then no file is served).
    """

    result_id: str
    mime_type: str
    filename: str | None = None
    size: int | None = None
    href: str | None = None


@dataclass(frozen=True)
class Job:
    """A UWS job as stored.  ``owner_id`` None means created anonymously.

    Times are timezone-aware UTC.  ``execution_duration`` is in seconds (never 0 here:
    the service always applies a finite limit).
    """

    job_id: str
    owner_id: str | None
    phase: Phase
    creation_time: datetime
    execution_duration: int
    destruction: datetime
    run_id: str | None = None
    quote: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    parameters: Params = field(default_factory=Params)
    results: tuple[JobResult, ...] = ()
    error: ErrorSummary | None = None

    def result(self, result_id: str) -> JobResult | None:
        """The result called ``result_id``, if any."""
        for item in self.results:
            if item.result_id == result_id:
                return item
        return None


@dataclass(frozen=True)
class JobRef:
    """The short description in a job list (``uws:jobref``)."""

    job_id: str
    phase: Phase
    run_id: str | None
    owner_id: str | None
    creation_time: datetime

"""Errors raised by the UWS job layer, each carrying its DALI fault and HTTP status.

:class:`UwsError` is a branch of the application's one error tree
(:class:`vo_service.errors.ServiceError`), so the application's handler renders these
like any other error.  Messages are written for the client: they say what was wrong and
what to do instead.
"""

from __future__ import annotations

from vo_service.errors import ServiceError


class UwsError(ServiceError):
    """Base of every job-layer error; ``fault`` is the DALI fault name."""

    fault = "UsageFault"
    status = 400


class JobNotFound(UwsError):
    """Unknown job, or a job of another owner: both answer 404 so ids reveal nothing."""

    fault = "NotFoundFault"
    status = 404


class ResourceNotFound(UwsError):
    """A job child that does not exist (no error yet, unknown result id)."""

    fault = "NotFoundFault"
    status = 404


class InvalidPhaseChange(UwsError):
    """The requested phase change is not in the transition table (e.g. RUN on COMPLETED)."""

    status = 400


class InvalidParameter(UwsError):
    """A UWS control parameter (PHASE, EXECUTIONDURATION, DESTRUCTION, LAST...) is malformed."""

    status = 400


class JobNotPending(UwsError):
    """Parameters and limits can only change before the job runs (DALI 2.1)."""

    status = 400


class JobLimitReached(UwsError):
    """The owner (or all anonymous users together) already has the maximum of unfinished jobs."""

    fault = "TransientFault"
    status = 429


class ExecutionFailed(Exception):
    """Raised by an executor to end its job in ERROR with a client-facing message.

    ``transient`` selects the UWS error type: a transient error may succeed when the job
    is run again (database unavailable), a fatal one will not (bad ADQL).
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient

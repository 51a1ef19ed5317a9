"""The async TAP executor: runs a job's query and writes its result file.

The UWS runner calls :func:`make_executor`'s function in a worker thread for each
QUEUED job.  The query runs exactly like a sync one (same translation, same
row-level security bound to the job's owner) but with the async limits, and its
result is written to the job directory; ABORT cancels it inside PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from auth.principals import ANONYMOUS, Principal
from vo_service.context import AppContext
from vo_service.errors import ServiceError
from vo_service.params import Params
from vo_service.serialize.results import ResultInfo
from vo_service.services.tap import parse_tap_request, start_query
from vo_service.uws.errors import ExecutionFailed
from vo_service.uws.model import Job, JobResult
from vo_service.uws.runner import register_cancel

Executor = Callable[[Job, Path], list[JobResult]]


def _owner(job: Job) -> Principal:
    """Row visibility is decided in the database from the verified user id alone."""
    if job.owner_id is None:
        return ANONYMOUS
    return Principal(user_id=int(job.owner_id), login="", display_name="")


def _params(job: Job, workdir: Path) -> Params:
    uploads = workdir / "uploads"
    files = {p.name: p.read_bytes() for p in uploads.iterdir()} if uploads.is_dir() else {}
    return Params.from_pairs(job.parameters.items(), files)


def make_executor(ctx: AppContext) -> Executor:
    def execute(job: Job, workdir: Path) -> list[JobResult]:
        try:
            request = parse_tap_request(_params(job, workdir), ctx)
            execution = start_query(ctx, _owner(job), request, asynchronous=True)
        except ServiceError as exc:
            raise ExecutionFailed(exc.message, transient=exc.status >= 500) from exc
        register_cancel(execution.cancel)
        info = ResultInfo(query=request.query)
        filename = f"result.{request.format.extension or 'dat'}"
        try:
            with (workdir / filename).open("wb") as out:
                for chunk in execution.stream(request.format, request.maxrec, info):
                    out.write(chunk)
        finally:
            execution.close()
        if info.error is not None:
            raise ExecutionFailed(info.error)
        size = (workdir / filename).stat().st_size
        return [JobResult("result", request.format.mime_type, filename=filename, size=size)]

    return execute

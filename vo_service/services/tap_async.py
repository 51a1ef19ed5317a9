"""The async TAP executor: runs a job's query and writes its result file.

The UWS runner calls :func:`make_executor`'s function in a worker thread for each
QUEUED job.  The query runs exactly like a sync one (same translation, same
row-level security bound to the job's owner) but on the async pool with the async
limits, and its result is written through the job's workspace (bounded by the
owner's storage quota, never left half-written); ABORT cancels it inside PostgreSQL.
"""

from __future__ import annotations

from auth.principals import ANONYMOUS, Principal
from vo_service.errors import ServiceError
from vo_service.params import Params
from vo_service.services.tap import CancelHandle, TapService, fetch_uploads
from vo_service.uws.errors import ExecutionFailed
from vo_service.uws.model import Job, JobResult
from vo_service.uws.runner import Executor, Workspace, register_cancel


def _owner(job: Job) -> Principal:
    """Row visibility is decided in the database from the verified user id alone."""
    if job.owner_id is None:
        return ANONYMOUS
    return Principal(user_id=int(job.owner_id), login="", display_name="")


def _params(job: Job, workspace: Workspace) -> Params:
    uploads = workspace.uploads
    files = {p.name: p.read_bytes() for p in uploads.iterdir()} if uploads.is_dir() else {}
    return Params(job.parameters.items(), files)


def make_executor(tap: TapService) -> Executor:
    def execute(job: Job, workspace: Workspace) -> list[JobResult]:
        handle = CancelHandle()
        register_cancel(handle.cancel)
        try:
            request = fetch_uploads(tap.parse(_params(job, workspace)), tap.tap)
            execution = tap.start(_owner(job), request, handle)
        except ServiceError as exc:
            raise ExecutionFailed(exc.message, transient=exc.status >= 500) from exc
        result = workspace.result_file(f"result.{request.format.extension or 'dat'}")
        try:
            with result:
                info = tap.result_info(execution, request)
                for chunk in execution.stream(request.format, request.maxrec, info):
                    result.write(chunk)
        except ServiceError as exc:
            raise ExecutionFailed(exc.message, transient=exc.status >= 500) from exc
        finally:
            execution.close()
        if info.error is not None:
            raise ExecutionFailed(info.error)
        size = result.commit()
        return [JobResult("result", request.format.mime_type, filename=result.path.name,
                          size=size)]

    return execute

"""HTTP routes of a UWS 1.1 job list (``/async`` and its children): thin handlers only.

Each handler reads the DALI parameters (case-insensitive names, GET, urlencoded or
multipart alike), calls :class:`~vo_service.uws.service.UwsService` in a worker thread
(it blocks on PostgreSQL) and serializes.  UWS 1.1 shapes: POSTs that change a job
answer 303 See Other to the job (or to the list after a deletion); phase, quote, owner,
executionduration and destruction are text/plain; ``/error`` is a DALI error document
with status 200.  Service errors propagate as :class:`~vo_service.uws.errors.UwsError`;
register :func:`uws_error_response` (or the application's own handler) for them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from vo_service.errors import ServiceError
from vo_service.routes.common import read_form
from vo_service.serialize import uws as xml
from vo_service.uws.errors import InvalidParameter
from vo_service.uws.model import Parameters, Phase
from vo_service.uws.service import UwsService, parse_list_filters

ServiceFactory = Callable[[Request], UwsService]
PRINCIPAL_SCOPE_KEY = "lick.principal"
VOTABLE_MEDIA_TYPE = "application/x-votable+xml"


@dataclass(frozen=True)
class RequestParams:
    """DALI parameters of one request: names case-insensitive, values in order; file
    parts of a multipart body separately (name → content)."""

    params: Parameters
    files: dict[str, bytes] = field(default_factory=dict)


async def read_params(request: Request, max_upload_bytes: int | None = None) -> RequestParams:
    """DALI parameters in their order (UWS parameter lists keep it), files apart."""
    items, files = await read_form(request, max_upload_bytes)
    return RequestParams(Parameters(items), files)


def owner_of(request: Request) -> str | None:
    """The requesting user's id from the authentication layer, None when anonymous."""
    principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
    user_id = getattr(principal, "user_id", None)
    return None if user_id is None else str(user_id)


async def uws_error_response(request: Request, exc: Exception) -> Response:
    """A plain-text DALI error for a :class:`ServiceError` with its HTTP status."""
    if not isinstance(exc, ServiceError):
        raise exc
    return PlainTextResponse(f"{exc.fault}: {exc.message}\n", status_code=exc.status)


def _text(value: str) -> PlainTextResponse:
    return PlainTextResponse(value, media_type="text/plain; charset=utf-8")


def _see_other(url: Any) -> RedirectResponse:
    return RedirectResponse(str(url), status_code=303)


def uws_routes(
    service_factory: ServiceFactory,
    *,
    path: str = "/async",
    max_upload_bytes: int | None = 20_000_000,
) -> list[Route]:
    """Routes for the job list at ``path`` and every UWS child resource.

    ``max_upload_bytes`` bounds the multipart files of one request (TAP UPLOAD).

    Route names (for ``url_for``): ``uws_jobs``, ``uws_job``, ``uws_job_phase``... The
    service comes from ``service_factory(request)`` (e.g. from ``app.state``).
    """

    def job_url(request: Request, job_id: str) -> str:
        return str(request.url_for("uws_job", job_id=job_id))

    async def jobs(request: Request) -> Response:
        service = service_factory(request)
        owner = owner_of(request)
        received = await read_params(request, max_upload_bytes)
        if request.method == "POST":
            job = await run_in_threadpool(service.create, owner, received.params, received.files)
            return _see_other(job_url(request, job.job_id))
        filters = parse_list_filters(received.params)
        refs = await run_in_threadpool(service.list, owner, filters)
        list_url = str(request.url_for("uws_jobs"))
        return Response(xml.job_list_document(refs, list_url), media_type=xml.MEDIA_TYPE)

    async def job(request: Request) -> Response:
        service = service_factory(request)
        owner = owner_of(request)
        job_id = request.path_params["job_id"]
        received = await read_params(request, max_upload_bytes)
        if request.method == "DELETE" or request.method == "POST":
            action = received.params.get("ACTION")
            if request.method == "POST" and (action or "").strip().upper() != "DELETE":
                raise InvalidParameter(
                    "a POST to a job only accepts ACTION=DELETE; post parameters to"
                    " the job's /parameters and PHASE to its /phase"
                )
            await run_in_threadpool(service.delete, owner, job_id)
            return _see_other(request.url_for("uws_jobs"))
        wait_text = received.params.get("WAIT")
        wait: float | None = None
        wait_phase: Phase | None = None
        if wait_text:
            try:
                wait = float(wait_text)
            except ValueError:
                raise InvalidParameter(
                    f"WAIT={wait_text!r} is not a number of seconds (-1: the maximum)"
                ) from None
            phase_text = received.params.get("PHASE")
            if phase_text:
                try:
                    wait_phase = Phase(phase_text.strip().upper())
                except ValueError:
                    raise InvalidParameter(f"PHASE={phase_text!r} is not a UWS phase") from None
        found = await run_in_threadpool(
            lambda: service.get(owner, job_id, wait=wait, wait_phase=wait_phase)
        )
        body = xml.job_document(found, job_url(request, job_id))
        return Response(body, media_type=xml.MEDIA_TYPE)

    def text_child(
        render: Callable[[UwsService, str | None, str], str],
        update: Callable[[UwsService, str | None, str, str | None], object] | None = None,
        parameter: str = "",
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            service = service_factory(request)
            owner = owner_of(request)
            job_id = request.path_params["job_id"]
            if request.method == "POST" and update is not None:
                received = await read_params(request, max_upload_bytes)
                value = received.params.get(parameter)
                await run_in_threadpool(update, service, owner, job_id, value)
                return _see_other(job_url(request, job_id))
            return _text(await run_in_threadpool(render, service, owner, job_id))

        return handler

    def phase_text(service: UwsService, owner: str | None, job_id: str) -> str:
        return str(service.get(owner, job_id).phase)

    def quote_text(service: UwsService, owner: str | None, job_id: str) -> str:
        quote = service.get(owner, job_id).quote
        return "" if quote is None else xml.format_datetime(quote)

    def duration_text(service: UwsService, owner: str | None, job_id: str) -> str:
        return str(service.get(owner, job_id).execution_duration)

    def destruction_text(service: UwsService, owner: str | None, job_id: str) -> str:
        return xml.format_datetime(service.get(owner, job_id).destruction)

    def owner_text(service: UwsService, owner: str | None, job_id: str) -> str:
        return service.get(owner, job_id).owner_id or ""

    async def error(request: Request) -> Response:
        service = service_factory(request)
        summary = await run_in_threadpool(
            service.error, owner_of(request), request.path_params["job_id"]
        )
        return Response(xml.error_document(summary), media_type=VOTABLE_MEDIA_TYPE)

    async def parameters(request: Request) -> Response:
        service = service_factory(request)
        owner = owner_of(request)
        job_id = request.path_params["job_id"]
        if request.method == "POST":
            received = await read_params(request, max_upload_bytes)
            await run_in_threadpool(
                service.add_parameters, owner, job_id, received.params, received.files
            )
            return _see_other(job_url(request, job_id))
        found = await run_in_threadpool(service.get, owner, job_id)
        return Response(xml.parameters_document(found), media_type=xml.MEDIA_TYPE)

    async def results(request: Request) -> Response:
        service = service_factory(request)
        job_id = request.path_params["job_id"]
        found = await run_in_threadpool(service.get, owner_of(request), job_id)
        body = xml.results_document(found, job_url(request, job_id))
        return Response(body, media_type=xml.MEDIA_TYPE)

    async def result(request: Request) -> Response:
        service = service_factory(request)
        job_id = request.path_params["job_id"]
        result_id = request.path_params["result_id"]
        item, path_on_disk = await run_in_threadpool(
            service.result, owner_of(request), job_id, result_id
        )
        if path_on_disk is None:
            return _see_other(item.href)
        return FileResponse(path_on_disk, media_type=item.mime_type)

    base = path.rstrip("/")
    child = base + "/{job_id}"
    get_post = ["GET", "POST"]
    return [
        Route(base, jobs, methods=get_post, name="uws_jobs"),
        Route(child, job, methods=["GET", "POST", "DELETE"], name="uws_job"),
        Route(
            child + "/phase",
            text_child(phase_text, UwsService.set_phase, "PHASE"),
            methods=get_post,
            name="uws_job_phase",
        ),
        Route(
            child + "/executionduration",
            text_child(duration_text, UwsService.set_execution_duration, "EXECUTIONDURATION"),
            methods=get_post,
            name="uws_job_executionduration",
        ),
        Route(
            child + "/destruction",
            text_child(destruction_text, UwsService.set_destruction, "DESTRUCTION"),
            methods=get_post,
            name="uws_job_destruction",
        ),
        Route(child + "/quote", text_child(quote_text), methods=["GET"], name="uws_job_quote"),
        Route(child + "/owner", text_child(owner_text), methods=["GET"], name="uws_job_owner"),
        Route(child + "/error", error, methods=["GET"], name="uws_job_error"),
        Route(child + "/parameters", parameters, methods=get_post, name="uws_job_parameters"),
        Route(child + "/results", results, methods=["GET"], name="uws_job_results"),
        Route(child + "/results/{result_id}", result, methods=["GET"], name="uws_job_result"),
    ]

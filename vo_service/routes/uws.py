"""HTTP routes of a UWS 1.1 job list (``/async`` and its children): thin handlers only.

Each handler reads the DALI parameters (case-insensitive names, GET, urlencoded or
multipart alike), calls :class:`~vo_service.uws.service.UwsService` in a worker thread
of the UWS pool (it blocks on PostgreSQL) and serializes.  A blocking request (WAIT)
waits on the event loop between reads of the job, holding neither a thread nor a
connection.  UWS 1.1 shapes: POSTs that change a job answer 303 See Other to the job
(or to the list after a deletion); phase, quote, owner, executionduration and
destruction are text/plain; ``/error`` is a DALI error document with status 200.
Results are private to whoever may read the job (``Cache-Control: private``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from vo_service.routes.common import client_address, principal_of, read_form, services
from vo_service.uws import documents as xml
from vo_service.uws.errors import InvalidParameter
from vo_service.uws.model import Job
from vo_service.uws.service import UwsService, parse_list_filters, parse_wait, wait_for_change

VOTABLE_MEDIA_TYPE = "application/x-votable+xml"


def owner_of(request: Request) -> str | None:
    """The requesting user's id from the authentication layer, None when anonymous."""
    user_id = principal_of(request).user_id
    return None if user_id is None else str(user_id)


def _text(value: str) -> PlainTextResponse:
    return PlainTextResponse(value, media_type="text/plain; charset=utf-8")


def _see_other(url: Any) -> RedirectResponse:
    return RedirectResponse(str(url), status_code=303)


async def _run(request: Request, work: Callable[[UwsService], Any]) -> Any:
    """``work`` with the UWS service, in a worker thread of the UWS pool."""
    found = services(request)
    return await found.pools.uws.run(lambda: work(found.uws))


def uws_routes(*, path: str = "/async", max_upload_bytes: int | None = 20_000_000
               ) -> list[Route]:
    """Routes for the job list at ``path`` and every UWS child resource.

    ``max_upload_bytes`` bounds the multipart files of one request (TAP UPLOAD).
    URLs in documents and redirects are built from the configured public base URL
    (``[service] base_url``), never from the request's Host: behind a reverse proxy
    they must be the proxy's.
    """
    base = path.rstrip("/")

    def list_url(request: Request) -> str:
        return services(request).base_url + base

    def job_url(request: Request, job_id: str) -> str:
        return f"{list_url(request)}/{job_id}"

    async def jobs(request: Request) -> Response:
        owner = owner_of(request)
        params = await read_form(request, max_upload_bytes)
        if request.method == "POST":
            address = client_address(request.scope)
            job = await _run(request, lambda s: s.create(owner, params, address=address))
            return _see_other(job_url(request, job.job_id))
        filters = parse_list_filters(params)
        refs = await _run(request, lambda s: s.list(owner, filters))
        return Response(xml.job_list_document(refs, list_url(request)),
                        media_type=xml.MEDIA_TYPE)

    async def job(request: Request) -> Response:
        owner = owner_of(request)
        job_id = request.path_params["job_id"]
        params = await read_form(request, max_upload_bytes)
        if request.method == "DELETE" or request.method == "POST":
            action = params.get("ACTION")
            if request.method == "POST" and (action or "").strip().upper() != "DELETE":
                raise InvalidParameter(
                    "a POST to a job only accepts ACTION=DELETE; post parameters to"
                    " the job's /parameters and PHASE to its /phase"
                )
            await _run(request, lambda s: s.delete(owner, job_id))
            return _see_other(list_url(request))
        found = services(request)
        wait = parse_wait(params, found.settings.uws.max_wait_s)

        async def read() -> Job:
            job: Job = await _run(request, lambda s: s.get(owner, job_id))
            return job

        current = await read()
        if wait is not None:
            current = await wait_for_change(current, wait, found.events, read)
        body = xml.job_document(current, job_url(request, job_id))
        return Response(body, media_type=xml.MEDIA_TYPE)

    def text_child(
        render: Callable[[Job], str],
        update: Callable[[UwsService, str | None, str, str | None], object] | None = None,
        parameter: str = "",
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            owner = owner_of(request)
            job_id = request.path_params["job_id"]
            if request.method == "POST" and update is not None:
                params = await read_form(request, max_upload_bytes)
                value = params.get(parameter)
                await _run(request, lambda s: update(s, owner, job_id, value))
                return _see_other(job_url(request, job_id))
            return _text(render(await _run(request, lambda s: s.get(owner, job_id))))

        return handler

    def quote_text(job: Job) -> str:
        return "" if job.quote is None else xml.format_datetime(job.quote)

    async def error(request: Request) -> Response:
        owner, job_id = owner_of(request), request.path_params["job_id"]
        summary = await _run(request, lambda s: s.error(owner, job_id))
        return Response(xml.error_document(summary), media_type=VOTABLE_MEDIA_TYPE)

    async def parameters(request: Request) -> Response:
        owner = owner_of(request)
        job_id = request.path_params["job_id"]
        if request.method == "POST":
            params = await read_form(request, max_upload_bytes)
            await _run(request, lambda s: s.add_parameters(owner, job_id, params))
            return _see_other(job_url(request, job_id))
        found = await _run(request, lambda s: s.get(owner, job_id))
        return Response(xml.parameters_document(found), media_type=xml.MEDIA_TYPE)

    async def results(request: Request) -> Response:
        owner, job_id = owner_of(request), request.path_params["job_id"]
        found = await _run(request, lambda s: s.get(owner, job_id))
        body = xml.results_document(found, job_url(request, job_id))
        return Response(body, media_type=xml.MEDIA_TYPE)

    async def result(request: Request) -> Response:
        owner, job_id = owner_of(request), request.path_params["job_id"]
        result_id = request.path_params["result_id"]
        item, path_on_disk = await _run(request, lambda s: s.result(owner, job_id, result_id))
        if path_on_disk is None:
            return _see_other(item.href)
        return FileResponse(path_on_disk, media_type=item.mime_type,
                            headers={"Cache-Control": "private"})

    child = base + "/{job_id}"
    get_post = ["GET", "POST"]
    return [
        Route(base, jobs, methods=get_post, name="uws_jobs"),
        Route(child, job, methods=["GET", "POST", "DELETE"], name="uws_job"),
        Route(child + "/phase",
              text_child(lambda job: str(job.phase), UwsService.set_phase, "PHASE"),
              methods=get_post, name="uws_job_phase"),
        Route(child + "/executionduration",
              text_child(lambda job: str(job.execution_duration),
                         UwsService.set_execution_duration, "EXECUTIONDURATION"),
              methods=get_post, name="uws_job_executionduration"),
        Route(child + "/destruction",
              text_child(lambda job: xml.format_datetime(job.destruction),
                         UwsService.set_destruction, "DESTRUCTION"),
              methods=get_post, name="uws_job_destruction"),
        Route(child + "/quote", text_child(quote_text), methods=["GET"], name="uws_job_quote"),
        Route(child + "/owner", text_child(lambda job: job.owner_id or ""), methods=["GET"],
              name="uws_job_owner"),
        Route(child + "/error", error, methods=["GET"], name="uws_job_error"),
        Route(child + "/parameters", parameters, methods=get_post, name="uws_job_parameters"),
        Route(child + "/results", results, methods=["GET"], name="uws_job_results"),
        Route(child + "/results/{result_id}", result, methods=["GET"], name="uws_job_result"),
    ]

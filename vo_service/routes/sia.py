"""SIA 2.0 endpoints: ``/sia/query`` (GET and POST) and its VOSI resources.

A query is answered exactly as a TAP sync query (:func:`routes.tap.query_response`:
one admission slot of the query pool for the whole result, start and first chunk in
one worker-thread call, cancel on disconnect, streaming).  ``MAXREC=0`` runs no
query: one call on the query pool reads the parameter values the requester may see
and writes the columns and the self-description.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vo_service.routes.common import principal_of, read_form, services
from vo_service.routes.responses import CHALLENGE
from vo_service.routes.tap import query_response
from vo_service.routes.vosi import XML, availability


async def query(request: Request) -> Response:
    found = services(request)
    params = await read_form(request, None)  # SIA has no uploads: file parts are ignored
    sia = found.sia
    sia_request = sia.parse(params)
    principal = principal_of(request)
    media_type = sia_request.format.mime_type
    if sia_request.maxrec == 0:
        document = await found.tap.pool.run(lambda: sia.describe(principal, sia_request))
        return Response(document, media_type=media_type)
    return await query_response(
        request, found,
        lambda handle: sia.start(principal, sia_request, handle),
        lambda execution: sia.write(execution, sia_request),
        media_type)


async def capabilities(request: Request) -> Response:
    headers = {} if principal_of(request).is_authenticated else {"WWW-Authenticate": CHALLENGE}
    return Response(services(request).sia_capabilities, media_type=XML, headers=headers)


def routes() -> list[Route]:
    return [
        Route("/sia/query", query, methods=["GET", "POST"]),
        Route("/sia/capabilities", capabilities, methods=["GET"]),
        Route("/sia/availability", availability, methods=["GET"]),
    ]

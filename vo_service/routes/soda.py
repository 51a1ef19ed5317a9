"""SODA 1.0 sync (``/soda/sync``) and its VOSI resources (``/soda/capabilities``,
``/soda/availability``).

The handler follows the concurrency model (docs/architecture.md): parameters are
parsed on the event loop; the IDs are looked up on the ``datasets`` pool (admission
first); the cutouts run in a thread of ``compute_limiter``, holding no connection.
Errors are SODA's plain-text documents (``UsageError: ...``, sect. 5.2), which pyvo
shows its users as they are; a 401 carries the challenge.  An answer about data of
an authenticated requester is ``Cache-Control: private``: it may hold proprietary
pixels, which no shared cache may keep.
"""

from __future__ import annotations

import logging

import psycopg2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vo_service.database.errors import database_fault
from vo_service.errors import ServiceError, TransientFault, UsageFault
from vo_service.routes.common import compute, principal_of, read_form, services
from vo_service.routes.responses import CHALLENGE, text_error_response
from vo_service.services.downloads import FITS_MEDIA_TYPE, content_disposition
from vo_service.services.soda import MultiValuedParamNotSupported

XML = "text/xml; charset=utf-8"
log = logging.getLogger("lick_archive.soda")


async def sync(request: Request) -> Response:
    private = principal_of(request).is_authenticated
    try:
        response = await _cutouts(request)
    except ServiceError as error:
        response = _error(error)
    except psycopg2.Error as exc:
        response = _error(database_fault(exc))
    if private:
        response.headers["Cache-Control"] = "private"
    return response


async def _cutouts(request: Request) -> Response:
    found = services(request)
    soda = found.soda
    # SODA has no uploads: file parts of a multipart body are ignored like unknown
    # parameters (bounded by service.max_body_bytes all the same)
    params = await read_form(request, None)
    wanted = soda.parse(params)
    principal = principal_of(request)
    datasets = await found.pools.datasets.run(lambda: soda.lookup(principal, wanted))
    result = await compute(found, lambda: soda.cutouts(datasets, wanted))
    if result.content is None:
        # SODA sect. 5.1: no pixel of any dataset in the region(s).
        return Response(status_code=204)
    return Response(result.content, media_type=FITS_MEDIA_TYPE, headers={
        "Content-Disposition": content_disposition("attachment", result.filename)})


def _error(error: ServiceError) -> Response:
    """SODA's error label for a fault of the error tree (logged as the app's handler
    logs those it renders)."""
    if error.status >= 500:
        log.warning("%s on /soda/sync: %s", error.fault, error.message)
    if isinstance(error, MultiValuedParamNotSupported):
        label = "MultiValuedParamNotSupported"
    elif error.status == 401:
        label = "AuthenticationError"
    elif error.status == 403:
        label = "AuthorizationError"
    elif isinstance(error, TransientFault):
        label = "ServiceUnavailable"
    elif isinstance(error, UsageFault) or 400 <= error.status < 500:
        label = "UsageError"
    else:
        label = "Error"
    return text_error_response(error, label)


async def capabilities(request: Request) -> Response:
    headers = {} if principal_of(request).is_authenticated else {"WWW-Authenticate": CHALLENGE}
    return Response(services(request).soda.capabilities, media_type=XML, headers=headers)


async def availability(request: Request) -> Response:
    return Response(await services(request).health.document(), media_type=XML)


def routes() -> list[Route]:
    return [
        Route("/soda/sync", sync, methods=["GET", "POST"]),
        Route("/soda/capabilities", capabilities, methods=["GET"]),
        Route("/soda/availability", availability, methods=["GET"]),
    ]

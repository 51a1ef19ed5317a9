"""VOSI endpoints of the TAP service: availability, capabilities, tables.

An anonymous request for the capabilities gets the ``WWW-Authenticate`` challenge
with its 200 (as the IVOA SSO practice for discovering authentication asks), so a
client such as TOPCAT learns that logging in is possible and how.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tap_schema import declaration, vosi
from vo_service.errors import NotFoundFault, UsageFault
from vo_service.routes.common import principal_of, services
from vo_service.routes.responses import CHALLENGE

XML = "text/xml; charset=utf-8"


async def availability(request: Request) -> Response:
    return Response(await services(request).health.document(), media_type=XML)


async def tap_capabilities(request: Request) -> Response:
    headers = {} if principal_of(request).is_authenticated else {"WWW-Authenticate": CHALLENGE}
    return Response(services(request).capabilities, media_type=XML, headers=headers)


async def tables(request: Request) -> Response:
    detail = request.query_params.get("detail", "max").lower()
    if detail not in ("min", "max"):
        raise UsageFault("detail must be min or max")
    return Response(vosi.tableset(detail=detail == "max"), media_type=XML)


async def table(request: Request) -> Response:
    name = request.path_params["name"]
    try:
        found = declaration.table(name)
    except KeyError:
        raise NotFoundFault(f"no published table {name[:100]!r}; see /tap/tables") from None
    return Response(vosi.table_document(found), media_type=XML)


def routes() -> list[Route]:
    return [
        Route("/tap/availability", availability, methods=["GET"]),
        Route("/tap/capabilities", tap_capabilities, methods=["GET"]),
        Route("/tap/tables", tables, methods=["GET"]),
        Route("/tap/tables/{name:str}", table, methods=["GET"]),
    ]

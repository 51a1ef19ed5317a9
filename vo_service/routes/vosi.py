"""VOSI endpoints of the TAP service: availability, capabilities, tables."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tap_schema import declaration, vosi
from vo_service.errors import NotFoundFault, UsageFault
from vo_service.routes.common import context
from vo_service.services import capabilities, health

XML = "text/xml; charset=utf-8"


async def availability(request: Request) -> Response:
    ctx = context(request)
    available, note = await ctx.database.run(lambda: health.database_available(ctx))
    return Response(health.availability_document(ctx, available, note), media_type=XML)


async def tap_capabilities(request: Request) -> Response:
    return Response(capabilities.tap_capabilities(context(request)), media_type=XML)


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
        raise NotFoundFault(f"no published table {name!r}; see /tap/tables") from None
    return Response(vosi.table_document(found), media_type=XML)


def routes() -> list[Route]:
    return [
        Route("/tap/availability", availability, methods=["GET"]),
        Route("/tap/capabilities", tap_capabilities, methods=["GET"]),
        Route("/tap/tables", tables, methods=["GET"]),
        Route("/tap/tables/{name:str}", table, methods=["GET"]),
    ]

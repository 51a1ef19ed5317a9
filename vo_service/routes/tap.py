"""TAP sync endpoint: parameters in, a streamed result (or a DALI error) out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from auth.principals import ANONYMOUS, Principal
from vo_service.context import AppContext
from vo_service.routes.common import context, read_params
from vo_service.serialize.results import ResultInfo
from vo_service.services.examples import examples_document
from vo_service.services.tap import Execution, parse_tap_request, start_query


def principal_of(request: Request) -> Principal:
    principal = request.scope.get("lick.principal", ANONYMOUS)
    assert isinstance(principal, Principal)
    return principal


async def stream_execution(ctx: AppContext, execution: Execution,
                           chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Pull chunks in worker threads; on disconnect, cancel the query in PostgreSQL."""
    finished = False
    try:
        while True:
            chunk = await ctx.database.run(lambda: next(chunks, None))
            if chunk is None:
                finished = True
                return
            yield chunk
    finally:
        if not finished:
            execution.cancel()
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(execution.close)


async def sync(request: Request) -> Response:
    ctx = context(request)
    params = await read_params(request, max_upload_bytes=ctx.settings.tap.upload_limit_bytes)
    principal = principal_of(request)
    tap_request = await ctx.database.run(lambda: parse_tap_request(params, ctx))
    execution = await ctx.database.run(lambda: start_query(ctx, principal, tap_request))
    chunks = execution.stream(tap_request.format, tap_request.maxrec,
                              ResultInfo(query=tap_request.query))
    return StreamingResponse(stream_execution(ctx, execution, iter(chunks)),
                             media_type=tap_request.format.mime_type)


async def examples(request: Request) -> Response:
    return Response(examples_document(), media_type="application/xhtml+xml")


def routes() -> list[Route]:
    return [
        Route("/tap/sync", sync, methods=["GET", "POST"]),
        Route("/tap/examples", examples, methods=["GET"]),
    ]

"""TAP sync endpoint: parameters in, a result (or a DALI error) out.

The query holds one admission slot of the query pool from its start to the end of
its result (docs/architecture.md).  Its start, and the first 256 KiB of its result,
run in one worker-thread call: a small result is then complete, its connection goes
back to the pool at once and the answer is sent as a plain response.  A larger one
streams, each further chunk pulled in a worker thread of the same pool.  A client
that disconnects, while the query starts or while its result streams, gets its query
cancelled inside PostgreSQL (the cancel request is sent from a thread, never from the
event loop).  A failure after the first byte cannot change the status any more: the
VOTable writers end the document with QUERY_STATUS=ERROR; for the other formats the
writer raises, the failure is logged with the request id and the response is broken
off without its proper end, so the client sees a truncated transfer, never a
complete-looking result.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from vo_service.database.pool import Pool
from vo_service.factory import Services
from vo_service.metrics import Metrics, outcome_of
from vo_service.routes.common import principal_of, read_form, services
from vo_service.routes.streaming import client_gone, failure_reason, until_disconnect
from vo_service.services.examples import examples_document
from vo_service.services.tap import CancelHandle, Execution, fetch_uploads

log = logging.getLogger("lick_archive.tap")

#: Bytes of result prepared in the call that starts the query: a result this small is
#: answered without streaming and releases its connection before it is sent.
FIRST_BYTES = 256 * 1024


async def sync(request: Request) -> Response:
    found = services(request)
    params = await read_form(request, found.settings.tap.upload_limit_bytes)
    tap_request = found.tap.parse(params)
    if tap_request.needs_fetch:
        tap_request = await anyio.to_thread.run_sync(
            fetch_uploads, tap_request, found.settings.tap, limiter=found.fetch_limiter)
    principal = principal_of(request)
    return await query_response(
        request, found,
        lambda handle: found.tap.start(principal, tap_request, handle),
        lambda execution: found.tap.write(execution, tap_request),
        tap_request.format.mime_type, found.tap.pool_for(tap_request))


async def query_response(request: Request, found: Services,
                         start: Callable[[CancelHandle], Execution],
                         write: Callable[[Execution], Iterable[bytes]],
                         media_type: str, pool: Pool | None = None) -> Response:
    """Answer with a query result: ``start`` opens the query (worker thread),
    ``write`` turns it into the document's bytes.  Every protocol answering with a
    query result (TAP sync, SIA) goes through here: one admission slot of the query
    pool for the result's whole life, start and first chunk in one call, cancel on
    disconnect, streaming of the rest (module docstring).  ``pool`` is the one
    ``start`` takes its connection from (the query pool unless said otherwise)."""
    pool = pool or found.tap.pool
    try:
        await pool.admit()
    except BaseException as exc:
        found.metrics.query("sync", outcome_of(exc))
        raise
    try:
        handle = CancelHandle()
        first, rest = await _cancel_on_disconnect(
            request.receive, handle, found,
            lambda: pool.call(lambda: _start(start, write, handle)))
    except BaseException as exc:
        pool.leave()
        found.metrics.query("sync", outcome_of(exc))
        raise
    if rest is None:
        pool.leave()
        found.metrics.query("sync", "ok")
        return Response(b"".join(first), media_type=media_type)
    return StreamedResult(first, rest, media_type, pool, handle, found.metrics)


def _start(start: Callable[[CancelHandle], Execution],
           write: Callable[[Execution], Iterable[bytes]],
           handle: CancelHandle) -> tuple[list[bytes], _Rest | None]:
    """Start the query and prepare up to FIRST_BYTES of its result (worker thread)."""
    execution = start(handle)
    try:
        chunks = iter(write(execution))
        first: list[bytes] = []
        size = 0
        for chunk in chunks:
            first.append(chunk)
            size += len(chunk)
            if size >= FIRST_BYTES:
                return first, _Rest(execution, chunks)
    except BaseException:
        execution.cancel()
        execution.close()
        raise
    execution.close()
    return first, None


class _Rest:
    """The unsent part of a streamed result and the query producing it."""

    def __init__(self, execution: Execution, chunks: Iterator[bytes]) -> None:
        self.execution = execution
        self.chunks = chunks
        self.finished = False

    def next_chunk(self) -> bytes | None:
        chunk = next(self.chunks, None)
        if chunk is None:
            self.finished = True
        return chunk

    def close(self) -> None:
        if not self.finished:
            self.execution.cancel()
        self.execution.close()


async def _cancel_on_disconnect(receive: Receive, handle: CancelHandle, found: Services,
                                work: Callable[[], Awaitable[tuple[list[bytes], _Rest | None]]]
                                ) -> tuple[list[bytes], _Rest | None]:
    """Run ``work``; if the client disconnects meanwhile, cancel the query (the
    worker thread then ends with an error that is not sent anywhere)."""
    async with anyio.create_task_group() as group:
        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            await anyio.to_thread.run_sync(handle.cancel, limiter=found.cancel_limiter)

        group.start_soon(watch)
        try:
            result = await work()
        except Exception as exc:  # raised below, not wrapped in the group's ExceptionGroup
            failure: Exception | None = exc
        else:
            failure = None
        group.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return result


class StreamedResult(Response):
    """A result too large for one call: the prepared chunks, then the rest, pulled in
    worker threads of the query pool while this request holds its admission slot."""

    def __init__(self, first: list[bytes], rest: _Rest, media_type: str, pool: Pool,
                 handle: CancelHandle, metrics: Metrics) -> None:
        super().__init__(media_type=media_type)
        self.first = first
        self.rest = rest
        self.pool = pool
        self.handle = handle
        self.metrics = metrics
        # chunked transfer: drop the Content-Length the base class computed for b""
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pool = self.pool
        outcome = "cancelled"  # unless it ends, or fails, below
        try:
            await until_disconnect(receive, lambda: self._send_all(send))
            if self.rest.finished:
                outcome = "ok"
        except Exception as exc:
            if client_gone(exc):
                log.info("client went away during a streamed result; query cancelled")
            else:
                outcome = "failed"
                # Headers are out: the response can only be broken off (see the module
                # docstring).  Returning without the final body message makes the
                # server close the connection.
                log.error("result stream failed after the first byte; response broken "
                          "off: %s", failure_reason(exc))
        finally:
            self.metrics.query("sync", outcome)
            with anyio.CancelScope(shield=True):
                await pool.call(self.rest.close)
                pool.leave()

    async def _send_all(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        for chunk in self.first:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        pool = self.pool
        while (more := await pool.call(self.rest.next_chunk)) is not None:
            await send({"type": "http.response.body", "body": more, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def examples(request: Request) -> Response:
    return Response(examples_document(), media_type="application/xhtml+xml")


def routes() -> list[Route]:
    return [
        Route("/tap/sync", sync, methods=["GET", "POST"]),
        Route("/tap/examples", examples, methods=["GET"]),
    ]

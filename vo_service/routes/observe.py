"""ASGI middleware giving each request an id, one JSON log line and its metrics.

The id is random (16 hex digits), set in :data:`vo_service.logs.REQUEST_ID` for the
request's whole life (every line logged meanwhile carries it), returned in
``X-Request-ID`` and written into error documents.  When the response has ended, one
line (logger ``lick_archive.access``) gives: method, route template, path (never the
query string: it may hold an ADQL query or a token-bearing URL), status, duration in
milliseconds, response bytes, the client's address and who asked (the principal's
login, or ``anonymous``; never credentials).  The same figures go to the request
metrics (:mod:`vo_service.metrics`), labelled by the **route template**
(``/tap/async/{job_id}``) that matched, never by the raw path, so that any route
added later is counted and the label set stays bounded.

An exception no handler turned into an error document is our bug: it is logged here,
once, with its traceback and the request id, and the client gets a FatalFault
document naming the id (or, if the response had begun, a broken-off response).
"""

from __future__ import annotations

import logging
import os
import secrets
import time

from starlette.datastructures import MutableHeaders
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vo_service.errors import FatalFault
from vo_service.logs import FIELDS, REQUEST_ID
from vo_service.metrics import UNMATCHED, Metrics
from vo_service.routes.common import PRINCIPAL_KEY, client_address
from vo_service.routes.responses import error_response

log = logging.getLogger("lick_archive.access")

#: Route templates whose bodies are data products ("bytes downloaded").
DOWNLOAD_PREFIXES = ("/data/", "/soda/sync")


def route_template(scope: Scope) -> str:
    """The path template of the route that matched (bounded label values).

    A request answered before routing (401 for bad credentials, 413 for a body too
    large) is matched here against the app's routes, so that it counts under its
    route too; only a path no route takes is ``unmatched``.
    """
    route = scope.get("route")
    if not isinstance(route, BaseRoute):
        app = scope.get("app")
        router = getattr(app, "router", None)
        route = next((r for r in getattr(router, "routes", ())
                      if r.matches(scope)[0] is not Match.NONE), None)
    if isinstance(route, BaseRoute):
        return str(getattr(route, "path", "") or UNMATCHED)
    return UNMATCHED


class RequestLog:
    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(8)
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 0
        sent = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status, sent
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            elif kind == "http.response.body":
                sent += len(message.get("body", b""))
            elif kind == "http.response.pathsend":
                sent += _size(message.get("path", ""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if not status:
                await error_response(FatalFault(
                    f"internal error (request {request_id}); it has been logged. Please "
                    "report the request id."))(scope, receive, send_with_id)
        finally:
            self._finished(scope, status, time.perf_counter() - started, sent)
            REQUEST_ID.reset(token)

    def _finished(self, scope: Scope, status: int, seconds: float, sent: int) -> None:
        route = route_template(scope)
        method = str(scope.get("method", ""))
        principal = scope.get(PRINCIPAL_KEY)
        login = getattr(principal, "login", "") or "anonymous"
        if self.metrics is not None:
            self.metrics.request(route, method, status, seconds, sent,
                                 download=route.startswith(DOWNLOAD_PREFIXES))
        path = str(scope.get("path", ""))
        log.info("%s %s %d %.1f ms %s", method, path, status, seconds * 1000, login,
                 extra={FIELDS: {
                     "event": "request", "method": method, "route": route, "path": path,
                     "status": status, "duration_ms": round(seconds * 1000, 1),
                     "bytes": sent, "client": client_address(scope), "login": login}})


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0

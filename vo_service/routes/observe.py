"""ASGI middleware giving each request an id and one log line, and catching the rest.

The id is random (16 hex digits), set in :data:`vo_service.logs.REQUEST_ID` for the
request's whole life and returned in ``X-Request-ID``; the line says method, path,
status, duration in milliseconds and who asked (never credentials).  An exception no
handler turned into an error document is our bug: it is logged here, once, with its
traceback and the request id, and the client gets a FatalFault document naming the
id (or, if the response had begun, a broken-off response).
"""

from __future__ import annotations

import logging
import secrets
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vo_service.errors import FatalFault
from vo_service.logs import REQUEST_ID
from vo_service.routes.common import PRINCIPAL_KEY
from vo_service.routes.responses import error_response

log = logging.getLogger("lick_archive.access")


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(8)
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
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
            principal = scope.get(PRINCIPAL_KEY)
            who = getattr(principal, "login", "") or "anonymous"
            log.info("%s %s %d %.1f ms %s", scope.get("method"), scope.get("path"), status,
                     (time.perf_counter() - started) * 1000, who)
            REQUEST_ID.reset(token)

"""ASGI middleware putting the requester's Principal into ``scope["lick.principal"]``.

Credentials come from the ``Authorization`` header (Basic, Bearer) or, without one,
from the web session cookie; the live web session (with its CSRF token) goes into
``scope["lick.session"]`` for the pages.
"""

from __future__ import annotations

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from auth.sessions import COOKIE_NAME
from vo_service.context import AppContext
from vo_service.errors import ServiceError
from vo_service.routes.responses import error_response
from vo_service.services.authentication import identify

PRINCIPAL_KEY = "lick.principal"
SESSION_KEY = "lick.session"
STALE_COOKIE_KEY = "lick.stale_session_cookie"


class AuthenticationMiddleware:
    def __init__(self, app: ASGIApp, context: AppContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"").decode("latin-1") or None
        cookie_header = headers.get(b"cookie", b"").decode("latin-1")
        session_cookie = cookie_parser(cookie_header).get(COOKIE_NAME) if cookie_header else None
        client = scope.get("client")
        address = client[0] if client else "unknown"
        ctx = self.context
        try:
            identity = await ctx.database.run(
                lambda: identify(ctx, authorization, session_cookie or None, address))
        except ServiceError as error:
            await error_response(error)(scope, receive, send)
            return
        scope[PRINCIPAL_KEY] = identity.principal
        scope[SESSION_KEY] = identity.session
        scope[STALE_COOKIE_KEY] = identity.stale_cookie
        await self.app(scope, receive, send)

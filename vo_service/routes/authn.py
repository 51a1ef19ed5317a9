"""ASGI middleware putting the requester's Principal into ``scope["lick.principal"]``.

Credentials come from the ``Authorization`` header (Basic, Bearer) or, without one,
from the web session cookie; the live web session (with its CSRF token) goes into
``scope["lick.session"]`` for the pages.  A request without credentials is anonymous
at once, on the event loop: it does no database work and waits for nobody.  Others
are checked on the identity pool.  Responses to an authenticated request carry
``X-VO-Authenticated`` (the login, percent-encoded beyond ASCII, so a client can tell
whom the service took it for) and ``Cache-Control: private`` (a shared cache must never
hand them to anyone else).
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.datastructures import MutableHeaders
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auth.sessions import COOKIE_NAME
from vo_service.errors import ServiceError
from vo_service.routes.common import (
    PRINCIPAL_KEY,
    SESSION_KEY,
    STALE_COOKIE_KEY,
    client_address,
)
from vo_service.routes.responses import error_response
from vo_service.services.identity import IdentityService


class AuthenticationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authorization: str | None = None
        cookie_header = ""
        for name, value in scope.get("headers") or ():
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"cookie":
                cookie_header = value.decode("latin-1")
        session_cookie = cookie_parser(cookie_header).get(COOKIE_NAME) if cookie_header else None
        service: IdentityService = scope["app"].state.services.identity
        try:
            identity = await service.identify(authorization, session_cookie or None,
                                                    client_address(scope))
        except ServiceError as error:
            await error_response(error)(scope, receive, send)
            return
        scope[PRINCIPAL_KEY] = identity.principal
        scope[SESSION_KEY] = identity.session
        scope[STALE_COOKIE_KEY] = identity.stale_cookie
        if not identity.principal.is_authenticated:
            await self.app(scope, receive, send)
            return
        login = quote(identity.principal.login, safe="@.+-_")  # header values are ASCII

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-VO-Authenticated"] = login
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "private"
            await send(message)

        await self.app(scope, receive, send_marked)

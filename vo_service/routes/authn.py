"""ASGI middleware putting the requester's Principal into ``scope["lick.principal"]``."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from vo_service.context import AppContext
from vo_service.errors import ServiceError
from vo_service.routes.responses import error_response
from vo_service.services.authentication import authenticate


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
        client = scope.get("client")
        address = client[0] if client else "unknown"
        ctx = self.context
        try:
            scope["lick.principal"] = await ctx.database.run(
                lambda: authenticate(ctx, authorization, address))
        except ServiceError as error:
            await error_response(error)(scope, receive, send)
            return
        await self.app(scope, receive, send)

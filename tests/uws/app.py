"""A Starlette app serving only the UWS routes over a test store (no TAP executor)."""

from __future__ import annotations

from types import SimpleNamespace

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from auth.principals import Principal
from vo_service.errors import ServiceError
from vo_service.routes.responses import error_response
from vo_service.routes.uws import uws_routes
from vo_service.settings import Settings
from vo_service.uws.events import PhaseEvents
from vo_service.uws.service import UwsService


class FakeLogin:
    """Test stand-in for the authentication layer: header X-User → scope principal."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"x-user":
                    scope["lick.principal"] = Principal(user_id=int(value), login="u",
                                                        display_name="u")
        await self.app(scope, receive, send)


async def _error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return error_response(exc)


def uws_app(service: UwsService, events: PhaseEvents, *, max_upload_bytes: int = 20_000_000,
            max_wait_s: int = 10, base_url: str = "http://testserver") -> Starlette:
    settings = Settings().replace(uws={"max_wait_s": max_wait_s})
    app = Starlette(routes=uws_routes(path="/tap/async", max_upload_bytes=max_upload_bytes),
                    exception_handlers={ServiceError: _error})
    app.state.services = SimpleNamespace(
        uws=service, events=events, settings=settings, base_url=base_url,
        pools=SimpleNamespace(uws=service.store.pool))
    app.add_middleware(FakeLogin)
    return app

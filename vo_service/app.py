"""The application factory: ``create_app(settings)`` builds the Starlette app.

Nothing connects or reads configuration at import; the lifespan opens the
:class:`~vo_service.factory.Factory` (pools, background threads) and puts its
:class:`~vo_service.factory.Services` on ``app.state``.  Every error leaves as a DALI
document, so a client never sees a stack trace or an HTML error page: service errors
through one handler, database errors mapped by SQLSTATE (503 with Retry-After while
the database is away), anything else by the request log (``routes/observe.py``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from vo_service.database.errors import database_fault
from vo_service.errors import FatalFault, ServiceError
from vo_service.factory import Factory
from vo_service.routes import datalink, downloads, health, registry, sia, soda, tap, vosi
from vo_service.routes.authn import AuthenticationMiddleware
from vo_service.routes.common import BodyLimit
from vo_service.routes.observe import RequestLog
from vo_service.routes.responses import error_response
from vo_service.routes.uws import uws_routes
from vo_service.settings import Settings
from vo_service.web.routes import web_routes

log = logging.getLogger("lick_archive")


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    if exc.status >= 500:
        log.warning("%s on %s: %s", exc.fault, request.url.path, exc.message)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    fault = "NotFoundFault" if exc.status_code == 404 else "UsageFault"
    error = ServiceError(str(exc.detail), status=exc.status_code)
    error.fault = fault
    return error_response(error)


async def _database_error(request: Request, exc: Exception) -> Response:
    """A database error no service mapped (a safety net: each should map its own)."""
    mapped = database_fault(exc)
    if isinstance(mapped, FatalFault):
        log.error("database error on %s", request.url.path, exc_info=exc)
    return await _service_error(request, mapped)


def routes(settings: Settings, instrument_dirs: tuple[str, ...]) -> list[BaseRoute]:
    return [
        *health.routes(),
        *vosi.routes(),
        *tap.routes(),
        *datalink.routes(),
        *downloads.routes(),
        *sia.routes(),
        *soda.routes(),
        *registry.routes(),
        *uws_routes(path="/tap/async", max_upload_bytes=settings.tap.upload_limit_bytes),
        *web_routes(instrument_dirs),
    ]


def create_app(settings: Settings, *, instrument_dirs: tuple[str, ...] = (),
               archive_roots: Sequence[Path] = (), factory: Factory | None = None
               ) -> Starlette:
    """The app.  From ingest's configuration, which the composition root reads: the
    ``instrument_dirs`` the staff grant form offers, the ``archive_roots`` the files
    are served from."""
    built = factory or Factory(settings, archive_roots=archive_roots)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.services = built.open()
        try:
            yield
        finally:
            built.close()

    app = Starlette(
        routes=routes(settings, instrument_dirs),
        lifespan=lifespan,
        exception_handlers={
            ServiceError: _service_error,
            HTTPException: _http_error,
            psycopg2.Error: _database_error,
        },
    )
    app.add_middleware(AuthenticationMiddleware)
    app.add_middleware(BodyLimit, max_bytes=settings.service.max_body_bytes)
    app.add_middleware(RequestLog, metrics=built.metrics)
    return app


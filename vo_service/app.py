"""The application factory: ``create_app(settings)`` builds the Starlette app.

Nothing connects or reads configuration at import; the lifespan opens the pools.
Every error leaves through :func:`_service_error`, which renders a DALI document, so
a client never sees a stack trace or an HTML error page.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from vo_service.context import AppContext
from vo_service.errors import FatalFault, ServiceError
from vo_service.routes import tap, vosi
from vo_service.routes.authn import AuthenticationMiddleware
from vo_service.routes.responses import error_response
from vo_service.routes.uws import uws_routes
from vo_service.services.release import ReleaseRefresher
from vo_service.services.tap_async import make_executor
from vo_service.settings import Settings
from vo_service.uws.runner import JobRunner
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


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s", request.url.path)
    return error_response(FatalFault(
        "internal error; it has been logged. Please report the time and the request."))


def routes(ctx: AppContext) -> list[BaseRoute]:
    return [
        *vosi.routes(),
        *tap.routes(),
        *uws_routes(lambda request: ctx.jobs, path="/tap/async",
                    max_upload_bytes=ctx.settings.tap.upload_limit_bytes),
        *web_routes(),
    ]


def create_app(settings: Settings, context: AppContext | None = None) -> Starlette:
    ctx = context or AppContext.build(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ctx.database.open()
        ctx.events.start()
        runner = JobRunner(ctx.jobs.store, make_executor(ctx), ctx.jobs_dir,
                           threads=settings.uws.runner_threads, events=ctx.events,
                           sweep_interval=settings.uws.sweep_interval_s)
        runner.start()
        refresher = ReleaseRefresher(ctx, settings.uws.sweep_interval_s)
        refresher.start()
        try:
            yield
        finally:
            refresher.stop()
            runner.stop()
            ctx.events.stop()
            ctx.jobs.store.close()
            ctx.database.close()

    app = Starlette(
        routes=routes(ctx),
        lifespan=lifespan,
        exception_handlers={
            ServiceError: _service_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        },
    )
    app.state.context = ctx
    app.add_middleware(AuthenticationMiddleware, context=ctx)
    return app

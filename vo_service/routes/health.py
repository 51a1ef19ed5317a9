"""Liveness, readiness and metrics for the machines that watch the service.

``/healthz`` answers as long as the process and its event loop do (a supervisor or
load balancer restarts a process that stops answering); ``/readyz`` also checks the
database, through the availability probe's own pool so that it never waits behind
user queries (503 while the database is away: a load balancer then sends requests
elsewhere).  Neither needs credentials nor touches user data.  VOSI availability
(``/tap/availability``) stays the VO clients' view.  ``/metrics`` is Prometheus's text
format, for the networks in ``[service] metrics_clients`` only.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vo_service.database.errors import RETRY_AFTER_S
from vo_service.errors import AuthorizationFault
from vo_service.metrics import CONTENT_TYPE
from vo_service.routes.common import client_address, services

NO_STORE = {"Cache-Control": "no-store"}


async def liveness(request: Request) -> Response:
    return JSONResponse({"status": "alive"}, headers=NO_STORE)


async def readiness(request: Request) -> Response:
    ready, note = await services(request).health.check()
    if ready:
        return JSONResponse({"status": "ready", "database": note}, headers=NO_STORE)
    return JSONResponse({"status": "not ready", "database": note}, status_code=503,
                        headers={**NO_STORE, "Retry-After": str(RETRY_AFTER_S)})


async def metrics(request: Request) -> Response:
    found = services(request)
    if not found.monitoring.may_scrape(client_address(request.scope)):
        raise AuthorizationFault("the metrics are served to the monitoring hosts only "
                                 "([service] metrics_clients)", status=403)
    body = await found.monitoring.exposition()
    return Response(body, media_type=CONTENT_TYPE, headers=NO_STORE)


def routes() -> list[Route]:
    return [
        Route("/healthz", liveness, methods=["GET", "HEAD"]),
        Route("/readyz", readiness, methods=["GET", "HEAD"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]

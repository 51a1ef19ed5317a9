"""The publishing registry: ``/oai`` (OAI-PMH 2.0) and ``/coverage`` (the MOC).

``/oai`` takes GET and urlencoded POST, with OAI-PMH's case-sensitive arguments (not
DALI's parameter reader, which folds names); the answer, errors included, is an
OAI-PMH document with status 200, as the protocol asks.  ``/coverage`` serves the
stored coverage of the public data as a MOC (FITS, JSON or ASCII), of the whole
archive or of one collection.  Both read the database through the ``registry`` pool;
both answer everyone alike: the registry is public and shows public data only.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vo_service.errors import NotFoundFault, UsageFault
from vo_service.routes.common import read_form, services

XML = "text/xml; charset=utf-8"
#: OAI-PMH arguments in one request, at most (a harvest sends four or five).
MAX_ARGUMENTS = 50
#: bytes of a POSTed request, at most (arguments are short; tokens below 4,000 bytes)
MAX_BODY_BYTES = 65_536
FORMATS = {
    "fits": "application/fits", "application/fits": "application/fits",
    "json": "application/json", "application/json": "application/json",
    "ascii": "text/plain", "text/plain": "text/plain",
}


async def _oai_arguments(request: Request) -> list[tuple[str, str]]:
    pairs = list(request.query_params.multi_items())
    content_type = request.headers.get("content-type", "")
    if request.method == "POST":
        if not content_type.startswith("application/x-www-form-urlencoded"):
            raise UsageFault("OAI-PMH requests are GET or POST with "
                             "application/x-www-form-urlencoded arguments", status=415)
        timeout = services(request).settings.service.body_timeout_s
        body = b""
        try:
            with anyio.fail_after(timeout):
                async for chunk in request.stream():
                    body += chunk
                    if len(body) > MAX_BODY_BYTES:
                        raise UsageFault(f"OAI-PMH requests are limited to {MAX_BODY_BYTES} "
                                         "bytes", status=413)
        except TimeoutError:
            raise UsageFault(f"the request body did not arrive within {timeout:.0f} s",
                             status=408) from None
        try:
            pairs += parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True,
                               max_num_fields=MAX_ARGUMENTS)
        except ValueError as exc:
            raise UsageFault(f"cannot read the arguments: {exc}") from None
    if len(pairs) > MAX_ARGUMENTS:
        raise UsageFault(f"at most {MAX_ARGUMENTS} OAI-PMH arguments in one request")
    return pairs


async def oai(request: Request) -> Response:
    found = services(request)
    pairs = await _oai_arguments(request)
    document = await found.registry.pool.run(lambda: found.oai.handle(pairs))
    return Response(document, media_type=XML)


async def coverage(request: Request) -> Response:
    found = services(request)
    params = await read_form(request, None)
    name = params.get("FORMAT") or "fits"
    media_type = FORMATS.get(name.strip().lower())
    if media_type is None:
        raise UsageFault(f"FORMAT must be fits, json or ascii (or their MIME types), not "
                         f"{name[:40]!r}")
    collection = params.get("COLLECTION") or ""
    files = found.coverage_files

    def work() -> bytes:
        made = files.get(collection, media_type)
        if made is None:
            known = ", ".join(files.collections()) or "none yet"
            raise NotFoundFault(f"no public data in a collection {collection[:60]!r} "
                                f"(collections: {known})")
        return made

    body = await found.registry.pool.run(work)
    filename = "coverage" + {"application/fits": ".fits", "application/json": ".json",
                             "text/plain": ".txt"}[media_type]
    return Response(body, media_type=media_type,
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})


def routes() -> list[Route]:
    return [
        Route("/oai", oai, methods=["GET", "POST"]),
        Route("/coverage", coverage, methods=["GET", "POST"]),
    ]

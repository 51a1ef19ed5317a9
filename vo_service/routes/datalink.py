"""DataLink ``/datalink/links`` (GET and POST): identifiers in, a links VOTable out.

The identifiers are resolved on the ``datasets`` pool, in one transaction bound to the
requester.  The answer always carries the DataLink MIME type
``application/x-votable+xml;content=datalink``, whatever the Accept header says: Java
clients send ``text/html, image/gif, ..., */*``, and the document is the same for all.
Errors that concern the whole request (too many identifiers, an unknown
RESPONSEFORMAT) are DALI error documents; an identifier that cannot be answered is an
error row in the table (DataLink 1.1 sect. 3.2.3).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vo_service.routes.common import principal_of, read_form, services
from vo_service.services.datalink import parse_links_request
from vo_service.services.datalink_votable import links_votable
from vo_service.services.descriptors import DATALINK_MEDIA_TYPE


async def links(request: Request) -> Response:
    found = services(request)
    params = await read_form(request, None)
    wanted = parse_links_request(params, found.settings.downloads.datalink_max_ids)
    principal = principal_of(request)
    rows = await found.pools.datasets.run(lambda: found.datalink.links(principal, wanted.ids))
    document = links_votable(rows, found.datalink.urls.soda_sync, overflow=wanted.overflow)
    return Response(document, headers={"Content-Type": DATALINK_MEDIA_TYPE})


def routes() -> list[Route]:
    return [Route("/datalink/links", links, methods=["GET", "POST"])]

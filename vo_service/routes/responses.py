"""The one place HTTP error responses are made (DALI error documents)."""

from __future__ import annotations

from starlette.responses import Response

from vo_service.errors import ServiceError, error_votable

VOTABLE_MEDIA_TYPE = "application/x-votable+xml"


def error_response(error: ServiceError) -> Response:
    headers = {}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="Lick Archive", charset="UTF-8"'
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return Response(error_votable(error.message, error.fault), status_code=error.status,
                    media_type=VOTABLE_MEDIA_TYPE, headers=headers)

"""The one place HTTP error responses are made (DALI error documents).

A 401 carries the challenge naming every scheme the service accepts (HTTP Basic and
bearer tokens, RFC 7235 sect. 4.1), so a client learns how to log in.
"""

from __future__ import annotations

from starlette.responses import Response

from vo_service.errors import ServiceError, error_votable

VOTABLE_MEDIA_TYPE = "application/x-votable+xml"
REALM = "Lick Archive"
CHALLENGE = f'Basic realm="{REALM}", charset="UTF-8", Bearer realm="{REALM}"'


def error_response(error: ServiceError) -> Response:
    headers = {}
    if error.status == 401:
        headers["WWW-Authenticate"] = CHALLENGE
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return Response(error_votable(error.message, error.fault), status_code=error.status,
                    media_type=VOTABLE_MEDIA_TYPE, headers=headers)

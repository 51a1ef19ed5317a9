"""The one place HTTP error responses are made (DALI error documents).

A 401 carries a challenge (RFC 7235 sect. 4.1) so that a client learns how to log in:
the refusal's own (``error.headers``), else :data:`CHALLENGE`, naming both schemes the
service accepts.  Most protocols answer with a VOTable error document; SODA asks for
text/plain starting with its own error label (SODA 1.0 sect. 5.2), which
:func:`text_error_response` writes with the same status and headers.
"""

from __future__ import annotations

from starlette.responses import Response

from auth.credentials import CHALLENGE as BASIC_CHALLENGE
from auth.credentials import REALM
from vo_service.errors import ServiceError, error_votable
from vo_service.logs import REQUEST_ID

VOTABLE_MEDIA_TYPE = "application/x-votable+xml"
TEXT_MEDIA_TYPE = "text/plain; charset=utf-8"
CHALLENGE = f'{BASIC_CHALLENGE}, Bearer realm="{REALM}"'


def _headers(error: ServiceError) -> dict[str, str]:
    headers = {}
    if error.status == 401:
        headers["WWW-Authenticate"] = CHALLENGE
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    headers.update(error.headers)
    return headers


def error_response(error: ServiceError) -> Response:
    return Response(error_votable(error.message, error.fault, REQUEST_ID.get("")),
                    status_code=error.status,
                    media_type=VOTABLE_MEDIA_TYPE, headers=_headers(error))


def text_error_response(error: ServiceError, label: str) -> Response:
    """A plain-text DALI error document: ``<label>: <message>``."""
    return Response(f"{label}: {error.message}\n", status_code=error.status,
                    media_type=TEXT_MEDIA_TYPE, headers=_headers(error))

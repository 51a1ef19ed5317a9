"""The one error tree: each error knows its DALI fault and HTTP status.

Handlers and services raise these; :func:`error_votable` is the one place that renders
a DALI error document (DALI 1.1 sect. 4.4: a VOTable with ``INFO name="QUERY_STATUS"
value="ERROR"`` whose content is the message).  Messages say what to fix.
"""

from __future__ import annotations

from lxml import etree

from vo_service.xml_text import xml_text

VOTABLE_NS = "http://www.ivoa.net/xml/VOTable/v1.3"


class ServiceError(Exception):
    """Base of every error a client may see; never carries a stack trace to the client."""

    fault = "FatalFault"
    status = 500

    def __init__(self, message: str, *, status: int | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        #: Seconds the client should wait before trying again (``Retry-After``).
        self.retry_after = retry_after
        #: Further response headers (e.g. the ``WWW-Authenticate`` of a refusal).
        self.headers: dict[str, str] = {}


class UsageFault(ServiceError):
    """The request is wrong: a bad parameter, bad ADQL, an unknown format."""

    fault = "UsageFault"
    status = 400


class NotFoundFault(ServiceError):
    """No such resource, or one the requester may not know exists."""

    fault = "NotFoundFault"
    status = 404


class AuthorizationFault(ServiceError):
    """Credentials are missing or wrong (401) or do not allow this (403)."""

    fault = "AuthorizationFault"
    status = 401


class TransientFault(ServiceError):
    """The service cannot answer now (database down, limits reached); try again later."""

    fault = "TransientFault"
    status = 503


class QueryTimeout(TransientFault):
    """A query ran into its statement timeout (a TransientFault to the client; told
    apart for the metrics of query outcomes)."""


class FatalFault(ServiceError):
    """Something broke on our side; the message is safe to show, details are logged."""

    fault = "FatalFault"
    status = 500


def error_votable(message: str, fault: str | None = None, request_id: str = "") -> bytes:
    """A DALI error document; ``request_id`` (the one in the server's log lines) is
    added as an ``INFO name="request_id"`` so a report can name the request."""
    root = etree.Element(f"{{{VOTABLE_NS}}}VOTABLE", nsmap={None: VOTABLE_NS})
    root.set("version", "1.4")
    resource = etree.SubElement(root, f"{{{VOTABLE_NS}}}RESOURCE", type="results")
    info = etree.SubElement(resource, f"{{{VOTABLE_NS}}}INFO", name="QUERY_STATUS",
                            value="ERROR")
    info.text = xml_text(f"{fault}: {message}" if fault else message)
    if request_id:
        etree.SubElement(resource, f"{{{VOTABLE_NS}}}INFO", name="request_id",
                         value=request_id)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

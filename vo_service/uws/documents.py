"""UWS 1.1 XML documents (job, job list, results, parameters) built with lxml.

The documents follow ``UWS.xsd`` (namespace ``http://www.ivoa.net/xml/UWS/v1.0``, version
attribute ``1.1``); the tests validate every kind against it.  URLs are passed in by the
HTTP layer, so nothing here knows how the service is mounted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from lxml import etree

from vo_service.errors import error_votable
from vo_service.uws.model import ErrorSummary, Job, JobRef
from vo_service.xml_text import xml_text

UWS_NS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK_NS = "http://www.w3.org/1999/xlink"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
VOTABLE_NS = "http://www.ivoa.net/xml/VOTable/v1.3"
UWS_VERSION = "1.1"
MEDIA_TYPE = "application/xml"

_NSMAP = {"uws": UWS_NS, "xlink": XLINK_NS, "xsi": XSI_NS}
_U = f"{{{UWS_NS}}}"
_X = f"{{{XLINK_NS}}}"
_NIL = f"{{{XSI_NS}}}nil"


def format_datetime(value: datetime) -> str:
    """ISO 8601 UTC with milliseconds and ``Z`` (xs:dateTime and DALI timestamp)."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _element(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, _U + name)
    if text is not None:
        child.text = xml_text(text)
    return child


def _time_element(
    parent: etree._Element, name: str, value: datetime | None, *, nillable: bool = True
) -> None:
    if value is not None:
        _element(parent, name, format_datetime(value))
    elif nillable:
        _element(parent, name).set(_NIL, "true")


def _owner_element(parent: etree._Element, owner_id: str | None) -> None:
    if owner_id is None:
        _element(parent, "ownerId").set(_NIL, "true")
    else:
        _element(parent, "ownerId", owner_id)


def _serialize(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _fill_parameters(parent: etree._Element, job: Job) -> None:
    for name, value in job.parameters:
        _element(parent, "parameter", value).set("id", name.lower())


def _fill_results(parent: etree._Element, job: Job, job_url: str) -> None:
    for result in job.results:
        element = _element(parent, "result")
        element.set("id", result.result_id)
        element.set(_X + "type", "simple")
        element.set(_X + "href", result.href or f"{job_url}/results/{result.result_id}")
        if result.size is not None:
            element.set("size", str(result.size))
        element.set("mime-type", result.mime_type)


def job_document(job: Job, job_url: str) -> bytes:
    """``uws:job`` for ``GET {jobs}/{id}``; ``job_url`` is that URL (no trailing slash)."""
    root = etree.Element(_U + "job", nsmap=_NSMAP)
    root.set("version", UWS_VERSION)
    _element(root, "jobId", job.job_id)
    if job.run_id is not None:
        _element(root, "runId", job.run_id)
    _owner_element(root, job.owner_id)
    _element(root, "phase", str(job.phase))
    _time_element(root, "quote", job.quote)
    _time_element(root, "creationTime", job.creation_time, nillable=False)
    _time_element(root, "startTime", job.start_time)
    _time_element(root, "endTime", job.end_time)
    _element(root, "executionDuration", str(job.execution_duration))
    _time_element(root, "destruction", job.destruction)
    _fill_parameters(_element(root, "parameters"), job)
    _fill_results(_element(root, "results"), job, job_url)
    if job.error is not None:
        summary = _element(root, "errorSummary")
        summary.set("type", str(job.error.type))
        summary.set("hasDetail", "true")
        _element(summary, "message", job.error.message)
    return _serialize(root)


def job_list_document(jobs: Sequence[JobRef], list_url: str) -> bytes:
    """``uws:jobs`` for ``GET {jobs}``; each jobref links to ``{list_url}/{id}``."""
    root = etree.Element(_U + "jobs", nsmap=_NSMAP)
    root.set("version", UWS_VERSION)
    for ref in jobs:
        element = _element(root, "jobref")
        element.set("id", ref.job_id)
        element.set(_X + "type", "simple")
        element.set(_X + "href", f"{list_url}/{ref.job_id}")
        _element(element, "phase", str(ref.phase))
        if ref.run_id is not None:
            _element(element, "runId", ref.run_id)
        _owner_element(element, ref.owner_id)
        _time_element(element, "creationTime", ref.creation_time, nillable=False)
    return _serialize(root)


def results_document(job: Job, job_url: str) -> bytes:
    """``uws:results`` for ``GET {jobs}/{id}/results``."""
    root = etree.Element(_U + "results", nsmap=_NSMAP)
    _fill_results(root, job, job_url)
    return _serialize(root)


def parameters_document(job: Job) -> bytes:
    """``uws:parameters`` for ``GET {jobs}/{id}/parameters`` (ids in lower case)."""
    root = etree.Element(_U + "parameters", nsmap=_NSMAP)
    _fill_parameters(root, job)
    return _serialize(root)


def error_document(error: ErrorSummary) -> bytes:
    """The DALI error VOTable served at ``{jobs}/{id}/error`` (with status 200).

    Rendered by the application's one error renderer; its text is the summary message,
    which is also in the job's errorSummary, so generic UWS clients and TAP clients read
    the same words.
    """
    return bytes(error_votable(error.message))

"""OAI-PMH 2.0 response documents (the envelope, headers, records, oai_dc, errors).

Pure XML building: what to say comes from :mod:`vo_service.services.oai`.  The
``request`` element echoes the arguments, except after badVerb and badArgument
errors, where OAI-PMH 2.0 (sect. 3.6) wants the base URL alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from lxml import etree

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
OAI_SCHEMA = "http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd"
OAI_DC_NS = "http://www.openarchives.org/OAI/2.0/oai_dc/"
OAI_DC_SCHEMA = "http://www.openarchives.org/OAI/2.0/oai_dc.xsd"
DC_NS = "http://purl.org/dc/elements/1.1/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
DATESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def q(tag: str) -> str:
    return f"{{{OAI_NS}}}{tag}"


def datestamp(value: datetime) -> str:
    return value.strftime(DATESTAMP_FORMAT)


def envelope(base_url: str, now: datetime, arguments: Mapping[str, str] | None
             ) -> etree._Element:
    """The OAI-PMH root with responseDate and request (``arguments=None``: none)."""
    # a prefix, not the default namespace: the records inside are VOResource's
    # unqualified elements, which libxml2 would not undeclare it for
    root = etree.Element(q("OAI-PMH"), nsmap={"oai": OAI_NS, "xsi": XSI_NS})
    root.set(f"{{{XSI_NS}}}schemaLocation", f"{OAI_NS} {OAI_SCHEMA}")
    etree.SubElement(root, q("responseDate")).text = datestamp(now)
    request = etree.SubElement(root, q("request"))
    request.text = base_url
    for name, value in sorted((arguments or {}).items()):
        request.set(name, value)
    return root


def errors(root: etree._Element, found: Sequence[tuple[str, str]]) -> None:
    for code, message in found:
        etree.SubElement(root, q("error"), code=code).text = message


def header(parent: etree._Element, identifier: str, stamp: datetime, sets: Sequence[str],
           deleted: bool) -> etree._Element:
    element = etree.SubElement(parent, q("header"))
    if deleted:
        element.set("status", "deleted")
    etree.SubElement(element, q("identifier")).text = identifier
    etree.SubElement(element, q("datestamp")).text = datestamp(stamp)
    for spec in sets:
        etree.SubElement(element, q("setSpec")).text = spec
    return element


def record(parent: etree._Element, identifier: str, stamp: datetime, sets: Sequence[str],
           deleted: bool, metadata: etree._Element | None) -> None:
    element = etree.SubElement(parent, q("record"))
    header(element, identifier, stamp, sets, deleted)
    if not deleted and metadata is not None:
        etree.SubElement(element, q("metadata")).append(metadata)


def resumption_token(parent: etree._Element, token: str, cursor: int, size: int) -> None:
    element = etree.SubElement(parent, q("resumptionToken"), cursor=str(cursor),
                               completeListSize=str(size))
    element.text = token or None


def dublin_core(resource: etree._Element, updated: str) -> etree._Element:
    """An ``oai_dc:dc`` summary of a VOResource record (OAI-PMH's mandatory format)."""
    dc = etree.Element(f"{{{OAI_DC_NS}}}dc", nsmap={"oai_dc": OAI_DC_NS, "dc": DC_NS,
                                                    "xsi": XSI_NS})
    dc.set(f"{{{XSI_NS}}}schemaLocation", f"{OAI_DC_NS} {OAI_DC_SCHEMA}")

    def add(tag: str, value: str | None) -> None:
        if value:
            etree.SubElement(dc, f"{{{DC_NS}}}{tag}").text = value

    add("title", resource.findtext("title"))
    add("identifier", resource.findtext("identifier"))
    for subject in resource.iterfind("content/subject"):
        add("subject", subject.text)
    add("description", resource.findtext("content/description"))
    add("publisher", resource.findtext("curation/publisher"))
    for name in resource.iterfind("curation/contact/name"):
        add("contributor", name.text)
    add("date", updated)
    add("type", resource.get(f"{{{XSI_NS}}}type"))
    add("identifier", resource.findtext("content/referenceURL"))
    add("rights", resource.findtext("rights"))
    return dc


def document(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

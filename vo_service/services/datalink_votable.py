"""The DataLink links document: a VOTable 1.4 (TABLEDATA) built with lxml.

The FIELDs are DataLink 1.1's (sect. 3.2: names, UCDs, ``content_length`` a long in
bytes, ``link_authorized`` a boolean); the results RESOURCE carries the standardID
INFO the standard requires.  When any row references the SODA service, the document
holds its service descriptor (DataLink 1.1 sect. 4; SODA 1.0 sect. 3.3): standardID
``ivo://ivoa.net/std/SODA#sync-1.0``, the accessURL, and the input parameters — ID
taken from the ID column of the links table (``ref``), CIRCLE, POLYGON and POS with
DALI xtypes and units — that the SODA endpoint accepts.

A links table is small (at most a few hundred rows), so it is built in memory.
"""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from vo_service.errors import VOTABLE_NS
from vo_service.serialize.votable import element
from vo_service.services.datalink import SODA_DESCRIPTOR_ID, Link
from vo_service.services.descriptors import DATALINK_STANDARD_ID
from vo_service.xml_text import xml_text

SODA_STANDARD_ID = "ivo://ivoa.net/std/SODA#sync-1.0"
_ID_FIELD = "dl_id"

# (name, datatype, ucd, extra attributes) in DataLink 1.1's order.
_FIELDS: tuple[tuple[str, str, str, dict[str, str]], ...] = (
    ("ID", "char", "meta.id;meta.main", {"ID": _ID_FIELD}),
    ("access_url", "char", "meta.ref.url", {}),
    ("service_def", "char", "meta.ref", {}),
    ("error_message", "char", "meta.code.error", {}),
    ("description", "char", "meta.note", {}),
    ("semantics", "char", "meta.code", {}),
    ("content_type", "char", "meta.code.mime", {}),
    ("content_length", "long", "phys.size;meta.file", {"unit": "byte"}),
    ("content_qualifier", "char", "meta.code.class", {}),
    ("local_semantics", "char", "meta.id.assoc", {}),
    ("link_auth", "char", "meta.code", {}),
    ("link_authorized", "boolean", "meta.code", {}),
)

_SODA_PARAMS: tuple[tuple[str, dict[str, str], str], ...] = (
    ("POS", {"datatype": "char", "arraysize": "*", "ucd": "pos.outline;obs"},
     "The region to cut out, as DALI shape text: CIRCLE ra dec radius, RANGE ra1 ra2 "
     "dec1 dec2, or POLYGON ra1 dec1 ra2 dec2 ... (degrees, ICRS)"),
    ("CIRCLE", {"datatype": "double", "arraysize": "3", "xtype": "circle", "unit": "deg",
                "ucd": "pos.outline;obs"},
     "A circle (ra dec radius, degrees, ICRS) the cutout should cover"),
    ("POLYGON", {"datatype": "double", "arraysize": "*", "xtype": "polygon",
                 "unit": "deg", "ucd": "pos.outline;obs"},
     "A polygon (ra1 dec1 ra2 dec2 ..., degrees, ICRS) the cutout should cover"),
    ("BAND", {"datatype": "double", "arraysize": "2", "xtype": "interval", "unit": "m",
              "ucd": "em.wl;stat.interval"},
     "A wavelength interval (metres); for images, it selects the whole image or none"),
)


def _param(parent: etree._Element, name: str, value: str, description: str,
           **attributes: str) -> etree._Element:
    param = element(parent, "PARAM", name=name, value=value, **attributes)
    element(param, "DESCRIPTION").text = description
    return param


def _cell(value: str | int | bool | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return xml_text(str(value))


def links_votable(links: Sequence[Link], soda_url: str, *, overflow: bool = False) -> bytes:
    """The links document (UTF-8 bytes, with XML declaration); ``overflow``: the links
    of some identifiers were left for another request (QUERY_STATUS OVERFLOW, DALI)."""
    root = etree.Element(f"{{{VOTABLE_NS}}}VOTABLE", nsmap={None: VOTABLE_NS},
                         version="1.4")
    resource = element(root, "RESOURCE", type="results")
    element(resource, "INFO", name="standardID", value=DATALINK_STANDARD_ID)
    if overflow:
        element(resource, "INFO", name="QUERY_STATUS", value="OVERFLOW").text = (
            "more identifiers were sent than one request answers; ask again for the "
            "identifiers that have no links here")
    table = element(resource, "TABLE")
    for name, datatype, ucd, extra in _FIELDS:
        attributes = {"name": name, "datatype": datatype, "ucd": ucd, **extra}
        if datatype == "char":
            attributes["arraysize"] = "*"
        element(table, "FIELD", **attributes)
    rows = element(element(table, "DATA"), "TABLEDATA")
    for link in links:
        row = element(rows, "TR")
        for value in (link.id, link.access_url, link.service_def, link.error_message,
                      link.description, link.semantics, link.content_type,
                      link.content_length, link.content_qualifier, link.local_semantics,
                      link.link_auth, link.link_authorized):
            element(row, "TD").text = _cell(value)
    if any(link.service_def == SODA_DESCRIPTOR_ID for link in links):
        _soda_descriptor(root, soda_url)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _soda_descriptor(root: etree._Element, soda_url: str) -> None:
    resource = element(root, "RESOURCE", type="meta", utype="adhoc:service",
                   ID=SODA_DESCRIPTOR_ID, name="SODA cutouts")
    element(resource, "DESCRIPTION").text = (
        "Cutouts of the archive's images by sky region (SODA 1.0, synchronous); the "
        "result is a FITS file.")
    _param(resource, "standardID", SODA_STANDARD_ID, "service protocol standard id",
           datatype="char", arraysize="*")
    _param(resource, "accessURL", soda_url, "access url of the service",
           datatype="char", arraysize="*")
    _param(resource, "contentType", "application/fits", "media type of the result",
           datatype="char", arraysize="*")
    group = element(resource, "GROUP", name="inputParams")
    _param(group, "ID", "", "The publisher dataset identifier of the image to cut",
           datatype="char", arraysize="*", ucd="meta.id;meta.main", ref=_ID_FIELD)
    for name, attributes, description in _SODA_PARAMS:
        _param(group, name, "", description, **attributes)

"""The DataLink service descriptor that query results on ObsCore carry.

DataLink 1.1 sect. 4 (Service Descriptors): a ``RESOURCE type="meta"
utype="adhoc:service"`` after the results tells a client that each row's links are at
the {links} endpoint, with the ID parameter taken from the row's ``obs_publisher_did``
FIELD (``ref``).  pyvo (``iter_datalinks``, ``getdatalink``) and TOPCAT's DataLink
window find a result's links through it.  TAP and SIA results write it whenever they
have that column.
"""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from vo_service.result import ResultColumn
from vo_service.serialize.votable import element, safe_ids

DATALINK_STANDARD_ID = "ivo://ivoa.net/std/DataLink#links-1.1"
DATALINK_MEDIA_TYPE = "application/x-votable+xml;content=datalink"
DID_COLUMN = "obs_publisher_did"
#: The descriptor's XML ID: it must not clash with a FIELD's.
DESCRIPTOR_ID = "datalink"


def serialized(element: etree._Element) -> bytes:
    """An element as it goes into a streamed document (no XML declaration)."""
    return etree.tostring(element, encoding="UTF-8", pretty_print=True).replace(
        b"<?xml version='1.0' encoding='UTF-8'?>\n", b"")


def links_element(links_url: str, columns: Sequence[ResultColumn]) -> etree._Element | None:
    """The DataLink {links} descriptor for a result with these columns; None when no
    column is ``obs_publisher_did`` (or its FIELD ID would clash with the descriptor)."""
    names = [c.name for c in columns]
    if DID_COLUMN not in names:
        return None
    ids = safe_ids(names)  # the IDs the result writers give the FIELDs
    if DESCRIPTOR_ID in {i.lower() for i in ids}:
        return None
    resource = element(None, "RESOURCE", type="meta", utype="adhoc:service",
                        name=DESCRIPTOR_ID, ID=DESCRIPTOR_ID)
    element(resource, "DESCRIPTION").text = (
        "DataLink links of each dataset: the file, its header, a preview, the night's "
        "calibration frames and cutouts.")
    for name, value in (("standardID", DATALINK_STANDARD_ID), ("accessURL", links_url),
                        ("contentType", DATALINK_MEDIA_TYPE)):
        element(resource, "PARAM", name=name, datatype="char", arraysize="*", value=value)
    group = element(resource, "GROUP", name="inputParams")
    element(group, "PARAM", name="ID", datatype="char", arraysize="*",
             ucd="meta.id;meta.main", ref=ids[names.index(DID_COLUMN)], value="")
    return resource


def links_descriptor(links_url: str, columns: Sequence[ResultColumn]) -> bytes:
    """:func:`links_element` serialized, or nothing."""
    element = links_element(links_url, columns)
    return b"" if element is None else serialized(element)

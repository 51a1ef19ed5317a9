"""The SIA service's own documents: its VOSI capabilities and the service descriptors
its results carry (DataLink 1.1 sect. 4, Service Descriptors).

Every SIA result VOTable gets two ``RESOURCE type="meta" utype="adhoc:service"``
elements after its results: the DataLink {links} service (its ID parameter refers to
the obs_publisher_did FIELD, so that pyvo and TOPCAT find each row's links), and the
self-description ``name="this"`` of the query's parameters (SIA 2.0, the SIA {query}
service descriptor), which under MAXREC=0 also lists the current values of
COLLECTION, INSTRUMENT...

Both go to the result writers as ``ResultInfo.resources``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

from lxml import etree

from vo_service.result import ResultColumn
from vo_service.serialize import vosi
from vo_service.serialize.formats import SUPPORTED_FORMATS
from vo_service.serialize.votable import element, safe_ids
from vo_service.services.descriptors import links_descriptor, serialized
from vo_service.services.sia_params import PARAMETERS, POL_STATES, SiaParameter

log = logging.getLogger("lick_archive.sia")

SIA_STANDARD_ID = "ivo://ivoa.net/std/SIA#query-2.0"
#: The ID of the self-description (SIA 2.0's ``name="this"``, also as its XML ID).
THIS = "this"


def _text_param(parent: etree._Element, name: str, value: str) -> None:
    element(parent, "PARAM", name=name, datatype="char", arraysize="*", value=value)


def _input(group: etree._Element, parameter: SiaParameter) -> etree._Element:
    """An input PARAM as DataLink describes them: empty value, type, unit, xtype.

    Intervals are DALI's (double[2], xtype interval); POS is one text PARAM whose
    description gives its three forms — SIA 2.0's example of three POS PARAMs with
    xtypes circle/range/polygon on text is refused by VOTable validators (DALI's
    circle and polygon are double arrays; range is not a DALI xtype).
    """
    attributes = {"name": parameter.name}
    if parameter.kind in ("overlap", "within"):
        attributes.update(datatype="double", arraysize="2", xtype="interval")
    elif parameter.kind == "int":
        attributes.update(datatype="int")
    else:
        attributes.update(datatype="char", arraysize="*")
    if parameter.unit is not None:
        attributes["unit"] = parameter.unit
    param = element(group, "PARAM", **attributes, value="")
    element(param, "DESCRIPTION").text = parameter.description
    return param


def _options(param: etree._Element, values: Iterable[str]) -> None:
    listed = element(param, "VALUES")
    for value in values:
        element(listed, "OPTION", value=value)


def self_description(query_url: str, options: Mapping[str, Sequence[str]] | None
                     ) -> etree._Element:
    """The query's self-describing service descriptor (SIA 2.0, the SIA {query} service
    descriptor); with
    ``options``, the values to offer per parameter name (MAXREC=0)."""
    resource = element(None, "RESOURCE", type="meta", utype="adhoc:service", name=THIS,
                        ID=THIS)
    element(resource, "DESCRIPTION").text = (
        "SIA 2.0 image search of the Lick Observatory archive: images (dataproduct_type "
        "image or cube) whose ObsCore metadata satisfy every parameter given; repeated "
        "parameters are alternatives.  Spectra are found through the TAP service.")
    _text_param(resource, "standardID", SIA_STANDARD_ID)
    _text_param(resource, "accessURL", query_url)
    group = element(resource, "GROUP", name="inputParams")
    for parameter in PARAMETERS:
        param = _input(group, parameter)
        if parameter.kind == "pol":
            _options(param, POL_STATES)
        elif options is not None and parameter.name in options:
            _options(param, options[parameter.name])
    maxrec = element(group, "PARAM", name="MAXREC", datatype="int", value="")
    element(maxrec, "DESCRIPTION").text = ("Most rows to return; 0 for this description "
                                            "and the columns only")
    responseformat = element(group, "PARAM", name="RESPONSEFORMAT", datatype="char",
                              arraysize="*", value="")
    element(responseformat, "DESCRIPTION").text = "Output format (default: VOTable BINARY2)"
    _options(responseformat, [f.mime_type for f in SUPPORTED_FORMATS])
    return resource


def descriptors(query_url: str, links_url: str, columns: Sequence[ResultColumn],
                options: Mapping[str, Sequence[str]] | None) -> bytes:
    """Both descriptors, serialized for the results' ``ResultInfo.resources``."""
    ids = {i.lower() for i in safe_ids([c.name for c in columns])}
    assert THIS not in ids, "a FIELD ID would clash with the self-description's"
    return links_descriptor(links_url, columns) + serialized(
        self_description(query_url, options))


def sia_capabilities(base_url: str) -> bytes:
    """VOSI capabilities of the SIA service (SIA 2.0, Capabilities): the query, VOSI
    capabilities and availability, each with the interfaces every capability of
    this service declares.

    The query capability is the plain one of SIA 2.0's example, without
    SimpleDALRegExt's ``sia:SimpleImageAccess`` details: pyvo (1.10) warns three
    times on every ``SIA2Service`` about that type and its elements, and nothing
    in it matters to a client (its limits are in the self-description).
    """
    return vosi.service_capabilities(
        vosi.Endpoint(SIA_STANDARD_ID, f"{base_url}/query", role="std", version="2.0"),
        base_url)

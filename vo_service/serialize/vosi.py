"""VOSI 1.1 availability and capabilities documents (TAPRegExt 1.0 for TAP).

The tableset comes from :mod:`tap_schema.vosi`; this module builds the other two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from vo_service.security import SECURITY_METHODS

AVAILABILITY_NS = "http://www.ivoa.net/xml/VOSIAvailability/v1.0"
CAPABILITIES_NS = "http://www.ivoa.net/xml/VOSICapabilities/v1.0"
VR_NS = "http://www.ivoa.net/xml/VOResource/v1.0"
VS_NS = "http://www.ivoa.net/xml/VODataService/v1.1"
TR_NS = "http://www.ivoa.net/xml/TAPRegExt/v1.0"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XSI_TYPE = f"{{{XSI_NS}}}type"


def _tostring(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def availability(available: bool, note: str, up_since: datetime | None = None) -> bytes:
    root = etree.Element(f"{{{AVAILABILITY_NS}}}availability", nsmap={"avl": AVAILABILITY_NS})
    etree.SubElement(root, f"{{{AVAILABILITY_NS}}}available").text = (
        "true" if available else "false")
    if up_since is not None and available:
        etree.SubElement(root, f"{{{AVAILABILITY_NS}}}upSince").text = (
            up_since.strftime("%Y-%m-%dT%H:%M:%SZ"))
    etree.SubElement(root, f"{{{AVAILABILITY_NS}}}note").text = note
    return _tostring(root)


def service_capabilities(service: Endpoint, base_url: str) -> bytes:
    """The VOSI capabilities of a service without registry extensions of its own (SIA
    2.0 as in its example, SODA 1.0): ``service``, then VOSI capabilities and
    availability at ``base_url``, each with the interfaces every capability of this
    site declares."""
    nsmap = {"vosi": CAPABILITIES_NS, "vr": VR_NS, "vs": VS_NS, "xsi": XSI_NS}
    root = etree.Element(f"{{{CAPABILITIES_NS}}}capabilities", nsmap=nsmap)
    for endpoint in (
        service,
        Endpoint("ivo://ivoa.net/std/VOSI#capabilities", f"{base_url}/capabilities"),
        Endpoint("ivo://ivoa.net/std/VOSI#availability", f"{base_url}/availability"),
    ):
        _interfaces(_capability(root, endpoint), endpoint)
    return _tostring(root)


@dataclass(frozen=True)
class Endpoint:
    """One capability: its standardID and access URL (``use`` per VOResource)."""

    standard_id: str | None
    url: str
    use: str = "full"
    role: str | None = None
    version: str | None = None
    xsi_type: str | None = None


@dataclass(frozen=True)
class LanguageFeature:
    type: str
    form: str
    description: str


@dataclass(frozen=True)
class OutputFormatDescription:
    mime: str
    ivo_id: str | None
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class TapLimits:
    retention_default_s: int
    retention_hard_s: int
    execution_default_s: int
    execution_hard_s: int
    output_default_rows: int
    output_hard_rows: int
    upload_default_bytes: int
    upload_hard_bytes: int


def _interfaces(capability: etree._Element, endpoint: Endpoint) -> None:
    """One interface per security method; the anonymous one carries role="std"
    (TAPRegExt: a single standard interface; the others are its secured twins)."""
    for method in SECURITY_METHODS:
        interface = etree.SubElement(capability, "interface")
        interface.set(XSI_TYPE, "vs:ParamHTTP")
        if endpoint.role and method is None:
            interface.set("role", endpoint.role)
        if endpoint.version:
            interface.set("version", endpoint.version)
        etree.SubElement(interface, "accessURL", use=endpoint.use).text = endpoint.url
        if method is not None:
            etree.SubElement(interface, "securityMethod", standardID=method)


def _capability(root: etree._Element, endpoint: Endpoint) -> etree._Element:
    capability = etree.SubElement(root, "capability")
    if endpoint.standard_id:
        capability.set("standardID", endpoint.standard_id)
    if endpoint.xsi_type:
        capability.set(XSI_TYPE, endpoint.xsi_type)
    return capability


def _limit(parent: etree._Element, tag: str, default: int, hard: int,
           unit: str | None = None) -> None:
    element = etree.SubElement(parent, tag)
    for name, value in (("default", default), ("hard", hard)):
        child = etree.SubElement(element, name)
        child.text = str(value)
        if unit:
            child.set("unit", unit)


def tap_capabilities(
    base_url: str,
    features: Sequence[LanguageFeature],
    formats: Sequence[OutputFormatDescription],
    limits: TapLimits,
    extra: Sequence[Endpoint] = (),
) -> bytes:
    """The TAP service's VOSI capabilities (TAP 1.1 sect. 2.4, TAPRegExt 1.0)."""
    nsmap = {"vosi": CAPABILITIES_NS, "vr": VR_NS, "vs": VS_NS, "tr": TR_NS, "xsi": XSI_NS}
    root = etree.Element(f"{{{CAPABILITIES_NS}}}capabilities", nsmap=nsmap)
    tap = Endpoint("ivo://ivoa.net/std/TAP", base_url, use="base", role="std",
                   version="1.1", xsi_type="tr:TableAccess")
    capability = _capability(root, tap)
    _interfaces(capability, tap)
    model = etree.SubElement(capability, "dataModel", {"ivo-id": "ivo://ivoa.net/std/ObsCore#core-1.1"})
    model.text = "ObsCore-1.1"
    language = etree.SubElement(capability, "language")
    etree.SubElement(language, "name").text = "ADQL"
    for version, ivo_id in (("2.0", "ivo://ivoa.net/std/ADQL#v2.0"),
                            ("2.1", "ivo://ivoa.net/std/ADQL#v2.1")):
        etree.SubElement(language, "version", {"ivo-id": ivo_id}).text = version
    etree.SubElement(language, "description").text = (
        "ADQL 2.1 translated to PostgreSQL with pgSphere for geometry.")
    by_type: dict[str, list[LanguageFeature]] = {}
    for feature in features:
        by_type.setdefault(feature.type, []).append(feature)
    for feature_type, group in by_type.items():
        element = etree.SubElement(language, "languageFeatures", type=feature_type)
        for feature in group:
            item = etree.SubElement(element, "feature")
            etree.SubElement(item, "form").text = feature.form
            if feature.description:
                etree.SubElement(item, "description").text = feature.description
    for fmt in formats:
        element = etree.SubElement(capability, "outputFormat")
        if fmt.ivo_id:
            element.set("ivo-id", fmt.ivo_id)
        etree.SubElement(element, "mime").text = fmt.mime
        for alias in fmt.aliases:
            etree.SubElement(element, "alias").text = alias
    for method in ("inline", "http", "https"):
        etree.SubElement(capability, "uploadMethod",
                         {"ivo-id": f"ivo://ivoa.net/std/TAPRegExt#upload-{method}"})
    _limit(capability, "retentionPeriod", limits.retention_default_s, limits.retention_hard_s)
    _limit(capability, "executionDuration", limits.execution_default_s,
           limits.execution_hard_s)
    _limit(capability, "outputLimit", limits.output_default_rows, limits.output_hard_rows,
           "row")
    _limit(capability, "uploadLimit", limits.upload_default_bytes, limits.upload_hard_bytes,
           "byte")
    for endpoint in (
        Endpoint("ivo://ivoa.net/std/VOSI#capabilities", f"{base_url}/capabilities"),
        Endpoint("ivo://ivoa.net/std/VOSI#availability", f"{base_url}/availability"),
        Endpoint("ivo://ivoa.net/std/VOSI#tables-1.1", f"{base_url}/tables"),
        Endpoint("ivo://ivoa.net/std/DALI#examples", f"{base_url}/examples"),
        *extra,
    ):
        vosi = _capability(root, endpoint)
        _interfaces(vosi, endpoint)
    return _tostring(root)

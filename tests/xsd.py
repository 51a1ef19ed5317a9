"""Offline XML Schema validation against the IVOA schemas copied in tests/data/xsd.

Schemas import each other by URL; a resolver maps every such URL to the local copy,
so validation never reaches the network.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

XSD_DIR = Path(__file__).resolve().parent / "data" / "xsd"

# namespace or URL fragment -> local file
_LOCAL = {
    "VOResource": "VOResource-v1.1.xsd",
    "VODataService": "VODataService.xsd",
    "stc": "stc-v1.30.xsd",
    "xlink": "xlink.xsd",
    "XMLSchema.xsd": "xml.xsd",
    "xml.xsd": "xml.xsd",
    "simpledc": "simpledc20021212.xsd",
    "VOTable": "VOTable.xsd",
    "TAPRegExt": "TAPRegExt-v1.0.xsd",
    "VOSICapabilities": "VOSICapabilities-v1.0.xsd",
    "VORegistry": "VORegistry.xsd",
    "oai_dc": "oai_dc.xsd",
    "SIA": "SIA.xsd",
    "RegistryInterface": "RegistryInterface.xsd",
}


class _Resolver(etree.Resolver):
    def resolve(self, url, pubid, context):  # type: ignore[no-untyped-def]
        name = url.rstrip("/").split("/")[-1]
        if (XSD_DIR / name).exists():
            return self.resolve_filename(str(XSD_DIR / name), context)
        for key, local in _LOCAL.items():
            if key in url:
                return self.resolve_filename(str(XSD_DIR / local), context)
        raise ValueError(f"schema {url} is not available offline")


# root schemas by the namespace of the document element
ROOT_SCHEMAS = {
    "http://www.ivoa.net/xml/VOSITables/v1.0": "VOSITables-v1.1.xsd",
    "http://www.ivoa.net/xml/VOSIAvailability/v1.0": "VOSIAvailability-v1.0.xsd",
    "http://www.ivoa.net/xml/VOSICapabilities/v1.0": "VOSICapabilities-v1.0.xsd",
    "http://www.ivoa.net/xml/VOTable/v1.3": "VOTable.xsd",
    "http://www.ivoa.net/xml/UWS/v1.0": "UWS.xsd",
    "http://www.openarchives.org/OAI/2.0/": "OAI-PMH.xsd",
    "http://www.ivoa.net/xml/RegistryInterface/v1.0": "RegistryInterface.xsd",
}

# extension schemas whose xsi:types appear in documents
# (RegistryInterface and oai_dc: the records inside OAI-PMH answers, which its schema
# checks strictly)
_EXTENSIONS = ("TAPRegExt-v1.0.xsd", "VODataService.xsd", "SIA.xsd", "VORegistry.xsd",
               "RegistryInterface.xsd", "oai_dc.xsd")


@cache
def schema_for(namespace: str) -> etree.XMLSchema:
    root = ROOT_SCHEMAS[namespace]
    imports = [f'<xs:import namespace="{namespace}" schemaLocation="{XSD_DIR / root}"/>']
    for extension in _EXTENSIONS:
        tree = etree.parse(str(XSD_DIR / extension))
        target = tree.getroot().get("targetNamespace")
        if target != namespace:
            imports.append(
                f'<xs:import namespace="{target}" schemaLocation="{XSD_DIR / extension}"/>')
    wrapper = (
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">' + "".join(imports)
        + "</xs:schema>"
    )
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_Resolver())
    return etree.XMLSchema(etree.fromstring(wrapper.encode(), parser))


def validate(document: bytes) -> etree._Element:
    """Parse and validate; raises AssertionError with the schema's complaints."""
    root = etree.fromstring(document)
    namespace = etree.QName(root).namespace
    assert namespace is not None, "document element has no namespace"
    schema = schema_for(namespace)
    if not schema.validate(root):
        errors = "\n".join(str(e) for e in schema.error_log)
        raise AssertionError(f"invalid {etree.QName(root).localname}:\n{errors}")
    return root

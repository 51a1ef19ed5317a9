"""The VOResource records this site publishes, built from configuration and live metadata.

Nothing here is hand-kept XML: the services' capabilities are the very documents
``/tap/capabilities`` and ``/sia/capabilities`` serve (their ``capability`` elements
are copied), the TAP tableset is the one ``/tap/tables`` serves, names and contacts
come from ``[service]``, the description and subjects from ``[registry]``, and the
coverage, the instruments and the collections from the public data
(:mod:`vo_service.services.coverage`).  So a record cannot drift from the service it
describes.

Records (``ivo://<authority>...``): the Authority, the publishing Registry (vg:Harvest
at ``/oai``), the Organisation (the observatory), the TAP service and the SIA service
(vs:CatalogService), and one vs:CatalogResource per collection with public data, with
auxiliary capabilities pointing at TAP and SIA (VODataService 1.2 and the IVOA note
"Discovering Data Collections Within Services").

Each builder returns a ``ri:Resource`` element without its ``created``/``updated``
dates: the publisher (:mod:`vo_service.services.registry_store`) hashes the content,
and sets the dates from the history of that content.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from lxml import etree

from vo_service.services.coverage import Coverage, union
from vo_service.settings import Settings

RI_NS = "http://www.ivoa.net/xml/RegistryInterface/v1.0"
VR_NS = "http://www.ivoa.net/xml/VOResource/v1.0"
VS_NS = "http://www.ivoa.net/xml/VODataService/v1.1"
VG_NS = "http://www.ivoa.net/xml/VORegistry/v1.0"
TR_NS = "http://www.ivoa.net/xml/TAPRegExt/v1.0"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XSI_TYPE = f"{{{XSI_NS}}}type"
NSMAP = {"ri": RI_NS, "vr": VR_NS, "vs": VS_NS, "vg": VG_NS, "tr": TR_NS, "xsi": XSI_NS}

#: The OAI-PMH set of the records of the authorities this registry manages.
MANAGED_SET = "ivo_managed"
TAP_AUX = "ivo://ivoa.net/std/TAP#aux"
SIA_AUX = "ivo://ivoa.net/std/SIA#query-aux-2.0"
SIA_QUERY = "ivo://ivoa.net/std/SIA#query-2.0"
MOC_STANDARD = "ivo://ivoa.net/std/moc"


@dataclass(frozen=True)
class ServiceDocuments:
    """What the services serve about themselves: the bytes of their VOSI documents."""

    tap_capabilities: bytes
    sia_capabilities: bytes
    tableset: bytes


@dataclass(frozen=True)
class BuiltRecord:
    identifier: str
    resource_type: str  # the xsi:type, e.g. vs:CatalogService
    title: str
    resource: etree._Element  # ri:Resource without created/updated
    sets: tuple[str, ...] = (MANAGED_SET,)


def collection_slug(collection: str) -> str:
    """``Lick/Kast`` → ``lick-kast``: the resource key of a collection's record."""
    return re.sub(r"[^a-z0-9]+", "-", collection.lower()).strip("-") or "archive"


class RecordBuilder:
    """The records of one configuration over the given documents and coverages."""

    def __init__(self, settings: Settings, documents: ServiceDocuments,
                 coverages: Sequence[Coverage]) -> None:
        self.settings = settings
        self.service = settings.service
        self.registry = settings.registry
        self.documents = documents
        self.coverages = list(coverages)
        self.base_url = settings.service.base_url.rstrip("/")
        self.authority = f"ivo://{settings.service.authority}"

    # -- identifiers ------------------------------------------------------------------

    @property
    def organisation_id(self) -> str:
        return f"{self.authority}/org"

    @property
    def registry_id(self) -> str:
        return self.registry_identifier(self.settings)

    @staticmethod
    def registry_identifier(settings: Settings) -> str:
        return f"ivo://{settings.service.authority}/registry"

    @property
    def tap_id(self) -> str:
        return f"{self.authority}/tap"

    @property
    def sia_id(self) -> str:
        return f"{self.authority}/sia"

    def collection_id(self, collection: str) -> str:
        return f"{self.authority}/collections/{collection_slug(collection)}"

    # -- the records ------------------------------------------------------------------

    def records(self) -> list[BuiltRecord]:
        built = [self.authority_record(), self.registry_record(),
                 self.organisation_record(), self.tap_record(), self.sia_record()]
        built.extend(self.collection_record(c) for c in self.coverages)
        return built

    def authority_record(self) -> BuiltRecord:
        title = f"{self.service.title} naming authority"
        root = self._resource("vg:Authority", title, self.authority, self.service.short_name,
                              f"The authority under which the {self.service.title} "
                              "registers its services and data collections.",
                              content_type="Other")
        managing = etree.SubElement(root, "managingOrg", {"ivo-id": self.organisation_id})
        managing.text = self.service.publisher
        return BuiltRecord(self.authority, "vg:Authority", title, root)

    def registry_record(self) -> BuiltRecord:
        title = f"{self.service.title} publishing registry"
        root = self._resource("vg:Registry", title, self.registry_id, "Lick Registry",
                              f"The OAI-PMH publishing registry of the {self.service.title}: "
                              "the records of its authority, services and data collections.",
                              content_type="Registry")
        capability = etree.SubElement(root, "capability", {
            XSI_TYPE: "vg:Harvest", "standardID": "ivo://ivoa.net/std/Registry"})
        interface = etree.SubElement(capability, "interface", {
            XSI_TYPE: "vg:OAIHTTP", "role": "std", "version": "1.0"})
        etree.SubElement(interface, "accessURL", use="base").text = f"{self.base_url}/oai"
        etree.SubElement(capability, "maxRecords").text = str(self.registry.page_size)
        etree.SubElement(root, "full").text = "false"
        etree.SubElement(root, "managedAuthority").text = self.service.authority
        return BuiltRecord(self.registry_id, "vg:Registry", title, root)

    def organisation_record(self) -> BuiltRecord:
        title = self.service.publisher
        root = self._resource("vr:Organisation", title, self.organisation_id,
                              "Lick Obs.",
                              f"{self.service.publisher}, which runs the telescopes on "
                              f"Mt. Hamilton and the {self.service.title}.",
                              content_type="Organisation")
        everything = union(self.coverages, self.registry.moc_order)
        for facility in everything.facilities:
            etree.SubElement(root, "facility").text = facility
        for instrument in everything.instruments:
            etree.SubElement(root, "instrument").text = instrument
        return BuiltRecord(self.organisation_id, "vr:Organisation", title, root)

    def tap_record(self) -> BuiltRecord:
        title = f"{self.service.title} TAP service"
        root = self._resource(
            "vs:CatalogService", title, self.tap_id, "Lick TAP",
            f"{self.registry.description}  This TAP service answers ADQL 2.1 over "
            "ivoa.obscore (ObsCore 1.1) and lick.files (the archive's own columns).",
            content_type="Archive", related=[("IsServiceFor", c) for c in self.coverages])
        self._rights(root)
        self._capabilities(root, self.documents.tap_capabilities)
        self._data(root, union(self.coverages, self.registry.moc_order))
        root.append(self._tableset(None))
        return BuiltRecord(self.tap_id, "vs:CatalogService", title, root)

    def sia_record(self) -> BuiltRecord:
        title = f"{self.service.title} SIA service"
        images = [c for c in self.coverages if "image" in c.product_types]
        root = self._resource(
            "vs:CatalogService", title, self.sia_id, "Lick SIA",
            f"{self.registry.description}  This SIA 2.0 service finds the archive's "
            "images by position, time, band and more.",
            content_type="Archive",
            related=[("IsServiceFor", c) for c in self.coverages if c in images])
        self._rights(root)
        self._capabilities(root, self.documents.sia_capabilities)
        self._data(root, union(images, self.registry.moc_order))
        root.append(self._tableset("ivoa.obscore"))
        return BuiltRecord(self.sia_id, "vs:CatalogService", title, root)

    def collection_record(self, coverage: Coverage) -> BuiltRecord:
        name = coverage.collection
        identifier = self.collection_id(name)
        instruments = ", ".join(coverage.instruments) or "the archive's instruments"
        title = f"{self.service.title}: {name}"
        related = [("IsServedBy", self.tap_id)]
        if "image" in coverage.product_types:
            related.append(("IsServedBy", self.sia_id))
        root = self._resource(
            "vs:CatalogResource", title, identifier, _short(name),
            f"The {name} collection of the {self.service.title}: raw frames "
            f"({', '.join(coverage.product_types) or 'data'}) from {instruments}. "
            f"In ivoa.obscore, select obs_collection = '{name}'.  {self.registry.description}",
            content_type="Archive", related_ids=related)
        self._rights(root)
        self._endpoint(root, TAP_AUX, self.base_url + "/tap", "base", version="1.1")
        if "image" in coverage.product_types:
            self._endpoint(root, SIA_AUX, self.base_url + "/sia/query", "base", version="2.0")
        self._data(root, coverage)
        root.append(self._tableset("ivoa.obscore"))
        return BuiltRecord(identifier, "vs:CatalogResource", title, root)

    # -- parts -------------------------------------------------------------------------

    def _resource(self, xsi_type: str, title: str, identifier: str, short_name: str,
                  description: str, *, content_type: str,
                  related: Sequence[tuple[str, Coverage]] = (),
                  related_ids: Sequence[tuple[str, str]] = ()) -> etree._Element:
        root = etree.Element(f"{{{RI_NS}}}Resource", {XSI_TYPE: xsi_type, "status": "active"},
                             nsmap=NSMAP)
        etree.SubElement(root, "title").text = title
        etree.SubElement(root, "shortName").text = short_name[:16]
        etree.SubElement(root, "identifier").text = identifier
        curation = etree.SubElement(root, "curation")
        publisher = etree.SubElement(curation, "publisher", {"ivo-id": self.organisation_id})
        publisher.text = self.service.publisher
        contact = etree.SubElement(curation, "contact")
        etree.SubElement(contact, "name").text = self.service.contact_name
        etree.SubElement(contact, "email").text = self.service.contact_email
        content = etree.SubElement(root, "content")
        for subject in self.registry.subjects:
            etree.SubElement(content, "subject").text = subject
        etree.SubElement(content, "description").text = description
        etree.SubElement(content, "referenceURL").text = (
            self.registry.reference_url or self.base_url + "/")
        etree.SubElement(content, "type").text = content_type
        etree.SubElement(content, "contentLevel").text = "Research"
        pairs = [(kind, self.collection_id(c.collection), c.collection) for kind, c in related]
        pairs += [(kind, ident, self._title_of(ident)) for kind, ident in related_ids]
        by_kind: dict[str, list[tuple[str, str]]] = {}
        for kind, ident, name in pairs:
            by_kind.setdefault(kind, []).append((ident, name))
        for kind, targets in by_kind.items():
            relationship = etree.SubElement(content, "relationship")
            etree.SubElement(relationship, "relationshipType").text = kind
            for ident, name in targets:
                etree.SubElement(relationship, "relatedResource", {"ivo-id": ident}).text = name
        return root

    def _title_of(self, identifier: str) -> str:
        if identifier == self.tap_id:
            return f"{self.service.title} TAP service"
        if identifier == self.sia_id:
            return f"{self.service.title} SIA service"
        return identifier

    def _rights(self, root: etree._Element) -> None:
        etree.SubElement(root, "rights").text = (
            "Public data may be used freely; please acknowledge Lick Observatory.  "
            "Proprietary data are visible to their owners only, until their release date.")

    def _capabilities(self, root: etree._Element, document: bytes) -> None:
        """The ``capability`` elements of a VOSI capabilities document, unchanged."""
        source = etree.fromstring(document)
        for capability in source.iterchildren("capability"):
            root.append(copy.deepcopy(capability))

    def _endpoint(self, root: etree._Element, standard_id: str, url: str, use: str,
                  version: str) -> etree._Element:
        """An auxiliary capability of a collection: the service's standard interface."""
        capability = etree.SubElement(root, "capability", standardID=standard_id)
        interface = etree.SubElement(capability, "interface", {
            XSI_TYPE: "vs:ParamHTTP", "role": "std", "version": version})
        etree.SubElement(interface, "accessURL", use=use).text = url
        return interface

    def _data(self, root: etree._Element, coverage: Coverage) -> None:
        """DataResource's facility, instrument and coverage (VODataService 1.2)."""
        for facility in coverage.facilities:
            etree.SubElement(root, "facility").text = facility
        for instrument in coverage.instruments:
            etree.SubElement(root, "instrument").text = instrument
        element = etree.SubElement(root, "coverage")
        etree.SubElement(element, "spatial").text = coverage.moc_text(
            self.registry.record_moc_order)
        if coverage.t_min is not None and coverage.t_max is not None:
            etree.SubElement(element, "temporal").text = (
                f"{coverage.t_min:.5f} {coverage.t_max:.5f}")
        energy = coverage.energy_span()
        if energy is not None:
            etree.SubElement(element, "spectral").text = f"{energy[0]:.6g} {energy[1]:.6g}"
        query = ("?" + urlencode({"COLLECTION": coverage.collection})
                 if coverage.collection else "")
        etree.SubElement(element, "footprint", {"ivo-id": MOC_STANDARD}).text = (
            f"{self.base_url}/coverage{query}")
        for band in _wavebands(coverage):
            etree.SubElement(element, "waveband").text = band

    def _tableset(self, only: str | None) -> etree._Element:
        """The tableset of ``/tap/tables`` (every table, or only the table ``only``)."""
        source = etree.fromstring(self.documents.tableset)
        tableset = etree.Element("tableset")
        for schema in source.iterchildren("schema"):
            kept = copy.deepcopy(schema)
            if only is not None:
                tables = list(kept.iterchildren("table"))
                for table in tables:
                    if table.findtext("name") != only:
                        kept.remove(table)
                if not any(True for _ in kept.iterchildren("table")):
                    continue
            tableset.append(kept)
        return tableset


def _short(collection: str) -> str:
    return collection.rsplit("/", 1)[-1][:16] or "collection"


def _wavebands(coverage: Coverage) -> list[str]:
    """Messenger terms (http://www.ivoa.net/rdf/messenger) the spectral span touches."""
    if coverage.em_min is None or coverage.em_max is None:
        return []
    bands = []
    for name, low, high in (("Optical", 3.0e-7, 1.0e-6), ("Infrared", 1.0e-6, 1.0e-4)):
        if coverage.em_min < high and coverage.em_max > low:
            bands.append(name)
    return bands

"""A full harvest of the demo archive's registry, as the Registry of Registries does it.

The demo archive is ingested through the real CLI (``lick-archive ingest`` ends with a
registry refresh); the harvest must validate record by record, publish one collection
record per collection an anonymous TAP client sees, and a coverage that holds every
public pointing.  Other servers of the suite publish into the same database with
their own base URLs, so only identifiers and coverage are compared here (the
datestamp tests run on databases of their own).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import astropy.units as u
import httpx
import pytest
from astropy.coordinates import Latitude, Longitude
from mocpy import MOC

from tests.registry.harvest import XSI_TYPE, harvest, resource_of


@pytest.fixture(scope="module")
def client(server, archive) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=120) as c:
        yield c


def tap_rows(client: httpx.Client, query: str) -> list[list[str]]:
    reply = client.get("/tap/sync", params={"LANG": "ADQL", "QUERY": query, "FORMAT": "csv"})
    assert reply.status_code == 200, reply.text[:300]
    return [line.split(",") for line in reply.text.strip().splitlines()[1:]]


def test_full_harvest_of_the_demo_archive(client, server) -> None:
    found = harvest(client, "ListRecords", metadataPrefix="ivo_vor")  # validated page by page
    live = {}
    for item in found.items:
        resource = resource_of(item)
        if resource is not None:
            live[resource.findtext("identifier")] = resource.get(XSI_TYPE)
    authority = "ivo://" + server.database.settings.service.authority
    collections = {row[0] for row in tap_rows(
        client, "SELECT DISTINCT obs_collection FROM ivoa.obscore")}
    assert collections, "the demo archive has public data"
    expected = {f"{authority}/collections/{c.lower().replace('/', '-')}" for c in collections}
    assert {i for i in live if "/collections/" in i} == expected
    assert {live[i] for i in expected} == {"vs:CatalogResource"}
    for suffix, kind in (("", "vg:Authority"), ("/registry", "vg:Registry"),
                         ("/org", "vr:Organisation"), ("/tap", "vs:CatalogService"),
                         ("/sia", "vs:CatalogService")):
        assert live[authority + suffix] == kind
    dc = harvest(client, "ListRecords", metadataPrefix="oai_dc")
    # (a set: a record re-published during the harvest comes again later in the list)
    assert set(dc.identifiers()) == set(found.identifiers())


def test_coverage_holds_every_public_pointing(client) -> None:
    reply = client.get("/coverage", params={"FORMAT": "json"})
    assert reply.status_code == 200
    moc = MOC.from_json(json.loads(reply.content))
    rows = tap_rows(client, "SELECT s_ra, s_dec FROM ivoa.obscore WHERE s_ra IS NOT NULL")
    assert rows
    ra = [float(r[0]) for r in rows]
    dec = [float(r[1]) for r in rows]
    inside = moc.contains_lonlat(Longitude(ra * u.deg), Latitude(dec * u.deg))
    assert inside.all(), [p for p, ok in zip(zip(ra, dec, strict=True), inside,
                                             strict=True) if not ok][:5]


def test_home_page_links_the_registry(client) -> None:
    import re

    from tests.registry.harvest import NS
    from tests.xsd import validate

    page = client.get("/")
    links = re.findall(r'href="([^"]*/(?:oai|coverage)\?[^"]*)"', page.text)
    assert len(links) == 2, links
    identify = validate(client.get(links[0].replace("&amp;", "&")).content)
    assert identify.find("oai:Identify", NS) is not None
    assert client.get(links[1].replace("&amp;", "&")).status_code == 200

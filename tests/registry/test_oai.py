"""The OAI-PMH publishing registry, harvested as a registry harvests it.

A server on a database of its own (tests/registry/placed.py), with two records per
page so that every list pages: all six verbs, GET and POST, from/until, sets, every
error code, tokens across a restart; every answer and every record validated against
the schemas (tests/data/xsd); the records agree with the capabilities and tables the
services serve.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from lxml import etree

from tests.conftest import RunningServer, running_server
from tests.registry.harvest import (
    NS,
    XSI_TYPE,
    error_codes,
    harvest,
    header_of,
    oai,
    resource_of,
)
from tests.registry.placed import PROPRIETARY, PUBLIC, prepared, registry_refresh, server_env

PAGE = 2


@pytest.fixture(scope="module")
def placed(database) -> tuple[object, dict[str, str]]:
    own, env = prepared(database, "registry_oai")
    registry_refresh(database, env)
    return own, env


@pytest.fixture(scope="module")
def registry_server(database, placed) -> Iterator[RunningServer]:
    _own, env = placed
    with running_server(database, server_env(env, page_size=str(PAGE))) as running:
        yield running


@pytest.fixture(scope="module")
def client(registry_server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=registry_server.base_url, timeout=60) as c:
        yield c


def authority(server: RunningServer) -> str:
    return "ivo://" + server.database.settings.service.authority


def expected_identifiers(server: RunningServer) -> set[str]:
    """The records the configuration and the placed public data call for."""
    base = authority(server)
    collections = {p.collection for p in PUBLIC}
    return {base, f"{base}/registry", f"{base}/org", f"{base}/tap", f"{base}/sia"} | {
        f"{base}/collections/{c.lower().replace('/', '-')}" for c in collections}


def records_by_id(client: httpx.Client) -> dict[str, etree._Element]:
    found = harvest(client, "ListRecords", metadataPrefix="ivo_vor")
    return {header_of(r).findtext("oai:identifier", namespaces=NS): r for r in found.items}


# -- the verbs ------------------------------------------------------------------------


def test_identify_embeds_the_registry_record(client, registry_server) -> None:
    root = oai(client, verb="Identify")
    identify = root.find("oai:Identify", NS)
    assert identify.findtext("oai:baseURL", namespaces=NS) == registry_server.base_url + "/oai"
    assert identify.findtext("oai:protocolVersion", namespaces=NS) == "2.0"
    assert identify.findtext("oai:deletedRecord", namespaces=NS) == "persistent"
    assert identify.findtext("oai:granularity", namespaces=NS) == "YYYY-MM-DDThh:mm:ssZ"
    resource = identify.find("oai:description/ri:Resource", NS)
    assert resource is not None and resource.get(XSI_TYPE) == "vg:Registry"
    assert resource.findtext("identifier") == authority(registry_server) + "/registry"
    assert resource.findtext("managedAuthority") == authority(registry_server)[6:]
    harvest_url = resource.findtext("capability[@standardID='ivo://ivoa.net/std/Registry']"
                                    "/interface/accessURL")
    assert harvest_url == registry_server.base_url + "/oai"
    assert resource.findtext("capability/maxRecords") == str(PAGE)
    earliest = identify.findtext("oai:earliestDatestamp", namespaces=NS)
    stamps = [header_of(i).findtext("oai:datestamp", namespaces=NS)
              for i in harvest(client, "ListIdentifiers", metadataPrefix="ivo_vor").items]
    assert earliest == min(stamps)


def test_metadata_formats_and_sets(client, registry_server) -> None:
    formats = oai(client, verb="ListMetadataFormats")
    prefixes = [e.text for e in formats.iterfind(".//oai:metadataPrefix", NS)]
    assert prefixes == ["ivo_vor", "oai_dc"]
    one = oai(client, verb="ListMetadataFormats", identifier=authority(registry_server))
    assert not error_codes(one)
    sets = oai(client, verb="ListSets")
    assert [e.text for e in sets.iterfind(".//oai:setSpec", NS)] == ["ivo_managed"]


def test_full_harvest_pages_and_validates(client, registry_server) -> None:
    found = harvest(client, "ListRecords", metadataPrefix="ivo_vor")
    identifiers = found.identifiers()
    assert len(identifiers) == len(set(identifiers))
    assert set(identifiers) == expected_identifiers(registry_server)
    assert len(found.pages) == -(-len(identifiers) // PAGE)
    # the tokens count: cursor and completeListSize; the last token is empty
    assert [int(t.get("cursor")) for t in found.tokens] == list(
        range(0, len(identifiers), PAGE))[:len(found.tokens)]
    assert {int(t.get("completeListSize")) for t in found.tokens} == {len(identifiers)}
    assert not (found.tokens[-1].text or "").strip()
    types = {}
    for item in found.items:
        resource = resource_of(item)
        assert resource is not None
        types[resource.findtext("identifier")] = resource.get(XSI_TYPE)
        assert header_of(item).findtext("oai:setSpec", namespaces=NS) == "ivo_managed"
        assert resource.get("created") <= resource.get("updated")
    base = authority(registry_server)
    assert types[base] == "vg:Authority"
    assert types[f"{base}/registry"] == "vg:Registry"
    assert types[f"{base}/org"] == "vr:Organisation"
    assert types[f"{base}/tap"] == types[f"{base}/sia"] == "vs:CatalogService"
    assert {t for i, t in types.items() if "/collections/" in i} == {"vs:CatalogResource"}
    # the same through POST, and the identifiers alone
    posted = harvest(client, "ListRecords", method="POST", metadataPrefix="ivo_vor")
    assert posted.identifiers() == identifiers
    headers = harvest(client, "ListIdentifiers", metadataPrefix="ivo_vor")
    assert headers.identifiers() == identifiers


def test_dublin_core(client, registry_server) -> None:
    found = harvest(client, "ListRecords", metadataPrefix="oai_dc")
    titles = {r.findtext(".//dc:identifier", namespaces=NS): r.findtext(".//dc:title",
                                                                       namespaces=NS)
              for r in found.items}
    assert set(titles) == expected_identifiers(registry_server)
    assert all(titles.values())
    one = oai(client, verb="GetRecord", identifier=authority(registry_server) + "/tap",
              metadataPrefix="oai_dc")
    assert one.findtext(".//dc:type", namespaces=NS) == "vs:CatalogService"


def test_get_record(client, registry_server) -> None:
    identifier = authority(registry_server) + "/sia"
    root = oai(client, verb="GetRecord", identifier=identifier, metadataPrefix="ivo_vor")
    resource = root.find("oai:GetRecord/oai:record/oai:metadata/ri:Resource", NS)
    assert resource.findtext("identifier") == identifier
    assert root.find("oai:request", NS).get("identifier") == identifier


def test_from_until_and_sets(client, registry_server) -> None:
    everything = harvest(client, "ListIdentifiers", metadataPrefix="ivo_vor")
    stamps = sorted({header_of(i).findtext("oai:datestamp", namespaces=NS)
                     for i in everything.items})
    latest = stamps[-1]
    after = harvest(client, "ListIdentifiers", metadataPrefix="ivo_vor", **{"from": latest})
    assert {header_of(i).findtext("oai:datestamp", namespaces=NS) for i in after.items} == {
        latest}
    until = harvest(client, "ListIdentifiers", metadataPrefix="ivo_vor", until=latest)
    assert len(until.items) == len(everything.items)
    day = latest[:10]
    same_day = harvest(client, "ListIdentifiers", metadataPrefix="ivo_vor",
                       **{"from": day, "until": day})
    assert len(same_day.items) == sum(
        1 for i in everything.items
        if header_of(i).findtext("oai:datestamp", namespaces=NS).startswith(day))
    earlier = (datetime.strptime(stamps[0], "%Y-%m-%dT%H:%M:%SZ") - timedelta(days=2)
               ).strftime("%Y-%m-%d")
    assert error_codes(oai(client, verb="ListRecords", metadataPrefix="ivo_vor",
                           until=earlier)) == ["noRecordsMatch"]
    later = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert error_codes(oai(client, verb="ListIdentifiers", metadataPrefix="oai_dc",
                           **{"from": later})) == ["noRecordsMatch"]
    managed = harvest(client, "ListIdentifiers", metadataPrefix="ivo_vor", set="ivo_managed")
    assert managed.identifiers() == everything.identifiers()
    assert error_codes(oai(client, verb="ListRecords", metadataPrefix="ivo_vor",
                           set="ivo_publishers")) == ["noRecordsMatch"]
    # a token keeps the selection
    paged = harvest(client, "ListRecords", metadataPrefix="oai_dc", until=latest,
                    set="ivo_managed")
    assert len(paged.items) == len(everything.items)


# -- errors ---------------------------------------------------------------------------

ERRORS = [
    ({}, "badVerb"),
    ({"verb": "Harvest"}, "badVerb"),
    ({"verb": "identify"}, "badVerb"),
    ({"verb": "Identify", "set": "ivo_managed"}, "badArgument"),
    ({"verb": "ListRecords"}, "badArgument"),
    ({"verb": "ListRecords", "metadataPrefix": "ivo_vor", "from": "2024-13-01"}, "badArgument"),
    ({"verb": "ListRecords", "metadataPrefix": "ivo_vor", "from": "2024-01-01T00:00:00"},
     "badArgument"),
    ({"verb": "ListRecords", "metadataPrefix": "ivo_vor", "from": "2024-01-01",
      "until": "2024-01-02T00:00:00Z"}, "badArgument"),
    ({"verb": "ListRecords", "metadataPrefix": "ivo_vor", "from": "2024-01-02",
      "until": "2024-01-01"}, "badArgument"),
    ({"verb": "ListRecords", "metadataPrefix": "ivo_vor", "resumptionToken": "x"},
     "badArgument"),
    ({"verb": "ListIdentifiers", "metadataprefix": "ivo_vor"}, "badArgument"),
    ({"verb": "GetRecord", "metadataPrefix": "ivo_vor"}, "badArgument"),
    ({"verb": "GetRecord", "identifier": "ivo://nowhere/x", "metadataPrefix": "ivo_vor"},
     "idDoesNotExist"),
    ({"verb": "ListMetadataFormats", "identifier": "ivo://nowhere/x"}, "idDoesNotExist"),
    ({"verb": "ListRecords", "metadataPrefix": "ivo_vor", "until": "1990-01-01"},
     "noRecordsMatch"),
    ({"verb": "ListRecords", "metadataPrefix": "marc21"}, "cannotDisseminateFormat"),
    ({"verb": "GetRecord", "identifier": "ivo://x", "metadataPrefix": "ivo_VOR"},
     "cannotDisseminateFormat"),
    ({"verb": "ListRecords", "resumptionToken": "garbage"}, "badResumptionToken"),
    ({"verb": "ListIdentifiers", "resumptionToken": "1.e30=.AAAA"}, "badResumptionToken"),
    ({"verb": "ListSets", "resumptionToken": "1.abc.def"}, "badResumptionToken"),
]


@pytest.mark.parametrize(("arguments", "code"), ERRORS)
def test_error_codes(client, arguments, code) -> None:
    root = oai(client, **arguments)
    assert error_codes(root) == [code]
    request = root.find("oai:request", NS)
    if code in ("badVerb", "badArgument"):
        assert dict(request.attrib) == {}  # OAI-PMH 3.6: the base URL alone
    assert root.find("oai:error", NS).text.strip()


def test_repeated_arguments_and_post(client) -> None:
    reply = client.get("/oai?verb=Identify&verb=Identify")
    assert error_codes(etree.fromstring(reply.content)) == ["badVerb"]
    reply = client.get("/oai?verb=ListRecords&metadataPrefix=ivo_vor&metadataPrefix=oai_dc")
    assert error_codes(etree.fromstring(reply.content)) == ["badArgument"]
    posted = oai(client, "POST", verb="GetRecord", identifier="ivo://nowhere",
                 metadataPrefix="ivo_vor")
    assert error_codes(posted) == ["idDoesNotExist"]
    refused = client.post("/oai", content=b"verb=Identify", headers={
        "Content-Type": "text/plain"})
    assert refused.status_code == 415
    huge = client.post("/oai", content=b"verb=Identify&x=" + b"y" * 100_000, headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert huge.status_code == 413


def test_tokens_are_signed_and_bound_to_their_verb(client) -> None:
    first = oai(client, verb="ListRecords", metadataPrefix="ivo_vor")
    token = first.findtext(".//oai:resumptionToken", namespaces=NS)
    assert token
    version, body, mac = token.split(".")
    altered = f"{version}.{body[:-2]}{'A' if body[-2] != 'A' else 'B'}{body[-1]}.{mac}"
    assert error_codes(oai(client, verb="ListRecords", resumptionToken=altered)) == [
        "badResumptionToken"]
    assert error_codes(oai(client, verb="ListIdentifiers", resumptionToken=token)) == [
        "badResumptionToken"]
    assert not error_codes(oai(client, verb="ListRecords", resumptionToken=token))


# -- records agree with the services ----------------------------------------------------


def _capabilities(element: etree._Element) -> list[bytes]:
    return [etree.tostring(c, method="c14n") for c in element.iterchildren("capability")]


def _canonical(element: etree._Element) -> bytes:
    """An element without the namespace declarations it inherited (compare content)."""
    copy = etree.fromstring(etree.tostring(element))
    etree.cleanup_namespaces(copy)
    return etree.tostring(copy, method="c14n", exclusive=True)


def test_records_agree_with_the_capabilities(client, registry_server) -> None:
    records = records_by_id(client)
    base = authority(registry_server)
    for service, path in (("tap", "/tap/capabilities"), ("sia", "/sia/capabilities")):
        served = etree.fromstring(client.get(path).content)
        resource = resource_of(records[f"{base}/{service}"])
        assert [_canonical(c) for c in resource.iterchildren("capability")] == [
            _canonical(c) for c in served.iterchildren("capability")], service
    tables = etree.fromstring(client.get("/tap/tables").content)
    tap = resource_of(records[f"{base}/tap"])
    assert [_canonical(s) for s in tap.find("tableset").iterchildren("schema")] == [
        _canonical(s) for s in tables.iterchildren("schema")]
    # the collections point at the services the capabilities describe
    tap_url = etree.fromstring(client.get("/tap/capabilities").content).findtext(
        "capability[@standardID='ivo://ivoa.net/std/TAP']/interface/accessURL")
    for identifier, item in records.items():
        if "/collections/" not in identifier:
            continue
        resource = resource_of(item)
        aux = resource.findtext("capability[@standardID='ivo://ivoa.net/std/TAP#aux']"
                                "/interface/accessURL")
        assert aux == tap_url
        served_by = [r.get("ivo-id") for r in resource.iterfind(
            "content/relationship[relationshipType='IsServedBy']/relatedResource")]
        assert f"{base}/tap" in served_by


def test_collection_records_describe_public_data_only(client, registry_server) -> None:
    records = records_by_id(client)
    base = authority(registry_server)
    nickel = resource_of(records[f"{base}/collections/lick-nickel"])
    assert nickel.findtext("instrument") == "Nickel Direct"
    assert nickel.find("capability[@standardID='ivo://ivoa.net/std/SIA#query-aux-2.0']") \
        is not None
    kast = resource_of(records[f"{base}/collections/lick-kast"])
    assert kast.find("capability[@standardID='ivo://ivoa.net/std/SIA#query-aux-2.0']") is None
    assert f"{base}/collections/lick-hidden" not in records  # only proprietary data
    text = b"".join(etree.tostring(resource_of(r)) for r in records.values())
    assert b"Hidden Camera" not in text and b"Lick/Hidden" not in text
    temporal = [float(v) for v in nickel.findtext("coverage/temporal").split()]
    assert temporal[0] == min(p.t_min for p in PUBLIC if p.collection == "Lick/Nickel")
    assert temporal[0] > max(p.t_min for p in PROPRIETARY)
    footprint = nickel.findtext("coverage/footprint")
    assert footprint == registry_server.base_url + "/coverage?COLLECTION=Lick%2FNickel"
    assert client.get(footprint).status_code == 200


# -- a restart, a crowd -----------------------------------------------------------------


def test_resumption_token_survives_a_restart(database) -> None:
    _own, env = prepared(database, "registry_restart")
    registry_refresh(database, env)
    with running_server(database, server_env(env, page_size="1")) as first:
        with httpx.Client(base_url=first.base_url, timeout=60) as c:
            page = oai(c, verb="ListIdentifiers", metadataPrefix="ivo_vor")
            expected = harvest(c, "ListIdentifiers", metadataPrefix="ivo_vor").identifiers()
        token = page.findtext(".//oai:resumptionToken", namespaces=NS)
        base_url = first.base_url
    # the same site (its public URL) served by a new process
    second_env = {**server_env(env, page_size="1"), "LICK_ARCHIVE_SERVICE_BASE_URL": base_url}
    with running_server(database, second_env) as second, \
            httpx.Client(base_url=second.base_url, timeout=60) as c:
        rest = oai(c, verb="ListIdentifiers", resumptionToken=token)
        assert not error_codes(rest)
        identifiers = [page.findtext(".//oai:header/oai:identifier", namespaces=NS)]
        root = rest
        while True:
            identifiers += [h.text for h in root.iterfind(".//oai:header/oai:identifier", NS)]
            token = root.findtext(".//oai:resumptionToken", namespaces=NS)
            if not token:
                break
            root = oai(c, verb="ListIdentifiers", resumptionToken=token)
    assert identifiers == expected


def test_many_harvesters_at_once(client, registry_server) -> None:
    """More harvesters than registry connections: all finish, each with the full list,
    and TAP answers meanwhile (it has pools of its own)."""
    expected = set(expected_identifiers(registry_server))
    failures: list[str] = []
    results: list[set[str]] = []

    def harvester() -> None:
        try:
            with httpx.Client(base_url=registry_server.base_url, timeout=120) as c:
                found = harvest(c, "ListRecords", metadataPrefix="ivo_vor")
                results.append(set(found.identifiers()))
                assert c.get("/coverage", params={"FORMAT": "json"}).status_code == 200
        except Exception as exc:  # collected for the assertion below
            failures.append(repr(exc))

    threads = [threading.Thread(target=harvester) for _ in range(12)]
    for thread in threads:
        thread.start()
    tap = client.get("/tap/sync", params={"LANG": "ADQL", "QUERY":
                                          "SELECT COUNT(*) FROM ivoa.obscore"})
    assert tap.status_code == 200
    for thread in threads:
        thread.join(timeout=300)
    assert not failures, failures[:3]
    assert results == [expected] * 12


# last: it leaves a deleted record behind
def test_deleted_records_keep_their_datestamps(client, registry_server, placed) -> None:
    """A record the service no longer generates is listed as deleted, with the datestamp
    of its deletion, and GetRecord says so; one that comes back is live again."""
    own, _env = placed
    from tests.registry.placed import execute

    identifier = authority(registry_server) + "/collections/lick-gone"
    execute(own.owner_dsn,
            "INSERT INTO registry.records (identifier, resource_type, set_specs, created, "
            "datestamp, deleted, content_hash, title, record) VALUES (%s, 'vs:CatalogResource',"
            " '{ivo_managed}', '2020-01-01', '2020-01-01', false, 'x', 'gone', '<x/>')",
            (identifier,))
    registry_refresh(registry_server.database, placed[1])
    root = oai(client, verb="GetRecord", identifier=identifier, metadataPrefix="ivo_vor")
    header = root.find("oai:GetRecord/oai:record/oai:header", NS)
    assert header.get("status") == "deleted"
    assert root.find("oai:GetRecord/oai:record/oai:metadata", NS) is None
    stamp = header.findtext("oai:datestamp", namespaces=NS)
    assert stamp > "2020-01-01"
    listed = harvest(client, "ListIdentifiers", metadataPrefix="oai_dc")
    deleted = [h for h in listed.items if h.get("status") == "deleted"]
    assert [h.findtext("oai:identifier", namespaces=NS) for h in deleted] == [identifier]
    assert deleted[0].findtext("oai:datestamp", namespaces=NS) == stamp
    registry_refresh(registry_server.database, placed[1])  # nothing new: it stays as it was
    again = oai(client, verb="GetRecord", identifier=identifier, metadataPrefix="oai_dc")
    assert again.findtext(".//oai:datestamp", namespaces=NS) == stamp

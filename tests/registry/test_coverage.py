"""The coverage of the public data: no proprietary footprint, followed as data change.

On a database of its own (tests/registry/placed.py): public footprints near (10, 20)
and (50, 20), proprietary ones far away — (200, -30) in a public collection, (250, -40)
in a collection with no public data, (300, 60) with no release date.  The MOC at
/coverage (FITS, JSON, ASCII) and the coverage in the records must hold the public
footprints and none of the others; when a proprietary dataset becomes public, the
server's refresher follows (the trigger of migration 0009 marks the coverage stale),
and when it becomes proprietary again its collection's record is deleted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import astropy.units as u
import httpx
import psycopg2
import pytest
from astropy.coordinates import Latitude, Longitude
from lxml import etree
from mocpy import MOC

from tests.conftest import RunningServer, running_server
from tests.registry.harvest import NS, error_codes, oai
from tests.registry.placed import (
    FUTURE,
    PAST,
    PROPRIETARY,
    PUBLIC,
    execute,
    prepared,
    registry_refresh,
    server_env,
)
from vo_service.database.pool import Pool
from vo_service.services.coverage import HC
from vo_service.services.housekeeping import refresh_data_rights

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"


@pytest.fixture(scope="module")
def placed(database) -> tuple[object, dict[str, str]]:
    own, env = prepared(database, "registry_coverage")
    registry_refresh(database, env)
    return own, env


@pytest.fixture(scope="module")
def coverage_server(database, placed) -> Iterator[RunningServer]:
    _own, env = placed
    with running_server(database, server_env(env, refresh_interval_s="0.5")) as running:
        yield running


@pytest.fixture(scope="module")
def client(coverage_server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=coverage_server.base_url, timeout=60) as c:
        yield c


def contains(moc: MOC, ra: float, dec: float) -> bool:
    return bool(moc.contains_lonlat(Longitude([ra] * u.deg), Latitude([dec] * u.deg))[0])


def served_moc(client: httpx.Client, **params: str) -> MOC:
    reply = client.get("/coverage", params={"FORMAT": "json", **params})
    assert reply.status_code == 200, reply.text[:300]
    assert reply.headers["content-type"] == "application/json"
    return MOC.from_json(json.loads(reply.content))


def record(client: httpx.Client, identifier: str) -> etree._Element:
    root = oai(client, verb="GetRecord", identifier=identifier, metadataPrefix="ivo_vor")
    assert not error_codes(root), etree.tostring(root)[:500]
    return root


def resource(client: httpx.Client, identifier: str) -> etree._Element:
    return record(client, identifier).find(".//oai:metadata/ri:Resource", NS)


def authority(server: RunningServer) -> str:
    return "ivo://" + server.database.settings.service.authority


def test_public_footprints_only(client) -> None:
    moc = served_moc(client)
    for p in PUBLIC:
        assert contains(moc, p.ra, p.dec), p
    for p in PROPRIETARY:
        assert not contains(moc, p.ra, p.dec), p
    nickel = served_moc(client, COLLECTION="Lick/Nickel")
    assert contains(nickel, 10.0, 20.0) and contains(nickel, 50.0, 20.0)
    assert not contains(nickel, 10.2, 20.1 + 0.5)  # the Kast slit is elsewhere
    assert not contains(nickel, 200.0, -30.0)


def test_formats_agree(client, tmp_path: Path) -> None:
    from_json = served_moc(client)
    fits = client.get("/coverage")  # FITS by default
    assert fits.status_code == 200 and fits.headers["content-type"] == "application/fits"
    assert fits.content[:6] == b"SIMPLE"
    path = tmp_path / "coverage.fits"
    path.write_bytes(fits.content)
    assert MOC.from_fits(str(path)) == from_json
    ascii_reply = client.get("/coverage", params={"format": "text/plain"})
    assert MOC.from_string(ascii_reply.text.strip()) == from_json
    assert from_json.max_order == 10


@pytest.mark.parametrize(("params", "status"), [
    ({"FORMAT": "png"}, 400), ({"FORMAT": "fits", "COLLECTION": "Lick/Hidden"}, 404),
    ({"COLLECTION": "Lick/Nowhere"}, 404), ({"FORMAT": ["json", "fits"]}, 400),
])
def test_coverage_errors(client, params, status) -> None:
    reply = client.get("/coverage", params=params)
    assert reply.status_code == status, reply.text[:300]
    root = etree.fromstring(reply.content)
    info = root.find(f".//{VOT}INFO[@name='QUERY_STATUS']")
    assert info is not None and info.get("value") == "ERROR" and info.text.strip()
    assert "Hidden" not in reply.text or "Lick/Hidden" in str(params)  # no collection list leak


def test_records_coverage_is_public(client, coverage_server) -> None:
    tap = resource(client, authority(coverage_server) + "/tap")
    spatial = MOC.from_string(tap.findtext("coverage/spatial"))
    assert spatial.max_order <= 6
    for p in PUBLIC:
        assert contains(spatial, p.ra, p.dec)
    for p in PROPRIETARY:
        assert not contains(spatial, p.ra, p.dec)
    t_min, t_max = (float(v) for v in tap.findtext("coverage/temporal").split())
    assert t_min == min(p.t_min for p in PUBLIC)
    assert t_max == pytest.approx(max(p.t_min for p in PUBLIC) + 0.01)
    low, high = (float(v) for v in tap.findtext("coverage/spectral").split())
    assert high == pytest.approx(HC / min(p.em_min for p in PUBLIC), rel=1e-5)
    assert low == pytest.approx(HC / max(p.em_max for p in PUBLIC), rel=1e-5)
    instruments = {e.text for e in tap.iterfind("instrument")}
    assert instruments == {p.instrument for p in PUBLIC}


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the refresher did not follow the change"
        time.sleep(0.3)


def test_follows_data_becoming_public_and_proprietary(client, coverage_server, placed
                                                      ) -> None:
    own, _env = placed
    base = authority(coverage_server)
    hidden = f"{base}/collections/lick-hidden"
    before = resource(client, base + "/tap")
    assert error_codes(oai(client, verb="GetRecord", identifier=hidden,
                           metadataPrefix="ivo_vor")) == ["idDoesNotExist"]
    time.sleep(1.1)  # datestamps have a granularity of seconds
    execute(own.owner_dsn, "UPDATE ivoa.obscore SET obs_release_date = %s, data_rights = "
            "'public' WHERE obs_publisher_did IN (%s, %s)",
            (PAST, "ivo://test/r?nickel-secret", "ivo://test/r?hidden-1"))
    wait_for(lambda: contains(served_moc(client), 200.0, -30.0))
    wait_for(lambda: not error_codes(oai(client, verb="GetRecord", identifier=hidden,
                                         metadataPrefix="ivo_vor")))
    assert contains(served_moc(client, COLLECTION="Lick/Hidden"), 250.0, -40.0)
    assert not contains(served_moc(client), 300.0, 60.0)  # still undated
    after = resource(client, base + "/tap")
    assert after.get("created") == before.get("created")
    assert after.get("updated") > before.get("updated")
    assert float(after.findtext("coverage/temporal").split()[0]) == 40000.0
    collection = resource(client, hidden)
    assert collection.findtext("instrument") == "Hidden Camera"
    appeared = record(client, hidden).findtext(".//oai:datestamp", namespaces=NS)

    time.sleep(1.1)
    execute(own.owner_dsn, "UPDATE ivoa.obscore SET obs_release_date = %s, data_rights = "
            "'proprietary' WHERE obs_publisher_did = %s", (FUTURE, "ivo://test/r?hidden-1"))

    def deleted() -> bool:
        header = record(client, hidden).find(".//oai:header", NS)
        return header.get("status") == "deleted"

    wait_for(deleted)
    stamp = record(client, hidden).findtext(".//oai:datestamp", namespaces=NS)
    assert stamp > appeared
    assert not contains(served_moc(client), 250.0, -40.0)
    reply = client.get("/coverage", params={"COLLECTION": "Lick/Hidden"})
    assert reply.status_code == 404
    listed = oai(client, verb="ListIdentifiers", metadataPrefix="ivo_vor",
                 **{"from": stamp})
    headers = {h.findtext("oai:identifier", namespaces=NS): h.get("status")
               for h in listed.iterfind(".//oai:header", NS)}
    assert headers[hidden] == "deleted"


def test_housekeeping_marks_the_coverage_stale(database) -> None:
    """Data that became public by the passing of time: housekeeping's update of
    data_rights is what tells the refresher (a run that changed nothing does not)."""
    own, _env = prepared(database, "registry_hook")
    execute(own.owner_dsn, "UPDATE ivoa.obscore SET data_rights = 'proprietary'")
    pool = Pool("test", own.owner_dsn, 1)
    pool.open()
    try:
        for expected_changes, stale in ((len(PUBLIC), True), (0, False)):
            execute(own.owner_dsn, "UPDATE registry.state SET coverage_stale = false")
            assert refresh_data_rights(pool) == expected_changes
            conn = psycopg2.connect(own.owner_dsn)
            with conn, conn.cursor() as cur:
                cur.execute("SELECT coverage_stale FROM registry.state")
                assert cur.fetchone()[0] is stale
            conn.close()
    finally:
        pool.close()

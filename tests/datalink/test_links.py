"""DataLink /datalink/links against a real server over the demo archive."""

from __future__ import annotations

import subprocess

import httpx
import pytest
from lxml import etree

from tests.conftest import fetch
from tests.datalink.helpers import (
    DATALINK_TYPE,
    PROPRIETARY,
    PUBLIC,
    UNKNOWN,
    links,
    one,
    owner_auth,
)
from tests.xsd import schema_for

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"


def _validate(content: bytes) -> etree._Element:
    root = etree.fromstring(content)
    schema_for(root.nsmap[None]).assertValid(root)
    return root


def test_public_dataset_links(server, archive) -> None:
    did, _ = one(server.database, f"{PUBLIC} AND f.frame_type = 'science' AND "
                 "o.dataproduct_type = 'image' AND f.instrument_dir = 'nickel'")
    reply = httpx.get(f"{server.base_url}/datalink/links", params={"ID": did})
    assert reply.headers["content-type"] == DATALINK_TYPE
    root = _validate(reply.content)
    info = root.find(f"{VOT}RESOURCE[@type='results']/{VOT}INFO[@name='standardID']")
    assert info is not None and info.get("value") == "ivo://ivoa.net/std/DataLink#links-1.1"
    table = links(server.base_url, [did])
    semantics = list(table["semantics"])
    assert semantics[:3] == ["#this", "#detached-header", "#preview"]
    this = table[0]
    assert this["access_url"].startswith(f"{server.base_url}/data/file?ID=")
    assert this["content_type"] == "application/fits"
    (size,) = fetch(server.database.owner_dsn, "SELECT file_size FROM lick.files WHERE "
                    "obs_publisher_did = %s", (did,))[0]
    assert this["content_length"] == size
    assert all(table["link_authorized"]) and set(table["link_auth"]) == {"optional"}
    assert all(table["ID"] == did)


def test_soda_descriptor_for_images_with_celestial_wcs(server, archive) -> None:
    did, _ = one(server.database, f"{PUBLIC} AND o.dataproduct_type = 'image' AND "
                 "f.header ~ '(?n)^CTYPE1 *= +''RA--'")
    reply = httpx.get(f"{server.base_url}/datalink/links", params={"ID": did})
    root = _validate(reply.content)
    table = links(server.base_url, [did])
    cutout = [row for row in table if row["semantics"] == "#cutout"]
    assert len(cutout) == 1 and cutout[0]["service_def"] == "soda-sync"
    descriptor = root.find(f"{VOT}RESOURCE[@ID='soda-sync']")
    assert descriptor is not None and descriptor.get("utype") == "adhoc:service"
    params = {p.get("name"): p for p in descriptor.iter(f"{VOT}PARAM")}
    assert params["standardID"].get("value") == "ivo://ivoa.net/std/SODA#sync-1.0"
    assert params["accessURL"].get("value") == f"{server.base_url}/soda/sync"
    assert params["ID"].get("ref") == "dl_id"
    id_field = root.find(f".//{VOT}FIELD[@name='ID']")
    assert id_field is not None and id_field.get("ID") == "dl_id"
    assert params["CIRCLE"].get("xtype") == "circle" and params["CIRCLE"].get("unit") == "deg"
    assert params["POLYGON"].get("xtype") == "polygon"
    assert params["BAND"].get("xtype") == "interval" and params["BAND"].get("unit") == "m"
    assert params["POS"].get("datatype") == "char"
    service_def = root.find(f".//{VOT}FIELD[@name='service_def']")
    assert service_def is not None and service_def.get("ucd") == "meta.ref"
    # spectra have no cutout service
    spectrum, _ = one(server.database, f"{PUBLIC} AND o.dataproduct_type = 'spectrum'")
    assert "#cutout" not in set(links(server.base_url, [spectrum])["semantics"])
    assert b"soda-sync" not in httpx.get(f"{server.base_url}/datalink/links",
                                          params={"ID": spectrum}).content


def test_calibrations_of_the_night(server, archive) -> None:
    did, _ = one(server.database, f"{PUBLIC} AND f.frame_type = 'science' AND EXISTS ("
                 "SELECT 1 FROM lick.files c WHERE c.night = f.night AND c.instrument = "
                 "f.instrument AND c.frame_type IN ('bias', 'flat', 'arc', 'dark') AND "
                 f"c.release_date::date <= {NIGHT_SQL})")
    table = links(server.base_url, [did])
    calibration = [row for row in table if row["semantics"] in
                   ("#bias", "#flat", "#dark", "#calibration")]
    assert calibration
    expected = fetch(server.database.owner_dsn,
                     "SELECT c.frame_type, c.obs_publisher_did FROM lick.files c JOIN "
                     "lick.files f ON c.night = f.night AND c.instrument = f.instrument "
                     "AND c.instrument_dir = f.instrument_dir WHERE f.obs_publisher_did = %s "
                     f"AND c.frame_type <> 'science' AND c.release_date::date <= {NIGHT_SQL}",
                     (did,))
    assert len(calibration) == len(expected)
    by_url = {row["access_url"].rsplit("?ID=", 1)[1]: row for row in calibration}
    for frame_type, frame_did in expected:
        row = by_url[_q(frame_did)]
        term = f"#{frame_type}" if frame_type in ("bias", "flat", "dark") else "#calibration"
        assert row["semantics"] == term and row["local_semantics"] == f"calibration-{frame_type}"


def test_semantics_come_from_the_datalink_vocabulary(server, archive) -> None:
    """Every term is one of http://www.ivoa.net/rdf/datalink/core (pyvo's copy)."""
    import json
    from pathlib import Path

    import pyvo

    desise = Path(pyvo.__file__).parent / "dal/tests/data/datalink/datalink.desise"
    terms = {f"#{t}" for t in json.loads(desise.read_text())["terms"]}
    dids = [r[0] for r in fetch(server.database.owner_dsn,
                                "SELECT obs_publisher_did FROM lick.files WHERE frame_type "
                                "IN ('science', 'arc') ORDER BY path LIMIT 50")]
    used = set(links(server.base_url, dids)["semantics"])
    assert used <= terms and {"#this", "#detached-header"} <= used


NIGHT_SQL = "((now() AT TIME ZONE 'UTC') - interval '20 hours')::date"


def test_unknown_and_hidden_look_the_same(server, archive) -> None:
    hidden, obid = one(server.database, PROPRIETARY)
    for auth in (None, ("nobody-here@lick.example", "wrong")):
        if auth is not None:
            continue  # wrong credentials are a 401 before DataLink (tests/auth)
        table = links(server.base_url, [hidden, UNKNOWN])
        assert len(table) == 2
        assert list(table["semantics"]) == ["#this", "#this"]
        messages = list(table["error_message"])
        assert messages[0] == messages[1] and messages[0].startswith("NotFoundFault: ")
        assert "logging in" in messages[0]
        assert not any(str(u) for u in table["access_url"] if u)
    owner = owner_auth(archive, obid)
    mine = links(server.base_url, [hidden, UNKNOWN], auth=owner)
    assert mine["semantics"][0] == "#this" and mine["access_url"][0]
    assert mine["link_auth"][0] == "true" and mine["link_authorized"][0]
    assert mine["error_message"][-1].startswith("NotFoundFault: ")


def test_identifiers_keep_their_order_and_rows_stay_together(server, archive) -> None:
    dids = [r[0] for r in fetch(server.database.owner_dsn,
                                "SELECT f.obs_publisher_did FROM lick.files f WHERE "
                                f"{PUBLIC} AND f.filename LIKE '%%.fits' ORDER BY f.path "
                                "DESC LIMIT 5")]
    table = links(server.base_url, [UNKNOWN, *dids])
    seen = list(dict.fromkeys(table["ID"]))
    assert seen == [UNKNOWN, *dids]


def test_post_and_many_identifiers(server, archive) -> None:
    dids = [r[0] for r in fetch(server.database.owner_dsn,
                                "SELECT obs_publisher_did FROM lick.files ORDER BY path "
                                "LIMIT 50")]
    reply = httpx.post(f"{server.base_url}/datalink/links", data={"ID": dids}, timeout=60)
    assert reply.status_code == 200
    _validate(reply.content)
    # DataLink 1.1 sect. 3.3: beyond the limit, the first 50 and OVERFLOW
    too_many = httpx.post(f"{server.base_url}/datalink/links",
                          data={"ID": [*dids, UNKNOWN]}, timeout=60)
    assert too_many.status_code == 200
    root = _validate(too_many.content)
    status = root.find(".//{http://www.ivoa.net/xml/VOTable/v1.3}INFO[@name='QUERY_STATUS']")
    assert status is not None and status.get("value") == "OVERFLOW"
    assert UNKNOWN.encode() not in too_many.content


def test_no_identifier_is_an_empty_table(server) -> None:
    reply = httpx.get(f"{server.base_url}/datalink/links")
    assert reply.status_code == 200
    root = _validate(reply.content)
    assert root.find(f".//{VOT}TR") is None


@pytest.mark.parametrize("accept", ["text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2",
                                    "application/json", "text/plain", ""])
def test_mime_type_whatever_the_client_accepts(server, archive, accept) -> None:
    did, _ = one(server.database, PUBLIC)
    reply = httpx.get(f"{server.base_url}/datalink/links", params={"ID": did},
                      headers={"Accept": accept})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == DATALINK_TYPE


def test_responseformat(server, archive) -> None:
    did, _ = one(server.database, PUBLIC)
    ok = httpx.get(f"{server.base_url}/datalink/links",
                   params={"ID": did, "RESPONSEFORMAT": "votable"})
    assert ok.status_code == 200
    bad = httpx.get(f"{server.base_url}/datalink/links",
                    params={"ID": did, "RESPONSEFORMAT": "text/csv"})
    assert bad.status_code == 400 and b"RESPONSEFORMAT" in bad.content


def test_every_demo_access_url_resolves(server, archive) -> None:
    """ObsCore access_url (written by ingest) is this service's links URL for every row."""
    rows = fetch(server.database.owner_dsn,
                 "SELECT obs_publisher_did, access_url, access_format FROM ivoa.obscore "
                 "WHERE obs_publisher_did LIKE 'ivo://lick.archive.example/%%'")
    assert len(rows) > 100
    staff = ("staff-links@lick.example", "staff-links-password")
    from tests.conftest import run_cli

    run_cli(server.database, "users", "add", staff[0], "--password", staff[1], "--staff")
    with httpx.Client(auth=staff, timeout=60) as client:
        for did, url, fmt in rows:
            assert fmt == DATALINK_TYPE
            path = url.split("/datalink/links", 1)
            assert len(path) == 2, url
            reply = client.get(f"{server.base_url}/datalink/links{path[1]}")
            assert reply.status_code == 200
            table = links_from(reply.content)
            assert table["ID"][0] == did and table["semantics"][0] == "#this", url
            assert not table["error_message"][0], (url, table["error_message"][0])


def links_from(content: bytes):  # type: ignore[no-untyped-def]
    import io

    from astropy.io.votable import parse_single_table

    return parse_single_table(io.BytesIO(content)).to_table(use_names_over_ids=True)


def _datalinklint(source: str, stdin: bytes | None = None) -> str:
    """The report of STILTS datalinklint on a URL (it then checks the HTTP content type
    too) or on the document given as ``stdin``; it must have run and said something."""
    result = subprocess.run(["stilts", "datalinklint", "report=EWISF", f"votable={source}"],
                            input=stdin, capture_output=True, timeout=120)
    report = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 0 and "Totals:" in report, report
    return report


#: STILTS 3.4.7 checks semantics against a list of the DataLink core vocabulary
#: compiled into it that predates #detached-header (in the vocabulary since 2022, see
#: pyvo's copy, pyvo/dal/tests/data/datalink/datalink.desise): that one complaint is
#: expected; nothing else may appear.
STALE_VOCABULARY = "Unknown predicate 'detached-header' from core DataLink vocabulary"


def _clean(report: str) -> bool:
    problems = [line for line in report.splitlines() if line[:2] in ("E-", "W-", "F-")
                and STALE_VOCABULARY not in line]
    return not problems and "Failures: 0" in report


def test_datalinklint_public_proprietary_unknown(server, archive) -> None:
    public, _ = one(server.database, f"{PUBLIC} AND o.dataproduct_type = 'image' AND "
                    "f.header ~ '(?n)^CTYPE1 *= +''RA--'")
    report = _datalinklint(f"{server.base_url}/datalink/links?ID={_q(public)}")
    assert _clean(report), report
    unknown = _datalinklint(f"{server.base_url}/datalink/links?ID={_q(UNKNOWN)}")
    assert _clean(unknown), unknown
    hidden, obid = one(server.database, PROPRIETARY)
    owned = httpx.get(f"{server.base_url}/datalink/links", params={"ID": hidden},
                      auth=owner_auth(archive, obid))
    assert b"/data/file?ID=" in owned.content
    report = _datalinklint("-", owned.content)
    assert _clean(report), report


def _q(did: str) -> str:
    from urllib.parse import quote

    return quote(did, safe="")

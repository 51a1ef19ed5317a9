"""Real clients: pyvo from a TAP search to a FITS file, with and without credentials."""

from __future__ import annotations

import io

import pytest
import pyvo
import requests
from astropy.io import fits
from pyvo.auth import AuthSession, securitymethods

from tests.datalink.helpers import PROPRIETARY, one, owner_auth


def _session(server, login: str, password: str) -> AuthSession:
    session = AuthSession()
    session.credentials.set_password(login, password)
    session.add_security_method_for_url(server.base_url, securitymethods.BASIC)
    return session


@pytest.fixture(scope="module", autouse=True)
def access_urls_of_this_server(server, archive):
    """Ingest wrote access_url with the configured base_url (port 8000); this server
    runs on another port, as a deployment behind its public name would not.  The rows
    point at it for this module and are put back afterwards."""
    import psycopg2

    configured = "http://127.0.0.1:8000/"

    def rewrite(old: str, new: str) -> None:
        conn = psycopg2.connect(server.database.owner_dsn)
        try:
            with conn, conn.cursor() as cur:
                cur.execute("UPDATE ivoa.obscore SET access_url = replace(access_url, %s, %s) "
                            "WHERE access_url LIKE %s", (old, new, old + "%"))
        finally:
            conn.close()

    rewrite(configured, server.base_url + "/")
    yield
    rewrite(server.base_url + "/", configured)


def test_search_getdatalink_this_opens_in_astropy(server, archive) -> None:
    tap = pyvo.dal.TAPService(server.tap_url)
    results = tap.search("SELECT TOP 3 * FROM ivoa.obscore WHERE dataproduct_type = 'image' "
                         "AND data_rights = 'public' ORDER BY obs_publisher_did")
    assert len(results) == 3
    record = results[0]
    links = record.getdatalink()
    (this,) = _by_semantics(links, "#this")
    assert this.content_type == "application/fits"
    reply = requests.get(this.access_url, timeout=60)
    assert reply.status_code == 200
    with fits.open(io.BytesIO(reply.content)) as hdus:
        assert hdus[0].header["SIMPLE"]
    # the same from the access_url alone
    again = pyvo.dal.adhoc.DatalinkResults.from_result_url(record["access_url"])
    assert [r.access_url for r in _by_semantics(again, "#this")] == [this.access_url]
    (header,) = _by_semantics(links, "#detached-header")
    assert requests.get(header.access_url, timeout=60).text.startswith("SIMPLE")


def test_iter_datalinks_in_batches(server, archive) -> None:
    tap = pyvo.dal.TAPService(server.tap_url)
    results = tap.search("SELECT TOP 120 * FROM ivoa.obscore ORDER BY obs_publisher_did")
    seen = 0
    for links in results.iter_datalinks():
        rows = list(links)
        assert rows and {r.semantics for r in rows} & {"#this"}
        seen += 1
    assert seen == 120


def test_basic_auth_fetches_proprietary_anonymous_gets_401(server, archive) -> None:
    did, obid = one(server.database, PROPRIETARY)
    login, password = owner_auth(archive, obid)
    session = _session(server, login, password)
    tap = pyvo.dal.TAPService(server.tap_url, session=session)
    results = tap.search(f"SELECT * FROM ivoa.obscore WHERE obs_publisher_did = '{did}'")
    assert len(results) == 1
    links = results[0].getdatalink()
    (this,) = _by_semantics(links, "#this")
    assert this["link_auth"] == "true" and this["link_authorized"]
    fetched = session.get(this.access_url, timeout=60)
    assert fetched.status_code == 200
    with fits.open(io.BytesIO(fetched.content)) as hdus:
        assert hdus[0].header["SIMPLE"]
    anonymous = requests.get(this.access_url, timeout=60)
    assert anonymous.status_code == 401
    assert "Basic" in anonymous.headers["WWW-Authenticate"]
    # anonymous pyvo sees neither the row nor the links
    assert len(pyvo.dal.TAPService(server.tap_url).search(
        f"SELECT * FROM ivoa.obscore WHERE obs_publisher_did = '{did}'")) == 0
    hidden = pyvo.dal.adhoc.DatalinkResults.from_result_url(results[0]["access_url"])
    (row,) = list(hidden)
    assert str(row["error_message"]).startswith("NotFoundFault:") and not row["access_url"]


def _by_semantics(links, term: str) -> list:
    """Rows with exactly this term (pyvo's bysemantics also fetches the vocabulary from
    the IVOA web site to add narrower terms: no network here)."""
    return [row for row in links if row.semantics == term]


def test_tap_results_carry_the_datalink_descriptor(server, archive) -> None:
    """A TAP result with obs_publisher_did (sync and async, every VOTable serialization)
    names the {links} service for its rows; pyvo then asks for links 50 IDs at a time
    instead of once per row."""
    from lxml import etree

    vot = "{http://www.ivoa.net/xml/VOTable/v1.3}"
    query = "SELECT TOP 5 obs_publisher_did, s_ra FROM ivoa.obscore"
    for fmt in ("votable", "votable/td", "votable/b"):
        body = requests.get(f"{server.tap_url}/sync", timeout=60, params={
            "LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": fmt}).content
        root = etree.fromstring(body)
        (descriptor,) = root.findall(f"{vot}RESOURCE[@utype='adhoc:service']")
        ref = descriptor.find(f"{vot}GROUP/{vot}PARAM[@name='ID']").get("ref")
        assert root.find(f".//{vot}FIELD[@ID='{ref}']").get("name") == "obs_publisher_did"
        params = {p.get("name"): p.get("value") for p in descriptor.findall(f"{vot}PARAM")}
        assert params["accessURL"] == f"{server.base_url}/datalink/links"
    plain = requests.get(f"{server.tap_url}/sync", timeout=60, params={
        "LANG": "ADQL", "QUERY": "SELECT TOP 5 s_ra FROM ivoa.obscore"}).content
    assert b"adhoc:service" not in plain
    job = pyvo.dal.TAPService(server.tap_url).run_async(query)
    assert len(job) == 5 and job.resultstable is not None
    tap = pyvo.dal.TAPService(server.tap_url)
    results = tap.search("SELECT TOP 120 * FROM ivoa.obscore ORDER BY obs_publisher_did")
    before = server.log().count('"route": "/datalink/links"')
    assert sum(1 for _ in results.iter_datalinks()) == 120
    assert server.log().count('"route": "/datalink/links"') - before <= 3

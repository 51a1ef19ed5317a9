"""pyvo with HTTP Basic and with a bearer token reads an owner's proprietary rows.

Expected row sets are computed independently from the stored owner_ids and release
dates with the owner role, then compared with what each client gets over HTTP.
"""

from __future__ import annotations

import httpx
import psycopg2
import pytest
import pyvo
import requests
from pyvo.auth import authsession

from tests.conftest import run_cli

NIGHT = "((now() AT TIME ZONE 'UTC') - interval '20 hours')::date"


def _dids(database, where: str, params=()) -> set[str]:
    with psycopg2.connect(database.owner_dsn) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT obs_publisher_did FROM ivoa.obscore WHERE {where}", params)
        rows = {r[0] for r in cur.fetchall()}
    conn.close()
    return rows


def _public(database) -> set[str]:
    return _dids(database, f"obs_release_date IS NOT NULL AND obs_release_date::date <= {NIGHT}")


def _owned_proprietary(database, obid: int) -> set[str]:
    return _dids(database, f"%s = ANY(owner_ids) AND obs_release_date::date > {NIGHT}",
                 (obid,))


@pytest.fixture(scope="module")
def owner(archive, server):
    """A demo observer who owns proprietary rows, with their expected visible set."""
    for observer in archive.schedule["observers"]:
        owned = _owned_proprietary(server.database, observer["obid"])
        if owned:
            return observer, owned
    pytest.fail("the demo archive has no proprietary rows")


QUERY = "SELECT obs_publisher_did FROM ivoa.obscore"


def test_anonymous_pyvo_sees_no_proprietary_rows(server, owner):
    _observer, owned = owner
    rows = set(pyvo.dal.TAPService(server.tap_url).search(QUERY, maxrec=100000)
               .to_table()["obs_publisher_did"])
    assert rows == _public(server.database)
    assert not rows & owned


def test_basic_auth_pyvo_sees_own_proprietary_rows(server, owner):
    observer, owned = owner
    session = authsession.AuthSession()
    session.credentials.set_password(observer["email"], observer["password"])
    service = pyvo.dal.TAPService(server.tap_url, session=session)
    rows = set(service.search(QUERY, maxrec=100000).to_table()["obs_publisher_did"])
    assert owned <= rows
    assert rows - _public(server.database) == owned


def test_basic_auth_async_pyvo_sees_own_rows(server, owner):
    observer, owned = owner
    session = authsession.AuthSession()
    session.credentials.set_password(observer["email"], observer["password"])
    service = pyvo.dal.TAPService(server.tap_url, session=session)
    rows = set(service.run_async(QUERY, maxrec=100000).to_table()["obs_publisher_did"])
    assert rows - _public(server.database) == owned


def test_bearer_token_pyvo_sees_own_rows(server, owner):
    observer, owned = owner
    token = run_cli(server.database, "tokens", "create", observer["email"],
                    "--label", "test").strip().splitlines()[-1]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    service = pyvo.dal.TAPService(server.tap_url, session=session)
    rows = set(service.search(QUERY, maxrec=100000).to_table()["obs_publisher_did"])
    assert rows - _public(server.database) == owned


def test_wrong_password_is_401_with_challenge(server, owner):
    observer, _owned = owner
    reply = httpx.get(f"{server.tap_url}/sync", auth=(observer["email"], "wrong"),
                      params={"LANG": "ADQL", "QUERY": QUERY})
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"].startswith("Basic")
    assert "html" not in reply.headers["content-type"]


def test_unknown_token_is_401(server):
    reply = httpx.get(f"{server.tap_url}/sync", headers={"Authorization": "Bearer lick_nope"},
                      params={"LANG": "ADQL", "QUERY": QUERY})
    assert reply.status_code == 401

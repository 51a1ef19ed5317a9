"""The leak matrix over HTTP: each principal sees exactly its permitted rows, everywhere.

Principals: anonymous, an owner, another observer, staff; and anonymous again after
a release date passes.  Endpoints covered: TAP sync (rows, COUNT, joins with
lick.files, set operations, subqueries, upload joins, direct lookups), TAP async
(rows, job lists, another user's job and results).  Expected sets come from the
owner role's view of owner_ids and release dates, never from the service.
"""

from __future__ import annotations

import io
import time

import httpx
import psycopg2
import pytest
from astropy.io.votable import parse_single_table
from astropy.table import Table

from tests.conftest import fetch, run_cli, without_request_id

NIGHT = "((now() AT TIME ZONE 'UTC') - interval '20 hours')::date"
STAFF = ("staff@lick.example", "staff-password-1")


def _expected(database, obid: int | None, staff: bool = False) -> set[str]:
    if staff:
        return {r[0] for r in fetch(database.owner_dsn,
                                           "SELECT obs_publisher_did FROM ivoa.obscore")}
    rows = fetch(
        database.owner_dsn,
        "SELECT obs_publisher_did FROM ivoa.obscore WHERE "
        f"(obs_release_date IS NOT NULL AND obs_release_date::date <= {NIGHT}) "
        "OR (%s = ANY(owner_ids) AND obs_release_date IS NOT NULL)",
        (obid if obid is not None else -1,),
    )
    return {r[0] for r in rows}


@pytest.fixture(scope="module")
def principals(server, archive):
    """name -> (httpx auth or None, expected dids)."""
    run_cli(server.database, "users", "add", STAFF[0], "--password", STAFF[1], "--staff")
    observers = archive.schedule["observers"]
    with_rows = [o for o in observers
                 if _expected(server.database, o["obid"]) - _expected(server.database, None)]
    owner, other = with_rows[0], with_rows[1]
    return {
        "anonymous": (None, _expected(server.database, None)),
        "owner": ((owner["email"], owner["password"]), _expected(server.database, owner["obid"])),
        "other": ((other["email"], other["password"]), _expected(server.database, other["obid"])),
        "staff": (STAFF, _expected(server.database, None, staff=True)),
    }


def _sync(server, auth, query, **extra):
    reply = httpx.post(f"{server.tap_url}/sync", auth=auth, timeout=60, data={
        "LANG": "ADQL", "QUERY": query, "MAXREC": "1000000", **extra})
    assert reply.status_code == 200, reply.text
    return parse_single_table(io.BytesIO(reply.content)).to_table()


NAMES = ["anonymous", "owner", "other", "staff"]


def test_principals_differ(principals):
    sets = [principals[n][1] for n in NAMES]
    assert sets[0] < sets[1] and sets[0] < sets[2] and sets[1] != sets[2]
    assert sets[1] | sets[2] <= sets[3]


@pytest.mark.parametrize("name", NAMES)
def test_rows_and_counts(server, principals, name):
    auth, expected = principals[name]
    rows = set(_sync(server, auth, "SELECT obs_publisher_did FROM ivoa.obscore")
               ["obs_publisher_did"])
    assert rows == expected
    count = _sync(server, auth, "SELECT COUNT(*) AS n FROM ivoa.obscore")["n"][0]
    assert count == len(expected)
    files = _sync(server, auth, "SELECT COUNT(*) AS n FROM lick.files")["n"][0]
    assert files == len(expected)


@pytest.mark.parametrize("name", NAMES)
def test_joins_set_operations_and_subqueries(server, principals, name):
    auth, expected = principals[name]
    joined = _sync(server, auth,
                   "SELECT f.obs_publisher_did FROM lick.files AS f JOIN ivoa.obscore AS o "
                   "ON f.obs_publisher_did = o.obs_publisher_did")
    assert set(joined["obs_publisher_did"]) == expected
    union = _sync(server, auth,
                  "SELECT COUNT(*) AS n FROM (SELECT obs_publisher_did FROM ivoa.obscore "
                  "UNION SELECT obs_publisher_did FROM lick.files) AS u")
    assert union["n"][0] == len(expected)
    sub = _sync(server, auth,
                "SELECT MAX(t_exptime) AS m, COUNT(*) AS n FROM ivoa.obscore WHERE "
                "obs_publisher_did IN (SELECT obs_publisher_did FROM lick.files)")
    assert sub["n"][0] == len(expected)
    aggregate = _sync(server, auth, "SELECT instrument, COUNT(*) AS n FROM lick.files "
                                    "GROUP BY instrument")
    assert sum(aggregate["n"]) == len(expected)


@pytest.mark.parametrize("name", NAMES)
def test_upload_join_reveals_nothing_more(server, principals, name):
    auth, expected = principals[name]
    everything = principals["staff"][1]
    upload = Table({"did": sorted(everything)})
    buffer = io.BytesIO()
    upload.write(buffer, format="votable")
    reply = httpx.post(
        f"{server.tap_url}/sync", auth=auth, timeout=60,
        data={"LANG": "ADQL", "UPLOAD": "mine,param:mine", "MAXREC": "1000000",
              "QUERY": "SELECT m.did FROM TAP_UPLOAD.mine AS m JOIN ivoa.obscore AS o "
                       "ON o.obs_publisher_did = m.did"},
        files={"mine": ("mine.xml", buffer.getvalue(), "application/x-votable+xml")})
    assert reply.status_code == 200, reply.text
    rows = set(parse_single_table(io.BytesIO(reply.content)).to_table()["did"])
    assert rows == expected


@pytest.mark.parametrize("name", ["anonymous", "other"])
def test_direct_lookup_of_hidden_row_is_empty_not_an_error(server, principals, name):
    auth, expected = principals[name]
    hidden = sorted(principals["owner"][1] - expected)[0]
    table = _sync(server, auth, "SELECT obs_id FROM ivoa.obscore WHERE "
                                f"obs_publisher_did = '{hidden}'")
    assert len(table) == 0


def _run_job(server, auth, query):
    created = httpx.post(f"{server.tap_url}/async", auth=auth, data={
        "LANG": "ADQL", "QUERY": query, "PHASE": "RUN", "MAXREC": "1000000"})
    assert created.status_code == 303
    job = created.headers["location"]
    for _ in range(200):
        phase = httpx.get(f"{job}/phase", auth=auth).text.strip()
        if phase in ("COMPLETED", "ERROR"):
            break
        time.sleep(0.1)
    assert phase == "COMPLETED"
    return job


@pytest.mark.parametrize("name", NAMES)
def test_async_rows(server, principals, name):
    auth, expected = principals[name]
    job = _run_job(server, auth, "SELECT obs_publisher_did FROM ivoa.obscore")
    result = httpx.get(f"{job}/results/result", auth=auth)
    rows = set(parse_single_table(io.BytesIO(result.content)).to_table()["obs_publisher_did"])
    assert rows == expected


def test_other_users_jobs_are_invisible(server, principals):
    owner_auth = principals["owner"][0]
    other_auth = principals["other"][0]
    job = _run_job(server, owner_auth, "SELECT TOP 1 obs_id FROM ivoa.obscore")
    job_id = job.rsplit("/", 1)[1]
    missing = job.rsplit("/", 1)[0] + "/no-such-job-id-at-all"
    for path in ("", "/phase", "/results/result", "/parameters", "/error"):
        for auth in (other_auth, None):
            seen = httpx.get(job + path, auth=auth)
            absent = httpx.get(missing + path, auth=auth)
            assert seen.status_code == absent.status_code == 404
            assert without_request_id(seen.text).replace(job_id.encode(), b"X") == \
                without_request_id(absent.text).replace(b"no-such-job-id-at-all", b"X")
    listing = httpx.get(f"{server.tap_url}/async", auth=other_auth).text
    assert job_id not in listing
    assert job_id not in httpx.get(f"{server.tap_url}/async").text
    assert job_id in httpx.get(f"{server.tap_url}/async", auth=owner_auth).text


def test_rows_turn_public_after_release_without_reingest(server, principals):
    hidden = sorted(principals["owner"][1] - principals["anonymous"][1])[:3]
    query = "SELECT obs_publisher_did FROM ivoa.obscore"
    original = fetch(server.database.owner_dsn,
                            "SELECT obs_publisher_did, obs_release_date FROM ivoa.obscore "
                            "WHERE obs_publisher_did = ANY(%s)", (hidden,))
    conn = psycopg2.connect(server.database.owner_dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE ivoa.obscore SET obs_release_date = now() - interval '3 days' "
                        "WHERE obs_publisher_did = ANY(%s)", (hidden,))
        rows = set(_sync(server, None, query)["obs_publisher_did"])
        assert set(hidden) <= rows
        assert rows == principals["anonymous"][1] | set(hidden)
    finally:
        with conn, conn.cursor() as cur:
            for did, release in original:
                cur.execute("UPDATE ivoa.obscore SET obs_release_date = %s "
                            "WHERE obs_publisher_did = %s", (release, did))
        conn.close()
    assert set(_sync(server, None, query)["obs_publisher_did"]) == principals["anonymous"][1]


def test_data_rights_follow_release_dates(server, principals):
    from vo_service.database.pool import Pool
    from vo_service.services.housekeeping import refresh_data_rights

    did = sorted(principals["owner"][1] - principals["anonymous"][1])[0]
    (original,) = fetch(server.database.owner_dsn, "SELECT obs_release_date FROM ivoa.obscore "
                               "WHERE obs_publisher_did = %s", (did,))[0]
    conn = psycopg2.connect(server.database.owner_dsn)
    pool = Pool("test", server.database.owner_dsn, 1)
    pool.open()
    try:
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE ivoa.obscore SET obs_release_date = now() - interval '3 days' "
                        "WHERE obs_publisher_did = %s", (did,))
        assert refresh_data_rights(pool) >= 1
        rights = _sync(server, None, "SELECT data_rights FROM ivoa.obscore WHERE "
                       f"obs_publisher_did = '{did}'")["data_rights"]
        assert list(rights) == ["public"]
    finally:
        pool.close()
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE ivoa.obscore SET obs_release_date = %s, "
                        "data_rights = 'proprietary' WHERE obs_publisher_did = %s",
                        (original, did))
        conn.close()

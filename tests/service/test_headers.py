"""What the headers tell clients: login is possible, who was recognised, what is private,
which request it was; and which client addresses the service believes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import DemoArchive, RunningServer, TestDatabase, fetch, running_server

TOP = {"LANG": "ADQL", "QUERY": "SELECT TOP 1 obs_id FROM ivoa.obscore"}


def test_anonymous_capabilities_offer_login(server: RunningServer, archive: DemoArchive) -> None:
    anonymous = httpx.get(f"{server.tap_url}/capabilities")
    assert anonymous.status_code == 200
    challenge = anonymous.headers["www-authenticate"]
    assert challenge.startswith("Basic realm=") and "Bearer" in challenge
    email, password = archive.password(archive.schedule["observers"][0]["obid"])
    known = httpx.get(f"{server.tap_url}/capabilities", auth=(email, password))
    assert known.status_code == 200 and "www-authenticate" not in known.headers


def test_authenticated_answers_are_marked_and_private(server: RunningServer,
                                                      archive: DemoArchive) -> None:
    email, password = archive.password(archive.schedule["observers"][0]["obid"])
    reply = httpx.get(f"{server.tap_url}/sync", params=TOP, auth=(email, password))
    assert reply.status_code == 200
    assert reply.headers["x-vo-authenticated"] == email
    assert reply.headers["cache-control"] == "private"
    anonymous = httpx.get(f"{server.tap_url}/sync", params=TOP)
    assert "x-vo-authenticated" not in anonymous.headers
    assert len(anonymous.headers["x-request-id"]) == 16
    assert anonymous.headers["x-request-id"] != reply.headers["x-request-id"]


def test_job_results_are_private(server: RunningServer) -> None:
    created = httpx.post(f"{server.tap_url}/async", data={**TOP, "PHASE": "RUN"})
    job = created.headers["location"]
    httpx.get(job, params={"WAIT": "30", "PHASE": "QUEUED"}, timeout=60)
    httpx.get(job, params={"WAIT": "30", "PHASE": "EXECUTING"}, timeout=60)
    result = httpx.get(f"{job}/results/result")
    assert result.status_code == 200, result.text
    assert result.headers["cache-control"] == "private"


def test_an_oversized_query_is_a_usage_error(server: RunningServer) -> None:
    query = "SELECT obs_id FROM ivoa.obscore WHERE " + " OR ".join(["s_ra = 1"] * 25_000)
    reply = httpx.post(f"{server.tap_url}/sync", data={"LANG": "ADQL", "QUERY": query},
                       timeout=60)
    assert reply.status_code == 400, reply.text[:300]
    assert "characters" in reply.text and "Retry-After" not in reply.headers


def _failed_logins_from(database: TestDatabase, address: str) -> int:
    return int(fetch(database.owner_dsn, "SELECT count(*) FROM auth.login_attempts WHERE "
                     "address = %s AND NOT succeeded", (address,))[0][0])


@pytest.fixture(scope="module")
def proxied(database: TestDatabase, archive: DemoArchive) -> Iterator[RunningServer]:
    with running_server(database, {"LICK_ARCHIVE_SERVICE_TRUSTED_PROXIES": "127.0.0.1"}
                        ) as server:
        yield server


def test_forwarded_addresses_only_from_trusted_proxies(server: RunningServer,
                                                       proxied: RunningServer) -> None:
    """X-Forwarded-For decides the client address (login throttling, audit) only when
    the peer is a configured proxy; by default nobody is trusted."""
    bad = ("nobody@lick.example", "wrong-password")
    spoofed = {"X-Forwarded-For": "198.51.100.7"}
    httpx.get(f"{server.tap_url}/sync", params=TOP, auth=bad, headers=spoofed)
    assert _failed_logins_from(server.database, "198.51.100.7") == 0
    httpx.get(f"{proxied.tap_url}/sync", params=TOP, auth=bad,
              headers={"X-Forwarded-For": "198.51.100.8"})
    assert _failed_logins_from(server.database, "198.51.100.8") == 1

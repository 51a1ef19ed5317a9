"""Fixtures for the identity pages: a cookie-keeping HTTP client and accounts.

The pages are exercised against the real ``lick-archive serve`` process (fixture
``server``) the way a browser uses them: GET a page, read its CSRF token, POST the
form, follow the 303.  Expected row sets come from the owner role's view of the
database, never from the service.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import fetch, run_cli

NIGHT = "((now() AT TIME ZONE 'UTC') - interval '20 hours')::date"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
STAFF = ("web-staff@lick.example", "web-staff-password-1")


class WebClient:
    """An httpx client with a cookie jar that does not follow redirects by itself."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, follow_redirects=False, timeout=60)

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(self, path: str, data: dict[str, str], **kwargs) -> httpx.Response:
        return self.http.post(path, data=data, **kwargs)

    def csrf(self, page: str) -> str:
        """The CSRF token of the forms on ``page`` (fails when the page has none)."""
        reply = self.get(page)
        assert reply.status_code == 200, reply.text
        match = CSRF_RE.search(reply.text)
        assert match, f"no CSRF token on {page}"
        return match.group(1)

    def login(self, email: str, password: str, next_path: str | None = None
              ) -> httpx.Response:
        token = self.csrf("/login" if next_path is None else f"/login?next={next_path}")
        data = {"email": email, "password": password, "csrf_token": token}
        if next_path is not None:
            data["next"] = next_path
        return self.post("/login", data)

    @property
    def session_cookie(self) -> str | None:
        return self.http.cookies.get("lick_session")


@pytest.fixture
def client(server) -> Iterator[WebClient]:
    web = WebClient(server.base_url)
    yield web
    web.close()


@pytest.fixture
def make_client(server) -> Iterator:
    made: list[WebClient] = []

    def make() -> WebClient:
        made.append(WebClient(server.base_url))
        return made[-1]

    yield make
    for web in made:
        web.close()


@pytest.fixture(scope="session")
def staff_account(server) -> tuple[str, str]:
    run_cli(server.database, "users", "add", STAFF[0], "--password", STAFF[1], "--staff")
    return STAFF


def owner_rows(database, sql: str, params: tuple[object, ...] = ()) -> list[tuple]:
    return fetch(database.owner_dsn, sql, params)


def public_dids(database) -> set[str]:
    return {r[0] for r in owner_rows(
        database, "SELECT obs_publisher_did FROM ivoa.obscore WHERE obs_release_date IS NOT NULL"
        f" AND obs_release_date::date <= {NIGHT}")}


def proprietary_dids(database, obid: int | None = None) -> set[str]:
    """Dated rows not yet released (owned by ``obid`` when given)."""
    return {r[0] for r in owner_rows(
        database, "SELECT obs_publisher_did FROM ivoa.obscore WHERE obs_release_date IS NOT NULL"
        f" AND obs_release_date::date > {NIGHT}"
        " AND (%s::integer IS NULL OR %s = ANY(owner_ids))", (obid, obid))}


@dataclass(frozen=True)
class Observer:
    obid: int
    login: str
    password: str
    owned: frozenset[str]


@pytest.fixture(scope="session")
def observer(server, archive) -> Observer:
    """A demo observer owning proprietary rows."""
    for entry in archive.schedule["observers"]:
        owned = proprietary_dids(server.database, entry["obid"])
        if owned:
            login, password = archive.password(entry["obid"])
            return Observer(entry["obid"], login, password, frozenset(owned))
    pytest.fail("the demo archive has no proprietary rows")


def tap_reply(base_url: str, *, auth=None, headers=None,
              web: WebClient | None = None) -> httpx.Response:
    """TAP sync over every DID of ivoa.obscore (CSV), with these credentials."""
    post = web.http.post if web is not None else httpx.post
    return post(f"{base_url}/tap/sync", auth=auth, headers=headers, timeout=60,
                data={"LANG": "ADQL", "RESPONSEFORMAT": "csv", "MAXREC": "1000000",
                      "QUERY": "SELECT obs_publisher_did FROM ivoa.obscore"})


def tap_dids(base_url: str, *, auth=None, headers=None, web: WebClient | None = None
             ) -> set[str]:
    """The DIDs of ivoa.obscore the requester sees through TAP sync."""
    reply = tap_reply(base_url, auth=auth, headers=headers, web=web)
    assert reply.status_code == 200, reply.text
    rows = list(csv.reader(io.StringIO(reply.text)))
    assert rows[0] == ["obs_publisher_did"]
    return {r[0] for r in rows[1:]}


@pytest.fixture
def fresh_account(server) -> tuple[str, str]:
    """A new local account without roles (it sees what anonymous users see): requests
    that are rate-limited per user (tarballs) get a budget of their own."""
    import secrets

    login = f"web-{secrets.token_hex(5)}@lick.example"
    password = f"pw-{secrets.token_hex(8)}"
    run_cli(server.database, "users", "add", login, "--password", password)
    return login, password

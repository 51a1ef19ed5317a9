"""Hostile credentials end in a typed refusal, never an exception: property tests against
the real test database (non-UTF-8 and Latin-1 bytes, NUL and control characters,
overlong values, odd token characters, huge headers, any cookie, any address)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta

import psycopg2
import psycopg2.extensions
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from passlib.hash import apr_md5_crypt

from auth import users
from auth.credentials import (
    ANONYMOUS_IDENTITY,
    MAX_AUTHORIZATION_CHARS,
    Identity,
    Refusal,
    RefusalReason,
    authenticate_request,
)
from auth.login import authenticate_password
from auth.passwords import VerifiedCredentialCache
from auth.principals import ANONYMOUS
from auth.throttle import ThrottlePolicy
from tests.auth.conftest import empty_tables

# Throttling would turn most examples into cheap 429s; these tests want the full path.
OPEN = ThrottlePolicy(max_failures_per_login=10**6, max_failures_per_address=10**6,
                      window=timedelta(minutes=1))
DB_SETTINGS = settings(max_examples=60, deadline=None, database=None,
                       suppress_health_check=[HealthCheck.function_scoped_fixture,
                                              HealthCheck.too_slow])
CHEAP_SETTINGS = settings(max_examples=300, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])

LOGIN = "jörg.ü@example.org"
PASSWORD = "pässwörd-€-ok"
OBSERVER = "obs@example.org"
OBSERVER_PASSWORD = "obs-pw"


@pytest.fixture
def db(auth_db) -> Iterator[psycopg2.extensions.connection]:
    """Emptied tables, a local account with a non-ASCII login and password, an observer."""
    empty_tables(auth_db.owner_dsn)
    conn = psycopg2.connect(auth_db.owner_dsn)
    users.add_user(conn, LOGIN, PASSWORD)
    with conn, conn.cursor() as cur:
        cur.execute("INSERT INTO auth.users (observer_id, login, email, password_hash, is_local)"
                    " VALUES (1, %s, %s, %s, false)",
                    (OBSERVER, OBSERVER, apr_md5_crypt.hash(OBSERVER_PASSWORD)))
    yield conn
    conn.close()


def request(conn, authorization, cookie=None, address="192.0.2.1"):
    return authenticate_request(conn, authorization=authorization, session_cookie=cookie,
                                address=address, policy=OPEN, cache=VerifiedCredentialCache())


def basic_bytes(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode("ascii")


def is_right(login: str, password: str) -> bool:
    return ((login.strip().lower(), password) in
            ((LOGIN.lower(), PASSWORD), (OBSERVER, OBSERVER_PASSWORD)))


def test_utf8_credentials_are_accepted_latin1_refused_as_malformed(db) -> None:
    ok = request(db, basic_bytes(f"{LOGIN}:{PASSWORD}".encode()))
    assert isinstance(ok, Identity) and ok.principal.login == LOGIN
    latin1 = request(db, basic_bytes(f"{LOGIN}:{PASSWORD.replace('€', 'E')}".encode("latin-1")))
    assert isinstance(latin1, Refusal) and latin1.reason is RefusalReason.MALFORMED
    assert "UTF-8" in latin1.message and latin1.status == 401


@DB_SETTINGS
@given(login=st.binary(max_size=300), password=st.binary(max_size=1100))
def test_any_basic_bytes_end_in_a_refusal(db, login: bytes, password: bytes) -> None:
    outcome = request(db, basic_bytes(login + b":" + password))
    try:
        text_login, text_password = login.decode("utf-8"), password.decode("utf-8")
    except UnicodeDecodeError:
        assert isinstance(outcome, Refusal) and outcome.reason is RefusalReason.MALFORMED
        return
    if ":" not in text_login and is_right(text_login, text_password):
        assert isinstance(outcome, Identity)
    else:
        assert isinstance(outcome, Refusal) and outcome.status == 401


@DB_SETTINGS
@given(login=st.one_of(st.text(max_size=300), st.sampled_from([LOGIN, LOGIN.upper(), OBSERVER])),
       password=st.one_of(st.text(max_size=1100), st.just(PASSWORD),
                          st.text(alphabet="\x00\x01\x1f\x7f\x85\u2028 ", max_size=5)))
def test_any_text_credentials_end_in_a_refusal(db, login: str, password: str) -> None:
    outcome = request(db, basic_bytes(f"{login}:{password}".encode("utf-8", "surrogatepass")))
    if ":" not in login and is_right(login, password):
        assert isinstance(outcome, Identity) and outcome.principal.is_authenticated
    else:
        assert isinstance(outcome, Refusal) and outcome.status == 401
        assert outcome.headers["WWW-Authenticate"].startswith("Basic ")


@DB_SETTINGS
@given(login=st.text(max_size=300), password=st.text(max_size=1100),
       address=st.text(max_size=200))
def test_login_form_with_any_text_never_raises(db, login: str, password: str,
                                               address: str) -> None:
    result = authenticate_password(db, login, password, address, policy=OPEN)
    assert result.throttled is False
    assert (result.principal is not None) == is_right(login, password)


@CHEAP_SETTINGS
@given(header=st.one_of(
    st.text(max_size=400),
    st.binary(max_size=400),
    st.tuples(st.sampled_from(["Basic", "basic", "BASIC", "Bearer", "bearer", "Digest", ""]),
              st.text(max_size=200)).map(" ".join),
    st.tuples(st.sampled_from(["Basic ", "Bearer "]),
              st.text(alphabet="ABCDEFabcdef0123456789+/=_-.~ \t\x00é", max_size=120))
    .map("".join),
))
def test_any_header_ends_in_a_refusal(db, header: str | bytes) -> None:
    outcome = request(db, header)
    if not header:
        assert outcome is ANONYMOUS_IDENTITY
    else:
        assert isinstance(outcome, Refusal) and outcome.status == 401
        assert outcome.message.startswith(("malformed Authorization header: ", "wrong login",
                                           "unknown, expired"))


@CHEAP_SETTINGS
@given(token=st.one_of(
    st.text(min_size=1, max_size=300),
    st.from_regex(r"lick_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", fullmatch=True),
    st.from_regex(r"lick_[0-9a-f]{8}_[A-Za-z0-9_-]{43}\n?", fullmatch=True),
))
def test_any_bearer_token_ends_in_a_refusal(db, token: str) -> None:
    outcome = request(db, f"Bearer {token}")
    assert isinstance(outcome, Refusal) and outcome.status == 401
    assert outcome.headers["WWW-Authenticate"].startswith("Bearer ")


@CHEAP_SETTINGS
@given(cookie=st.one_of(st.text(max_size=300),
                        st.from_regex(r"[A-Za-z0-9_-]{43}", fullmatch=True)))
def test_any_cookie_is_an_anonymous_visitor(db, cookie: str) -> None:
    outcome = request(db, None, cookie=cookie)
    assert isinstance(outcome, Identity) and outcome.principal is ANONYMOUS
    assert outcome.stale_cookie == bool(cookie)


@settings(max_examples=20, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(MAX_AUTHORIZATION_CHARS - 5, 1_000_000),
       scheme=st.sampled_from(["Basic ", "Bearer ", "X "]))
def test_huge_headers_are_refused_unread(db, size: int, scheme: str) -> None:
    outcome = request(db, scheme + "A" * size)
    assert isinstance(outcome, Refusal) and outcome.status == 401
    if len(scheme) + size > MAX_AUTHORIZATION_CHARS:
        assert outcome.reason is RefusalReason.MALFORMED and "longer" in outcome.message

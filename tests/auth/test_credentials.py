"""HTTP credentials (Basic, bearer, cookie), sessions with CSRF, pooled-connection reset."""

from __future__ import annotations

import base64

import psycopg2
import pytest

from auth import sessions, tokens, users
from auth.credentials import (
    CHALLENGE,
    BasicCredentials,
    BearerCredentials,
    authenticate_request,
    parse_authorization,
)
from auth.identity import begin_query_transaction, load_secret, reset_connection
from auth.passwords import VerifiedCredentialCache
from auth.principals import ANONYMOUS
from tests.auth.leak_matrix import Row, insert_rows


def basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


@pytest.fixture
def alice(owner) -> users.User:
    return users.add_user(owner, "alice@example.org", "pass:with:colons", first_name="Alice")


@pytest.mark.parametrize(("header", "expected"), [
    (None, None),
    ("", None),
    (basic("a@b", "p:q"), BasicCredentials("a@b", "p:q")),
    ("basic " + base64.b64encode("ü@x:ö".encode()).decode(), BasicCredentials("ü@x", "ö")),
    ("Basic !!!notbase64", None),
    ("Basic " + base64.b64encode(b"no-colon").decode(), None),
    ("Basic " + base64.b64encode(b":nologin").decode(), None),
    ("Bearer lick_abc", BearerCredentials("lick_abc")),
    ("Bearer", None),
    ("Digest x", None),
])
def test_parse_authorization(header, expected) -> None:
    assert parse_authorization(header) == expected


def test_basic_bearer_cookie_and_anonymous(owner, alice) -> None:
    cache = VerifiedCredentialCache()
    ok = authenticate_request(owner, authorization=basic(alice.login, "pass:with:colons"),
                              session_cookie=None, address="10.3.0.1", cache=cache)
    assert ok.principal.user_id == alice.user_id and not ok.refused
    assert ok.principal.auth_method == "basic"
    wrong = authenticate_request(owner, authorization=basic(alice.login, "nope"),
                                 session_cookie=None, address="10.3.0.1", cache=cache)
    assert wrong.refused and wrong.principal is ANONYMOUS and wrong.challenge == CHALLENGE
    token, _ = tokens.create_token(owner, alice.user_id)
    by_token = authenticate_request(owner, authorization=f"Bearer {token}",
                                    session_cookie=None, address="10.3.0.2")
    assert by_token.principal.user_id == alice.user_id
    bad_token = authenticate_request(owner, authorization="Bearer lick_00000000_" + "A" * 43,
                                     session_cookie=None, address="10.3.0.2")
    assert bad_token.refused
    garbage = authenticate_request(owner, authorization="Negotiate xyz", session_cookie=None,
                                   address="10.3.0.2")
    assert garbage.refused
    nobody = authenticate_request(owner, authorization=None, session_cookie=None,
                                  address="10.3.0.3")
    assert nobody.principal is ANONYMOUS and not nobody.refused
    cookie, _ = sessions.create_session(owner, ok.principal)
    by_cookie = authenticate_request(owner, authorization=None, session_cookie=cookie,
                                     address="10.3.0.4")
    assert by_cookie.principal.user_id == alice.user_id
    assert by_cookie.principal.auth_method == "session"
    stale = authenticate_request(owner, authorization=None, session_cookie="forged",
                                 address="10.3.0.4")
    assert stale.principal is ANONYMOUS and not stale.refused


def test_sessions_csrf_logout_expiry_and_disable(owner, alice) -> None:
    principal = users.principal_for(owner, alice.user_id)
    assert principal is not None
    cookie, session = sessions.create_session(owner, principal, address="10.4.0.1")
    loaded = sessions.load_session(owner, cookie)
    assert loaded is not None and loaded.session_id == session.session_id
    assert sessions.csrf_matches(loaded, session.csrf_token)
    assert not sessions.csrf_matches(loaded, session.csrf_token[:-1] + "x")
    assert not sessions.csrf_matches(loaded, None)
    with owner, owner.cursor() as cur:
        cur.execute("SELECT count(*) FROM auth.sessions WHERE secret_hash::text LIKE %s",
                    (f"%{cookie}%",))
        assert cur.fetchone() == (0,), "only the hash is stored"
    assert sessions.end_session(owner, cookie)
    assert sessions.load_session(owner, cookie) is None
    assert not sessions.end_session(owner, cookie)

    cookie2, _ = sessions.create_session(owner, principal)
    with owner, owner.cursor() as cur:
        cur.execute("UPDATE auth.sessions SET expires_at = now() - interval '1 second'")
    assert sessions.load_session(owner, cookie2) is None
    assert sessions.purge_expired(owner) == 1

    cookie3, _ = sessions.create_session(owner, principal)
    users.disable_user(owner, alice.login)
    users.set_active(owner, alice.login, True)
    assert sessions.load_session(owner, cookie3) is None, "disabling ended the session"
    with pytest.raises(ValueError):
        sessions.create_session(owner, ANONYMOUS)


def test_reset_connection_drops_state_left_by_the_previous_requester(auth_db, owner) -> None:
    """A staff request leaves a preserved temp table; the next requester must not read it."""
    with owner, owner.cursor() as cur:
        insert_rows(cur, (Row("reset_hidden", "future", (555,)),))
        secret = load_secret(cur)
    staff = users.add_user(owner, "staff@example.org", "staff-password", is_staff=True)
    principal = users.principal_for(owner, staff.user_id)
    assert principal is not None
    conn = psycopg2.connect(auth_db.query_dsn)
    try:
        with conn.cursor() as cur:
            begin_query_transaction(cur, principal, secret, temp_tables=(
                "CREATE TEMP TABLE stash (did text) ON COMMIT PRESERVE ROWS",))
            cur.execute("INSERT INTO pg_temp.stash SELECT obs_publisher_did FROM ivoa.obscore")
        conn.commit()
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_temp.stash")
            assert cur.fetchone() == (1,), "without a reset, the stash survives"
        reset_connection(conn)
        with conn.cursor() as cur:
            begin_query_transaction(cur, ANONYMOUS, secret)
            with pytest.raises(psycopg2.errors.UndefinedTable):
                cur.execute("SELECT count(*) FROM pg_temp.stash")
        conn.rollback()
    finally:
        conn.close()

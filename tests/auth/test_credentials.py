"""HTTP credentials (Basic, bearer, cookie), sessions with CSRF, pooled-connection reset."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from datetime import timedelta

import psycopg2
import psycopg2.extensions
import pytest

from auth import housekeeping, sessions, tokens, users
from auth.credentials import (
    ANONYMOUS_IDENTITY,
    CHALLENGE,
    BasicCredentials,
    BearerCredentials,
    Identity,
    Malformed,
    Refusal,
    RefusalReason,
    authenticate_request,
    parse_authorization,
)
from auth.identity import begin_query_transaction, load_secret, reset_connection
from auth.passwords import VerifiedCredentialCache
from auth.principals import ANONYMOUS
from auth.throttle import ThrottlePolicy
from tests.auth.leak_matrix import Row, insert_rows


def basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


POLICY = ThrottlePolicy(max_failures_per_login=3, max_failures_per_address=50,
                        window=timedelta(minutes=10))


class CountingSource:
    """A connection source (like a pool's ``owner()``) that counts what it lends."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.borrowed = 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[psycopg2.extensions.connection]:
        self.borrowed += 1
        conn = psycopg2.connect(self.dsn)
        try:
            yield conn
        finally:
            conn.close()


def authenticate(connect, authorization=None, cookie=None, address="10.3.0.1",
                 cache=None):
    return authenticate_request(connect, authorization=authorization, session_cookie=cookie,
                                address=address, policy=POLICY, cache=cache)


@pytest.fixture
def alice(owner) -> users.User:
    return users.add_user(owner, "alice@example.org", "pass:with:colons", first_name="Alice")


@pytest.mark.parametrize(("header", "expected"), [
    (None, None),
    (basic("a@b", "p:q"), BasicCredentials("a@b", "p:q")),
    ("basic " + base64.b64encode("ü@x:ö".encode()).decode(), BasicCredentials("ü@x", "ö")),
    (("Basic " + base64.b64encode("ü@x:ö".encode()).decode()).encode(),
     BasicCredentials("ü@x", "ö")),
    ("  Basic\t" + base64.b64encode(b"a:b").decode() + "  ", BasicCredentials("a", "b")),
    ("Bearer lick_abc", BearerCredentials("lick_abc")),
])
def test_parse_authorization(header, expected) -> None:
    assert parse_authorization(header) == expected


@pytest.mark.parametrize(("header", "says"), [
    ("", "empty"),
    ("   ", "empty"),
    ("Basic !!!notbase64", "base64"),
    ("Basic ünïcode", "base64"),
    ("Basic " + base64.b64encode("jörg:pw".encode("latin-1")).decode(), "UTF-8"),
    ("Basic " + base64.b64encode(b"no-colon").decode(), "':'"),
    ("Basic " + base64.b64encode(b":nologin").decode(), "login"),
    ("Basic " + base64.b64encode(b" :nologin").decode(), "login"),
    ("Basic", "no credentials after 'Basic'"),
    ("Bearer", "token"),
    ("Bearer   ", "token"),
    ("Digest x", "'Digest'"),
    ("\x00\x01 x", "scheme"),
    ("Basic " + "A" * 9000, "longer than 8192"),
])
def test_malformed_headers_say_what_is_wrong(header, says) -> None:
    parsed = parse_authorization(header)
    assert isinstance(parsed, Malformed)
    assert says in parsed.message


def test_credentials_never_show_in_repr() -> None:
    assert "secret" not in repr(BasicCredentials("a@b", "secret"))
    assert "secret" not in repr(BearerCredentials("secret"))


def test_basic_bearer_cookie_and_anonymous(auth_db, owner, alice) -> None:
    source = CountingSource(auth_db.owner_dsn)
    cache = VerifiedCredentialCache()
    ok = authenticate(source, basic(alice.login, "pass:with:colons"), cache=cache)
    assert isinstance(ok, Identity) and ok.principal.user_id == alice.user_id
    assert ok.principal.auth_method == "basic" and ok.session is None
    wrong = authenticate(source, basic(alice.login, "nope"), cache=cache)
    assert isinstance(wrong, Refusal) and wrong.reason is RefusalReason.WRONG_CREDENTIALS
    assert (wrong.status, wrong.headers) == (401, {"WWW-Authenticate": CHALLENGE})
    assert CHALLENGE.startswith("Basic ") and 'charset="UTF-8"' in CHALLENGE
    token, _ = tokens.create_token(owner, alice.user_id)
    by_token = authenticate(source, f"Bearer {token}")
    assert isinstance(by_token, Identity) and by_token.principal.user_id == alice.user_id
    assert by_token.principal.auth_method == "token"
    bad_token = authenticate(source, "Bearer lick_00000000_" + "A" * 43)
    assert isinstance(bad_token, Refusal) and bad_token.status == 401
    assert bad_token.headers["WWW-Authenticate"].startswith("Bearer ")
    garbage = authenticate(source, "Negotiate xyz")
    assert isinstance(garbage, Refusal) and garbage.reason is RefusalReason.MALFORMED
    assert garbage.status == 401 and "Negotiate" in garbage.message
    cookie, session = sessions.create_session(owner, ok.principal)
    by_cookie = authenticate(source, cookie=cookie)
    assert isinstance(by_cookie, Identity) and by_cookie.principal.user_id == alice.user_id
    assert by_cookie.principal.auth_method == "session" and not by_cookie.stale_cookie
    assert by_cookie.session is not None and by_cookie.session.csrf_token == session.csrf_token
    header_wins = authenticate(source, f"Bearer {token}", cookie=cookie)
    assert isinstance(header_wins, Identity) and header_wins.session is None
    assert header_wins.principal.auth_method == "token"
    wrong_header_wins = authenticate(source, basic(alice.login, "nope"), cookie=cookie)
    assert isinstance(wrong_header_wins, Refusal), "a valid cookie does not excuse a bad header"
    sessions.end_session(owner, cookie)
    stale = authenticate(source, cookie=cookie)
    assert stale == Identity(ANONYMOUS, stale_cookie=True)


def test_no_database_work_for_anonymous_or_shapeless_credentials(owner) -> None:
    def no_database() -> contextlib.AbstractContextManager[psycopg2.extensions.connection]:
        raise AssertionError("no connection may be borrowed")

    assert authenticate(no_database) is ANONYMOUS_IDENTITY
    assert authenticate(no_database, "", cookie="") is ANONYMOUS_IDENTITY
    assert authenticate(no_database, cookie="forged") == Identity(ANONYMOUS, stale_cookie=True)
    for header in ("Bearer not-a-token", "Digest x", "Basic ???", basic("a\x00b", "pw"),
                   basic("alice@example.org", "pw\x00"), basic("a" * 255, "pw"),
                   basic("alice@example.org", "p" * 1025), basic("a\nb", "pw")):
        assert isinstance(authenticate(no_database, header), Refusal), header


def test_a_cached_basic_login_costs_one_statement_and_a_failure_two(auth_db, alice) -> None:
    source = CountingSource(auth_db.owner_dsn)
    cache = VerifiedCredentialCache()
    header = basic(alice.login, "pass:with:colons")
    assert isinstance(authenticate(source, header, cache=cache), Identity)
    assert source.borrowed == 2, "lookup, then the recorded success"
    assert isinstance(authenticate(source, header, cache=cache), Identity)
    assert source.borrowed == 3, "recalled: the lookup only"
    assert isinstance(authenticate(source, basic(alice.login, "x"), cache=cache), Refusal)
    assert isinstance(authenticate(source, basic("nobody@example.org", "x"), cache=cache),
                      Refusal)
    assert source.borrowed == 7


def test_throttled_basic_is_429_with_retry_after(owner, alice) -> None:
    for _ in range(3):
        authenticate(owner, basic(alice.login, "wrong"), address="10.3.1.1")
    throttled = authenticate(owner, basic(alice.login, "pass:with:colons"), address="10.3.1.2")
    assert isinstance(throttled, Refusal) and throttled.reason is RefusalReason.THROTTLED
    assert throttled.status == 429 and throttled.retry_after_seconds is not None
    assert 0 < throttled.retry_after_seconds <= 600
    assert throttled.headers == {"Retry-After": str(throttled.retry_after_seconds)}
    assert f"{throttled.retry_after_seconds} s" in throttled.message


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
    assert housekeeping.purge(owner, attempts_older_than=timedelta(days=1),
                              audit_older_than=None).sessions == 1

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

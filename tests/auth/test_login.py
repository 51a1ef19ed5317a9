"""Password login: throttling per account and per address, audit, rehash, accounts."""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg2
import psycopg2.extensions
import pytest
from passlib.hash import pbkdf2_sha256

from auth import audit, throttle, users
from auth.login import LoginResult, authenticate_password
from auth.passwords import VerifiedCredentialCache

POLICY = throttle.ThrottlePolicy(max_failures_per_login=3, max_failures_per_address=5,
                                 window=timedelta(minutes=10))


@pytest.fixture
def alice(owner) -> users.User:
    return users.add_user(owner, "Alice@Example.org", "alice-password", first_name="Alice",
                          last_name="Owner")


def test_success_failure_and_audit(owner, alice) -> None:
    ok = authenticate_password(owner, "alice@example.ORG", "alice-password", "10.0.0.1",
                               policy=POLICY)
    assert ok.principal is not None and ok.principal.user_id == alice.user_id
    assert ok.principal.display_name == "Alice Owner"
    bad = authenticate_password(owner, "alice@example.org", "wrong", "10.0.0.1", policy=POLICY)
    assert bad.principal is None and not bad.throttled
    unknown = authenticate_password(owner, "nobody@example.org", "x", "10.0.0.1", policy=POLICY)
    assert unknown.principal is None and not unknown.throttled
    events = [(e.event, e.actor_login) for e in audit.list_events(owner)]
    assert (audit.LOGIN, "Alice@Example.org") in events
    assert (audit.LOGIN_FAILED, "alice@example.org") in events
    assert (audit.LOGIN_FAILED, "nobody@example.org") in events


def test_account_throttled_from_any_address_until_window_passes(owner, alice) -> None:
    for i in range(3):
        r = authenticate_password(owner, alice.login, "wrong", f"10.0.1.{i}", policy=POLICY)
        assert r.principal is None and not r.throttled
    locked = authenticate_password(owner, alice.login, "alice-password", "10.0.2.1",
                                   policy=POLICY)
    assert locked.throttled and locked.principal is None
    assert 0 < locked.retry_after_seconds <= 600
    with owner, owner.cursor() as cur:
        cur.execute("UPDATE auth.login_attempts SET at = at - interval '11 minutes'")
    assert authenticate_password(owner, alice.login, "alice-password", "10.0.2.1",
                                 policy=POLICY).principal is not None
    assert audit.LOGIN_THROTTLED in [e.event for e in audit.list_events(owner)]


def test_success_resets_the_account_count(owner, alice) -> None:
    for _ in range(2):
        authenticate_password(owner, alice.login, "wrong", "10.0.3.1", policy=POLICY)
    assert authenticate_password(owner, alice.login, "alice-password", "10.0.3.1",
                                 policy=POLICY).principal is not None
    for _ in range(2):
        authenticate_password(owner, alice.login, "wrong", "10.0.3.1", policy=POLICY)
    assert throttle.check(owner, alice.login, "10.0.3.9", POLICY).allowed, "2 since success"
    authenticate_password(owner, alice.login, "wrong", "10.0.3.1", policy=POLICY)
    assert not throttle.check(owner, alice.login, "10.0.3.9", POLICY).allowed


def test_address_throttled_across_accounts(owner, alice) -> None:
    for i in range(5):
        authenticate_password(owner, f"guess{i}@example.org", "x", "192.0.2.7", policy=POLICY)
    r = authenticate_password(owner, alice.login, "alice-password", "192.0.2.7", policy=POLICY)
    assert r.throttled
    other = authenticate_password(owner, alice.login, "alice-password", "192.0.2.8",
                                  policy=POLICY)
    assert other.principal is not None


def test_a_throttled_client_is_audited_once_per_window(owner, alice) -> None:
    """Each throttled try used to add an audit row: a client retrying in a loop grew the
    log without bound.  Now one per login and address per window."""
    for _ in range(3):
        authenticate_password(owner, alice.login, "wrong", "10.0.4.1", policy=POLICY)
    for _ in range(5):
        assert authenticate_password(owner, alice.login.upper(), "wrong", "10.0.4.1",
                                     policy=POLICY).throttled
    assert authenticate_password(owner, alice.login, "wrong", "10.0.4.2", policy=POLICY).throttled

    def throttled_events() -> list[tuple[str, str]]:
        return sorted((e.actor_login.lower(), e.address)
                      for e in audit.list_events(owner, event=audit.LOGIN_THROTTLED))

    assert throttled_events() == [(alice.login.lower(), "10.0.4.1"),
                                  (alice.login.lower(), "10.0.4.2")]
    with owner, owner.cursor() as cur:
        cur.execute("UPDATE auth.audit_log SET at = at - interval '11 minutes'"
                    " WHERE event = %s", (audit.LOGIN_THROTTLED,))
    assert authenticate_password(owner, alice.login, "wrong", "10.0.4.1", policy=POLICY).throttled
    assert len(throttled_events()) == 3, "a new window, a new event"
    with owner, owner.cursor() as cur:
        cur.execute("SELECT count(*) FROM auth.login_attempts")
        assert cur.fetchone() == (3,), "throttled tries are not attempts"


def test_concurrent_throttled_tries_add_one_event(auth_db, owner, alice) -> None:
    for _ in range(3):
        authenticate_password(owner, alice.login, "wrong", "10.0.4.9", policy=POLICY)

    def attempt(_: int) -> bool:
        conn = psycopg2.connect(auth_db.owner_dsn)
        try:
            return authenticate_password(conn, alice.login, "wrong", "10.0.4.9",
                                         policy=POLICY).throttled
        finally:
            conn.close()

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(attempt, range(16)))
    assert len(audit.list_events(owner, event=audit.LOGIN_THROTTLED)) == 1


@pytest.mark.parametrize(("login", "password"), [
    ("", "x"), ("   ", "x"), ("a\x00b@example.org", "x"), ("alice@example.org", "a\x00b"),
    ("a\x7fb", "x"), ("a\u0085b", "x"), ("alice@example.org", "\ud800"), ("\udcff", "x"),
    ("a" * 255, "x"), ("alice@example.org", "p" * 1025),
])
def test_impossible_credentials_are_refused_before_any_query(owner, login, password) -> None:
    def no_database() -> contextlib.AbstractContextManager[psycopg2.extensions.connection]:
        raise AssertionError("no query for credentials no account can have")

    assert authenticate_password(no_database, login, password, "10.0.4.3",
                                 policy=POLICY) == LoginResult(None)


def test_hostile_address_is_stored_safely(owner, alice) -> None:
    bad = authenticate_password(owner, alice.login, "wrong", "10.0.\x00.1\n" + "x" * 500,
                                policy=POLICY)
    assert bad.principal is None
    with owner, owner.cursor() as cur:
        cur.execute("SELECT address FROM auth.login_attempts")
        (address,) = cur.fetchone()
    assert address.startswith("10.0.?.1?") and len(address) == 100


def test_successes_recorded_when_verified_repeats_only_when_asked(owner, alice) -> None:
    cache = VerifiedCredentialCache()
    for _ in range(3):
        assert authenticate_password(owner, alice.login, "alice-password", "10.0.4.4",
                                     policy=POLICY, cache=cache,
                                     audit_success=False).principal is not None
    assert len(audit.list_events(owner, event=audit.LOGIN)) == 1, "the verified one only"
    authenticate_password(owner, alice.login, "alice-password", "10.0.4.4", policy=POLICY,
                          cache=cache)
    assert len(audit.list_events(owner, event=audit.LOGIN)) == 2


def test_wrong_passwords_never_enter_the_cache(owner, alice) -> None:
    cache = VerifiedCredentialCache()
    authenticate_password(owner, alice.login, "wrong", "10.0.4.5", policy=POLICY, cache=cache)
    authenticate_password(owner, "nobody@example.org", "wrong", "10.0.4.5", policy=POLICY,
                          cache=cache)
    assert len(cache) == 0


def test_local_pbkdf2_hash_upgraded_on_login(owner, alice) -> None:
    with owner, owner.cursor() as cur:
        cur.execute("UPDATE auth.users SET password_hash = %s WHERE user_id = %s",
                    (pbkdf2_sha256.hash("alice-password"), alice.user_id))
    assert authenticate_password(owner, alice.login, "alice-password", "10.0.5.1",
                                 policy=POLICY).principal is not None
    with owner, owner.cursor() as cur:
        cur.execute("SELECT password_hash FROM auth.users WHERE user_id = %s", (alice.user_id,))
        assert cur.fetchone()[0].startswith("$argon2id$")


def test_cache_skips_rehash_but_not_checks(owner, alice) -> None:
    cache = VerifiedCredentialCache()
    for _ in range(3):
        assert authenticate_password(owner, alice.login, "alice-password", "10.0.6.1",
                                     policy=POLICY, cache=cache,
                                     audit_success=False).principal is not None
    users.disable_user(owner, alice.login)
    assert authenticate_password(owner, alice.login, "alice-password", "10.0.6.1",
                                 policy=POLICY, cache=cache).principal is None


def test_account_management(owner, alice) -> None:
    with pytest.raises(users.UserError):
        users.add_user(owner, "alice@EXAMPLE.org", "another-password")
    with pytest.raises(users.UserError):
        users.add_user(owner, "has space@example.org", "another-password")
    with pytest.raises(users.UserError):
        users.add_user(owner, "short@example.org", "short")
    staff = users.add_user(owner, "staff@example.org", "staff-password", is_staff=True)
    admin = users.add_user(owner, "admin@example.org", "admin-password", is_admin=True)
    assert staff.is_staff and not staff.is_admin and staff.is_local
    assert admin.is_staff and admin.is_admin
    users.set_password(owner, alice.login, "a-new-password")
    assert authenticate_password(owner, alice.login, "a-new-password", "10.0.7.1",
                                 policy=POLICY).principal is not None
    users.disable_user(owner, alice.login, actor=None)
    assert [u.login for u in users.list_users(owner, include_inactive=False)] == [
        "admin@example.org", "staff@example.org"]
    assert len(users.list_users(owner)) == 3
    assert authenticate_password(owner, alice.login, "a-new-password", "10.0.7.1",
                                 policy=POLICY).principal is None
    users.create_group(owner, "team")
    users.set_membership(owner, "team", staff.login, True)
    principal = users.principal_for(owner, staff.user_id)
    assert principal is not None and principal.group_names == frozenset({"team"})
    users.set_membership(owner, "team", staff.login, False)
    assert users.list_groups(owner)[0].member_logins == ()


def test_service_policy_from_its_two_settings() -> None:
    policy = throttle.ThrottlePolicy.for_limit(5, 900)
    assert policy == throttle.ThrottlePolicy(5, 20, timedelta(minutes=15))


@pytest.mark.parametrize(("login", "password"), [
    ("ctl\x01@example.org", "long-enough"), ("a" * 250 + "@x.org", "long-enough"),
    ("ok@example.org", "nul\x00-password"), ("ok@example.org", "p" * 1025),
])
def test_accounts_cannot_get_credentials_that_login_refuses(owner, login, password) -> None:
    with pytest.raises(users.UserError):
        users.add_user(owner, login, password)

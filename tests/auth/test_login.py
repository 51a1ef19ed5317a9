"""Password login: throttling per account and per address, audit, rehash, accounts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from passlib.hash import pbkdf2_sha256

from auth import audit, throttle, users
from auth.login import authenticate_password
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


def test_purge_old_attempts(owner, alice) -> None:
    authenticate_password(owner, alice.login, "wrong", "10.0.4.1", policy=POLICY)
    with owner, owner.cursor() as cur:
        cur.execute("UPDATE auth.login_attempts SET at = at - interval '40 days'")
    assert throttle.purge(owner) == 1


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

"""Personal tokens: shown once, stored hashed, revocable, expiring, tied to active accounts."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from auth import audit, tokens, users


@pytest.fixture
def alice(owner) -> users.User:
    return users.add_user(owner, "alice@example.org", "alice-password", first_name="Alice")


def test_token_round_trip_and_storage(owner, alice) -> None:
    token, info = tokens.create_token(owner, alice.user_id, label="laptop")
    assert token.startswith(f"lick_{info.prefix}_")
    assert tokens.looks_like_token(token)
    principal = tokens.verify_token(owner, token)
    assert principal is not None
    assert (principal.user_id, principal.login, principal.auth_method) == (
        alice.user_id, "alice@example.org", "token")
    with owner, owner.cursor() as cur:
        cur.execute("SELECT secret_hash, prefix FROM auth.tokens")
        stored, prefix = cur.fetchone()
        cur.execute("SELECT count(*) FROM auth.tokens WHERE secret_hash::text LIKE %s",
                    ("%" + token.split("_")[-1] + "%",))
        assert cur.fetchone() == (0,)
    assert bytes(stored) == hashlib.sha256(token.encode()).digest()
    assert prefix == info.prefix
    listed = tokens.list_tokens(owner, alice.user_id)
    assert [t.prefix for t in listed] == [info.prefix]
    assert listed[0].last_used_at is not None, "verification records use"


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
    lambda t: t.upper(),
    lambda t: t + "x",
    lambda t: "",
    lambda t: "Bearer " + t,
])
def test_altered_tokens_fail(owner, alice, mangle) -> None:
    token, _ = tokens.create_token(owner, alice.user_id)
    assert tokens.verify_token(owner, mangle(token)) is None


def test_revoke_by_prefix_and_only_own(owner, alice) -> None:
    bob = users.add_user(owner, "bob@example.org", "bob-password")
    token, info = tokens.create_token(owner, alice.user_id)
    assert not tokens.revoke_token(owner, info.prefix, user_id=bob.user_id)
    assert tokens.verify_token(owner, token) is not None
    assert tokens.revoke_token(owner, f"lick_{info.prefix}", user_id=alice.user_id)
    assert tokens.verify_token(owner, token) is None
    assert not tokens.revoke_token(owner, info.prefix), "already revoked"
    assert tokens.list_tokens(owner, alice.user_id) == []
    assert len(tokens.list_tokens(owner, alice.user_id, include_revoked=True)) == 1
    events = [e.event for e in audit.list_events(owner)]
    assert events.count(audit.TOKEN_CREATED) == 1
    assert events.count(audit.TOKEN_REVOKED) == 1


def test_expiry(owner, alice) -> None:
    past, _ = tokens.create_token(owner, alice.user_id,
                                  expires_at=datetime.now(UTC) - timedelta(seconds=1))
    future, _ = tokens.create_token(owner, alice.user_id,
                                    expires_at=datetime.now(UTC) + timedelta(hours=1))
    assert tokens.verify_token(owner, past) is None
    assert tokens.verify_token(owner, future) is not None


def test_disabled_account_tokens_stop_working(owner, alice) -> None:
    token, _ = tokens.create_token(owner, alice.user_id)
    users.disable_user(owner, alice.login)
    assert tokens.verify_token(owner, token) is None
    with pytest.raises(tokens.TokenError):
        tokens.create_token(owner, alice.user_id)
    users.set_active(owner, alice.login, True)
    assert tokens.verify_token(owner, token) is not None

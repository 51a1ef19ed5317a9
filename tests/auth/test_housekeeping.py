"""The periodic clean-up: expired sessions, old attempts, audit retention, cheap batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from auth import audit, grants, sessions, tokens, users
from auth.housekeeping import PurgeCounts, purge
from auth.login import authenticate_password
from auth.throttle import ThrottlePolicy

POLICY = ThrottlePolicy(max_failures_per_login=10, max_failures_per_address=10,
                        window=timedelta(minutes=10))


def count(owner, table: str) -> int:
    with owner, owner.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM auth.{table}")
        return int(cur.fetchone()[0])


def age(owner, table: str, column: str, by: str, where: str = "true") -> None:
    with owner, owner.cursor() as cur:
        cur.execute(f"UPDATE auth.{table} SET {column} = {column} - interval '{by}'"
                    f" WHERE {where}")


@pytest.fixture
def alice(owner) -> users.User:
    return users.add_user(owner, "alice@example.org", "alice-password")


def test_purge_keeps_what_is_young_and_what_staff_read(owner, alice) -> None:
    principal = users.principal_for(owner, alice.user_id)
    assert principal is not None
    old_cookie, _ = sessions.create_session(owner, principal)
    live_cookie, _ = sessions.create_session(owner, principal)
    age(owner, "sessions", "expires_at", "9 hours",
        f"secret_hash = sha256(convert_to('{old_cookie}', 'UTF8'))")
    for i in range(4):
        authenticate_password(owner, alice.login, "wrong", f"10.8.0.{i}", policy=POLICY)
    age(owner, "login_attempts", "at", "2 days", "address IN ('10.8.0.0', '10.8.0.1')")
    age(owner, "audit_log", "at", "400 days", "address = '10.8.0.0'")
    grants.create_grant(owner, user_login=alice.login, program="2020A-1",
                        expires_at=datetime.now(UTC) - timedelta(days=1000))
    tokens.create_token(owner, alice.user_id, expires_at=datetime.now(UTC) - timedelta(days=9))
    events_before = count(owner, "audit_log")

    kept_everything = purge(owner, attempts_older_than=timedelta(days=30),
                            audit_older_than=None)
    assert kept_everything == PurgeCounts(sessions=1)
    assert sessions.load_session(owner, live_cookie) is not None
    assert count(owner, "login_attempts") == 4

    counts = purge(owner, attempts_older_than=timedelta(days=1),
                   audit_older_than=timedelta(days=365))
    assert counts == PurgeCounts(sessions=0, login_attempts=2, audit_events=1)
    assert count(owner, "audit_log") == events_before - 1
    assert count(owner, "login_attempts") == 2
    assert len(grants.list_grants(owner, live_only=False)) == 1, "the admin page lists it"
    assert len(tokens.list_tokens(owner, alice.user_id, include_revoked=True)) == 1


def test_purge_runs_in_batches(owner, alice) -> None:
    for i in range(7):
        authenticate_password(owner, alice.login, "wrong", f"10.8.1.{i}",
                              policy=ThrottlePolicy(100, 100))
    age(owner, "login_attempts", "at", "40 days")
    age(owner, "audit_log", "at", "40 days")
    counts = purge(owner, attempts_older_than=timedelta(days=30),
                   audit_older_than=timedelta(days=30), batch_rows=2)
    assert (counts.login_attempts, counts.audit_events) == (7, 8), "7 failures + the account"
    assert count(owner, "login_attempts") == count(owner, "audit_log") == 0


def test_purge_refuses_settings_that_would_unlock_accounts(owner) -> None:
    with pytest.raises(ValueError, match="throttle window"):
        purge(owner, attempts_older_than=timedelta(minutes=5), audit_older_than=None,
              throttle_window=timedelta(minutes=15))
    with pytest.raises(ValueError):
        purge(owner, attempts_older_than=timedelta(0), audit_older_than=None)
    with pytest.raises(ValueError):
        purge(owner, attempts_older_than=timedelta(days=1), audit_older_than=timedelta(0))


def test_purge_works_with_a_connection_source(auth_db, owner, alice) -> None:
    import contextlib

    @contextlib.contextmanager
    def source():
        conn = psycopg2.connect(auth_db.owner_dsn)
        try:
            yield conn
        finally:
            conn.close()

    authenticate_password(owner, alice.login, "wrong", "10.8.2.1", policy=POLICY)
    age(owner, "login_attempts", "at", "3 days")
    assert purge(source, attempts_older_than=timedelta(days=1),
                 audit_older_than=None).login_attempts == 1


@pytest.mark.parametrize(("sql", "index"), [
    ("DELETE FROM auth.login_attempts WHERE attempt_id IN (SELECT attempt_id"
     " FROM auth.login_attempts WHERE at < now() - interval '1 day' LIMIT 10)",
     "login_attempts_at_idx"),
    ("DELETE FROM auth.audit_log WHERE event_id IN (SELECT event_id"
     " FROM auth.audit_log WHERE at < now() - interval '1 day' LIMIT 10)",
     "audit_log_at_idx"),
    ("DELETE FROM auth.sessions WHERE session_id IN (SELECT session_id"
     " FROM auth.sessions WHERE expires_at <= now() LIMIT 10)", "sessions_expires_idx"),
    ("SELECT FROM auth.audit_log WHERE event = 'login_throttled'"
     " AND lower(actor_login) = lower('a@b') AND address = '10.0.0.1'"
     " AND at > clock_timestamp() - interval '15 minutes'", "audit_log_throttled_idx"),
])
def test_purges_and_the_throttled_check_have_an_index(owner, sql, index) -> None:
    with owner, owner.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("EXPLAIN " + sql)
        plan = "\n".join(r[0] for r in cur.fetchall())
    assert index in plan, plan
    assert audit.LOGIN_THROTTLED == "login_throttled", "the migration's partial index names it"

"""User sync from a synthetic scheduling database (a real PostgreSQL database)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import pytest
from passlib.hash import apr_md5_crypt

from auth import audit, users
from auth.login import authenticate_password

QUERY = ("SELECT obid, first_name, last_name, email, password_hash"
         " FROM sched_auth.observers WHERE NOT retired")


@pytest.fixture(scope="session")
def schedule_db(database):
    return database.new_database("auth_schedule")


@pytest.fixture
def schedule(schedule_db) -> Iterator[psycopg2.extensions.connection]:
    """The observers table of the scheduling system, emptied per test."""
    conn = psycopg2.connect(schedule_db.owner_dsn)
    with conn, conn.cursor() as cur:
        cur.execute(
            "CREATE SCHEMA IF NOT EXISTS sched_auth;"
            "CREATE TABLE IF NOT EXISTS sched_auth.observers ("
            " obid integer PRIMARY KEY, first_name text, last_name text, email text,"
            " password_hash text, retired boolean NOT NULL DEFAULT false);"
            "TRUNCATE sched_auth.observers"
        )
    yield conn
    conn.close()


def put(schedule, *rows: tuple[int, str, str, str | None, str | None]) -> None:
    with schedule, schedule.cursor() as cur:
        for row in rows:
            cur.execute(
                "INSERT INTO sched_auth.observers (obid, first_name, last_name, email,"
                " password_hash) VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (obid) DO UPDATE SET first_name = EXCLUDED.first_name,"
                " last_name = EXCLUDED.last_name, email = EXCLUDED.email,"
                " password_hash = EXCLUDED.password_hash, retired = false",
                row,
            )


def test_sync_adds_updates_disables_and_keeps_local_accounts(owner, schedule, schedule_db
                                                             ) -> None:
    hash_a = apr_md5_crypt.hash("alice-pw")
    hash_b = apr_md5_crypt.hash("bob-pw")
    put(schedule, (11, "Alice", "A", "alice@obs.org", hash_a),
        (12, "Bob", "B", "bob@obs.org", hash_b))
    staff = users.add_user(owner, "staff@obs.org", "staff-password", is_staff=True)
    report = users.sync_users(owner, schedule_db.owner_dsn, QUERY)
    assert sorted(report.added) == ["alice@obs.org", "bob@obs.org"]
    alice = users.get_user(owner, login="alice@obs.org")
    assert alice is not None and alice.observer_id == 11 and not alice.is_local
    with owner, owner.cursor() as cur:
        cur.execute("SELECT password_hash FROM auth.users WHERE observer_id = 11")
        assert cur.fetchone() == (hash_a,), "kept exactly as in the schedule"
    assert authenticate_password(owner, "alice@obs.org", "alice-pw", "10.1.0.1").principal

    # Second run: nothing changed.
    again = users.sync_users(owner, schedule_db.owner_dsn, QUERY)
    assert (again.added, again.updated, again.disabled, again.unchanged) == ([], [], [], 2)

    # Bob changes name and password upstream; Alice retires.
    new_hash_b = apr_md5_crypt.hash("bob-new-pw")
    put(schedule, (12, "Robert", "B", "bob@obs.org", new_hash_b))
    with schedule, schedule.cursor() as cur:
        cur.execute("UPDATE sched_auth.observers SET retired = true WHERE obid = 11")
    report = users.sync_users(owner, schedule_db.owner_dsn, QUERY)
    assert report.updated == ["bob@obs.org"]
    assert report.disabled == ["alice@obs.org"]
    bob = users.get_user(owner, login="bob@obs.org")
    assert bob is not None and bob.first_name == "Robert"
    assert authenticate_password(owner, "bob@obs.org", "bob-new-pw", "10.1.0.2").principal
    assert authenticate_password(owner, "alice@obs.org", "alice-pw", "10.1.0.3"
                                 ).principal is None
    staff_now = users.get_user(owner, login="staff@obs.org")
    assert staff_now == staff, "local accounts untouched"

    # Alice returns: re-enabled, because the sync disabled her.
    put(schedule, (11, "Alice", "A", "alice@obs.org", hash_a))
    report = users.sync_users(owner, schedule_db.owner_dsn, QUERY)
    assert report.reenabled == ["alice@obs.org"]
    # Staff disable Bob by hand: the sync must not undo it.
    users.disable_user(owner, "bob@obs.org")
    users.sync_users(owner, schedule_db.owner_dsn, QUERY)
    bob = users.get_user(owner, login="bob@obs.org")
    assert bob is not None and not bob.is_active and bob.disabled_reason == "staff"
    assert audit.USERS_SYNCED in [e.event for e in audit.list_events(owner)]


def test_conflicts_are_skipped_and_reported(owner, schedule, schedule_db) -> None:
    users.add_user(owner, "staff@obs.org", "staff-password", is_staff=True)
    with schedule, schedule.cursor() as cur:
        cur.execute(
            "INSERT INTO sched_auth.observers VALUES"
            " (21, 'Imp', 'Ostor', 'STAFF@obs.org', %s, false),"
            " (22, 'No', 'Mail', NULL, NULL, false),"
            " (23, 'Twin', 'One', 'twin@obs.org', NULL, false),"
            " (24, 'Twin', 'Two', 'Twin@obs.org', NULL, false)",
            (apr_md5_crypt.hash("takeover"),),
        )
    report = users.sync_users(owner, schedule_db.owner_dsn, QUERY)
    assert report.added == ["twin@obs.org"]
    assert len(report.conflicts) == 3
    staff = users.get_user(owner, login="staff@obs.org")
    assert staff is not None and staff.is_local and staff.observer_id is None
    assert authenticate_password(owner, "staff@obs.org", "takeover", "10.1.1.1"
                                 ).principal is None
    twin = users.get_user(owner, login="twin@obs.org")
    assert twin is not None and twin.observer_id == 23


def test_empty_or_broken_schedule_changes_nothing(owner, schedule, schedule_db) -> None:
    put(schedule, (31, "Carl", "C", "carl@obs.org", None))
    users.sync_users(owner, schedule_db.owner_dsn, QUERY)
    with schedule, schedule.cursor() as cur:
        cur.execute("TRUNCATE sched_auth.observers")
    with pytest.raises(users.SyncError):
        users.sync_users(owner, schedule_db.owner_dsn, QUERY)
    with pytest.raises(users.SyncError):
        users.sync_users(owner, schedule_db.owner_dsn, "SELECT nonsense FROM nowhere")
    with pytest.raises(users.SyncError):
        users.sync_users(owner, "host=/nonexistent dbname=x", QUERY)
    carl = users.get_user(owner, login="carl@obs.org")
    assert carl is not None and carl.is_active
    report = users.sync_users(owner, schedule_db.owner_dsn, QUERY, allow_empty=True)
    assert report.disabled == ["carl@obs.org"]


def test_sync_query_runs_read_only(owner, schedule, schedule_db) -> None:
    with pytest.raises(users.SyncError, match="read-only"):
        users.sync_users(owner, schedule_db.owner_dsn,
                         "INSERT INTO sched_auth.observers (obid) VALUES (99)"
                         " RETURNING obid, first_name, last_name, email, password_hash")

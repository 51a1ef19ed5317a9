"""Fixtures of the auth tests: a database of their own, emptied per test."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import psycopg2.extensions
import pytest


@pytest.fixture(scope="session")
def auth_db(database):
    """A migrated database of its own: these tests empty the data and auth tables."""
    return database.new_database("auth")


def empty_tables(owner_dsn: str) -> None:
    conn = psycopg2.connect(owner_dsn)
    with conn, conn.cursor() as cur:
        cur.execute(
            "TRUNCATE auth.users, auth.groups, auth.group_members, auth.tokens, auth.grants,"
            " auth.login_attempts, auth.audit_log, lick.files, ivoa.obscore CASCADE"
        )
    conn.close()


@pytest.fixture
def owner(auth_db) -> Iterator[psycopg2.extensions.connection]:
    """An owner-role connection on emptied tables."""
    empty_tables(auth_db.owner_dsn)
    conn = psycopg2.connect(auth_db.owner_dsn)
    yield conn
    conn.close()

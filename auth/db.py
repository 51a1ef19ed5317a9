"""How ``auth`` talks to PostgreSQL: connections lent by the caller, one round trip a step.

Authentication runs on every request, so its cost is counted in round trips.  With
autocommit off, psycopg2 wraps a statement in ``BEGIN`` and ``COMMIT``, each a round
trip of its own; here a step runs in autocommit mode instead, where one string of
statements is one round trip and PostgreSQL runs it as one implicit transaction (all
of it is committed, or none of it).

The caller lends connections either as a connection, or as a *source*: a callable
returning a context manager that yields an owner-role connection (a pool's
``owner()``).  With a source, ``auth`` borrows a connection only for the moments it
talks to the database, never while it hashes a password, so a slow argon2 check does
not keep a pooled connection from other requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg2.extensions

Connection = psycopg2.extensions.connection
ConnectionSource = Connection | Callable[[], AbstractContextManager[Connection]]
Statement = tuple[str, Sequence[Any] | dict[str, Any] | None]


@contextmanager
def borrow(source: ConnectionSource) -> Iterator[Connection]:
    """A connection from ``source``: the connection itself, or one lent by the callable."""
    if isinstance(source, psycopg2.extensions.connection):
        yield source
        return
    with source() as conn:
        yield conn


def run(conn: Connection, statements: Sequence[Statement]) -> list[tuple[Any, ...]]:
    """Run ``statements`` as one transaction, committed; the last one's rows.

    One round trip when the connection is idle (the statements are bound on the client
    and sent as one string in autocommit mode).  A connection in the middle of a
    transaction keeps the old way: the statements join that transaction, which is then
    committed, as ``with conn:`` would.
    """
    if conn.autocommit or (conn.info.transaction_status
                           == psycopg2.extensions.TRANSACTION_STATUS_IDLE):
        with _autocommit(conn), conn.cursor() as cur:
            cur.execute(b"; ".join(cur.mogrify(sql, params) for sql, params in statements))
            return list(cur.fetchall()) if cur.description is not None else []
    with conn, conn.cursor() as cur:
        for sql, params in statements:
            cur.execute(sql, params)
        return list(cur.fetchall()) if cur.description is not None else []


def run_one(conn: Connection, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
            ) -> tuple[Any, ...] | None:
    """:func:`run` for one statement: its first row, or None."""
    rows = run(conn, [(sql, params)])
    return rows[0] if rows else None


@contextmanager
def _autocommit(conn: Connection) -> Iterator[None]:
    """Autocommit for the duration (psycopg2 sets it on the client: no round trip)."""
    previous = conn.autocommit
    if not previous:
        conn.autocommit = True
    try:
        yield
    finally:
        if not previous and not conn.closed:
            conn.autocommit = False

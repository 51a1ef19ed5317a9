"""Binding a query transaction to its requester, so PostgreSQL can enforce visibility.

Row-level security on ``ivoa.obscore`` and ``lick.files`` (migration ``0003_auth``)
shows a row to the query role only if it is public, or the transaction's verified
requester is staff, an owner, or holds a live override grant.  The requester is
asserted with ``auth.assume(user_id, mac)``, where ``mac`` is an HMAC-SHA256 keyed
by a secret that only the owner role can read, over
``"<user_id or 'anonymous'>:<backend pid>:<transaction start in µs>"``.  The policy
functions re-verify the MAC on every query, so SQL run as the query role can neither
set another identity (``set_config`` alone fails verification), forge one (no key)
nor replay one seen elsewhere (bound to this backend and this transaction).

The service reads the secret once with the owner connection (:func:`load_secret`)
and calls :func:`begin_query_transaction` first in every query transaction, or
:func:`prepare_query_transaction` and sends the returned assertion together with its
own first statements (one round trip less; same checks, as the MAC still covers the
pid and stamp the server reported for this transaction).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from auth.principals import Principal

# The observing night starts at local noon, Pacific Standard Time (UTC-8, all year):
# 20:00 UTC.  Same rule as auth.current_night() in the database.
NIGHT_START_OFFSET = timedelta(hours=20)


class Cursor(Protocol):
    """The part of a DB-API cursor (psycopg2) this module uses."""

    @property
    def connection(self) -> Any: ...

    def execute(self, query: str, vars: Any = ...) -> Any: ...

    def fetchone(self) -> Any: ...


class IdentityError(RuntimeError):
    """The database refused the identity assertion (wrong secret or misuse)."""


def observing_night(moment: datetime) -> date:
    """The observing night containing ``moment``: noon to noon, Pacific Standard Time.

    The observatory files data by the date on which the night began, in PST all year
    round (no daylight saving).  The one rule for the service (what is public now) and
    for ingest (which nights the watcher treats as active).  A naive datetime is
    refused: a local time taken for UTC would shift the night by hours.
    """
    if moment.tzinfo is None:
        raise ValueError("observing_night needs an aware datetime")
    return (moment.astimezone(UTC).replace(tzinfo=None) - NIGHT_START_OFFSET).date()


def is_public(release_date: date | datetime | None, now: datetime | None = None) -> bool:
    """The database's rule in Python: released on or before the current night.

    ``release_date`` is a date, or a naive UTC datetime as stored; None (undetermined)
    is never public.  For decisions that need no query, such as whether a download must
    be audited, or the ``data_rights`` ingest writes.
    """
    if release_date is None:
        return False
    night = observing_night(now or datetime.now(UTC))
    if not isinstance(release_date, datetime):
        return release_date <= night
    return release_date < datetime(night.year, night.month, night.day) + timedelta(days=1)


def assertion_mac(secret: bytes, user_id: int | None, backend_pid: int, stamp: str) -> str:
    """The MAC ``auth.assume`` expects for this requester, backend and transaction."""
    claim = "anonymous" if user_id is None else str(int(user_id))
    message = f"{claim}:{int(backend_pid)}:{stamp}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def load_secret(owner_cursor: Cursor) -> bytes:
    """The identity secret, read with an owner-role cursor (the query role cannot)."""
    owner_cursor.execute("SELECT secret FROM auth.identity_secret")
    row = owner_cursor.fetchone()
    if row is None:
        raise IdentityError("auth.identity_secret is empty: run the database migrations")
    return bytes(row[0])


def rotate_secret(owner_cursor: Cursor) -> bytes:
    """Replace the secret (commit afterwards); running services must reload it."""
    owner_cursor.execute(
        "UPDATE auth.identity_secret SET secret = public.gen_random_bytes(32), "
        "created_at = now() RETURNING secret"
    )
    row = owner_cursor.fetchone()
    if row is None:
        raise IdentityError("auth.identity_secret is empty: run the database migrations")
    return bytes(row[0])


ASSUME_SQL = "SELECT auth.assume(%s, %s)"
# SQLSTATE auth.assume raises when the MAC does not verify (invalid_authorization_specification).
ASSERTION_REJECTED = "28000"


@dataclass(frozen=True)
class IdentityAssertion:
    """The statement binding the open transaction to a requester, not yet sent.

    ``sql`` with ``params`` (``cursor.execute(a.sql, a.params)``), or ``expression``
    with the same ``params`` inside the caller's own select list (``SELECT
    auth.assume(%s, %s), set_config(...)``), so that it costs no round trip of its own.
    It is valid in this transaction on this connection only (the MAC covers the backend
    and the transaction's start).  Until it has run, the transaction is anonymous.
    """

    params: tuple[int | None, str]
    sql: str = ASSUME_SQL
    expression: str = "auth.assume(%s, %s)"


def prepare_query_transaction(
    cursor: Cursor,
    principal: Principal,
    secret: bytes,
    *,
    temp_tables: Sequence[str] = (),
) -> IdentityAssertion:
    """Make the open transaction read-only and return the assertion binding it to
    ``principal``, for the caller to send together with its own statements.

    Costs one round trip (plus psycopg2's ``BEGIN``), uploads included: the temporary
    tables, the switch to read-only and the reading of the backend pid and transaction
    stamp go in one string.  The anti-replay design is unchanged: the MAC is computed
    here from what the server reported for *this* transaction, and ``auth.assume``
    re-verifies it.  Send the assertion before any statement that reads a protected
    table, in a statement of its own or a select list without such a table: PostgreSQL
    may evaluate the policies' InitPlans of a statement before its select list.
    A rejected assertion raises SQLSTATE :data:`ASSERTION_REJECTED` (28000): see
    :func:`rejection_error`.
    """
    if getattr(cursor.connection, "autocommit", False):
        raise IdentityError("begin_query_transaction needs a connection with autocommit off")
    statements = []
    if temp_tables:
        statements.append("SET TRANSACTION READ WRITE")
        for statement in temp_tables:
            if not statement.lstrip().upper().startswith("CREATE TEMP"):
                raise IdentityError("temp_tables takes CREATE TEMP TABLE statements only")
            statements.append(statement.strip().rstrip(";"))
    statements.append("SET TRANSACTION READ ONLY")
    statements.append("SELECT pg_backend_pid(), auth.transaction_stamp()")
    cursor.execute("; ".join(statements))
    row = cursor.fetchone()
    if row is None:
        raise IdentityError("could not read the backend pid and transaction stamp")
    pid, stamp = int(row[0]), str(row[1])
    return IdentityAssertion((principal.user_id,
                              assertion_mac(secret, principal.user_id, pid, stamp)))


def rejection_error(exc: BaseException) -> IdentityError | None:
    """The :class:`IdentityError` for a database error that rejected an assertion
    (SQLSTATE 28000), or None for any other error."""
    if getattr(exc, "pgcode", None) != ASSERTION_REJECTED:
        return None
    return IdentityError(
        "the database rejected the identity assertion: the service's secret does "
        "not match auth.identity_secret (reload it after a rotation)"
    )


def begin_query_transaction(
    cursor: Cursor,
    principal: Principal,
    secret: bytes,
    *,
    temp_tables: Sequence[str] = (),
) -> None:
    """Make the open transaction read-only and bind it to ``principal``.

    Call it first in a fresh transaction on a query-role connection (autocommit
    off), before any user query; the binding ends with the transaction (COMMIT or
    ROLLBACK), and the next transaction on the connection needs its own call.

    ``temp_tables`` are ``CREATE TEMP TABLE ... ON COMMIT DROP`` statements for TAP
    uploads: PostgreSQL refuses CREATE in a read-only transaction (the query role's
    default), so they run first in read-write mode; rows may still be inserted into
    temporary tables after the switch to read-only.  Once a query has run, the
    transaction cannot be switched back to read-write.

    Two round trips after ``BEGIN``; :func:`prepare_query_transaction` saves the
    second by letting the caller send the assertion with its own statements.
    """
    assertion = prepare_query_transaction(cursor, principal, secret, temp_tables=temp_tables)
    try:
        cursor.execute(assertion.sql, assertion.params)
    except Exception as exc:  # psycopg2.Error, but auth stays free of a driver import
        raise (rejection_error(exc) or IdentityError(
            f"the identity assertion failed: {exc}")) from exc
    cursor.fetchone()


def reset_connection(connection: Any) -> None:
    """Clear session state before a pooled query connection serves another requester.

    Identity is transaction-local and needs no reset, but a session keeps temporary
    tables (``ON COMMIT PRESERVE ROWS``), ``WITH HOLD`` cursors and prepared
    statements filled under the previous requester's rights; ``DISCARD ALL`` drops
    them.  Call it whenever a connection goes back to the pool.
    """
    connection.rollback()
    previous = connection.autocommit
    connection.autocommit = True
    try:
        with connection.cursor() as cur:
            cur.execute("DISCARD ALL")
    finally:
        connection.autocommit = previous

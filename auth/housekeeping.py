"""Bounded growth: the one periodic clean-up of the ``auth`` tables.

Sessions, login attempts and audit events are written by every login, and nothing else
deletes them.  The service's housekeeping thread calls :func:`purge` now and then (any
period; each call does what is due).  Deletes run in batches, each its own short
transaction, so a large backlog (after an attack, or the first run on an old database)
never holds locks for long; indexes on the age columns (migrations ``0003_auth``,
``0008_auth_housekeeping``) keep each batch cheap.

What is kept, and why:

- override grants and tokens, even expired or revoked: staff list them afterwards
  (``/admin?grants=all``, ``list_tokens(include_revoked=True)``) and there are few;
- login attempts younger than the throttle window: throttling decisions read nothing
  older, so deleting older attempts never unlocks an account early;
- audit events, every kind alike, for the retention the operator chooses (None: for
  ever).  They are the lasting record of logins, failures, account, token and grant
  changes and proprietary downloads; growth from throttled clients is bounded at the
  source (one ``login_throttled`` event per login and address per throttle window).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from auth import db

# One batch: big enough that a backlog of a million rows takes a few hundred round
# trips, small enough that each transaction is over in milliseconds.
BATCH_ROWS = 5000

# Each table's delete, by primary key through the age index; the constants are ours.
# now() (stable: each batch is its own transaction), not clock_timestamp(): a volatile
# bound cannot be an index condition.
_SESSIONS = ("DELETE FROM auth.sessions WHERE session_id IN (SELECT session_id"
             " FROM auth.sessions WHERE expires_at <= now() LIMIT %(batch)s)")
_ATTEMPTS = ("DELETE FROM auth.login_attempts WHERE attempt_id IN (SELECT attempt_id"
             " FROM auth.login_attempts WHERE at < now() - %(age)s"
             " LIMIT %(batch)s)")
_AUDIT = ("DELETE FROM auth.audit_log WHERE event_id IN (SELECT event_id"
          " FROM auth.audit_log WHERE at < now() - %(age)s LIMIT %(batch)s)")


@dataclass(frozen=True)
class PurgeCounts:
    """How many rows one :func:`purge` deleted, per table."""

    sessions: int = 0
    login_attempts: int = 0
    audit_events: int = 0


def purge(
    connect: db.ConnectionSource,
    *,
    attempts_older_than: timedelta,
    audit_older_than: timedelta | None,
    throttle_window: timedelta | None = None,
    batch_rows: int = BATCH_ROWS,
) -> PurgeCounts:
    """Delete expired sessions, login attempts older than ``attempts_older_than`` and
    audit events older than ``audit_older_than`` (None keeps them all).

    ``throttle_window`` (the policy's window) guards against a setting that would
    delete attempts throttling still counts: ``attempts_older_than`` shorter than it
    is refused with ValueError.  ``connect`` is an owner connection or a source of them
    (:mod:`auth.db`); a borrowed connection is held for one table at a time.
    """
    if attempts_older_than <= timedelta(0):
        raise ValueError("attempts_older_than must be positive")
    if throttle_window is not None and attempts_older_than < throttle_window:
        raise ValueError(f"attempts_older_than ({attempts_older_than}) is shorter than the "
                         f"throttle window ({throttle_window}): throttling counts those")
    if audit_older_than is not None and audit_older_than <= timedelta(0):
        raise ValueError("audit_older_than must be positive, or None to keep every event")
    if batch_rows < 1:
        raise ValueError("batch_rows must be positive")
    return PurgeCounts(
        sessions=purge_sessions(connect, batch_rows=batch_rows),
        login_attempts=purge_attempts(connect, attempts_older_than, batch_rows=batch_rows),
        audit_events=(0 if audit_older_than is None
                      else purge_audit(connect, audit_older_than, batch_rows=batch_rows)),
    )


def purge_sessions(connect: db.ConnectionSource, *, batch_rows: int = BATCH_ROWS) -> int:
    """Delete expired web sessions; how many."""
    return _delete_in_batches(connect, _SESSIONS, None, batch_rows)


def purge_attempts(connect: db.ConnectionSource, older_than: timedelta, *,
                   batch_rows: int = BATCH_ROWS) -> int:
    """Delete login attempts older than ``older_than``; how many."""
    return _delete_in_batches(connect, _ATTEMPTS, older_than, batch_rows)


def purge_audit(connect: db.ConnectionSource, older_than: timedelta, *,
                batch_rows: int = BATCH_ROWS) -> int:
    """Delete audit events older than ``older_than``; how many."""
    return _delete_in_batches(connect, _AUDIT, older_than, batch_rows)


def _delete_in_batches(connect: db.ConnectionSource, sql: str, age: timedelta | None,
                       batch_rows: int) -> int:
    total = 0
    with db.borrow(connect) as conn:
        while True:
            rows = db.run(conn, [(sql + " RETURNING 1", {"age": age, "batch": batch_rows})])
            total += len(rows)
            if len(rows) < batch_rows:
                return total

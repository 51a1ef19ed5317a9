"""The audit log: logins, account, token and grant changes, proprietary downloads.

Events are written with the caller's cursor, inside the transaction that makes the
change they describe, so a change is never committed without its record (nor a record
without its change).  Rows name accounts by id and login but carry no foreign keys:
the log outlives the accounts.  :func:`auth.housekeeping.purge` deletes events older
than the configured retention.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg2.extensions

# Event names, one place: the admin page filters on them.
LOGIN = "login"
LOGIN_FAILED = "login_failed"
LOGIN_THROTTLED = "login_throttled"
LOGOUT = "logout"
TOKEN_CREATED = "token_created"
TOKEN_REVOKED = "token_revoked"
USER_ADDED = "user_added"
USER_DISABLED = "user_disabled"
USER_ENABLED = "user_enabled"
PASSWORD_CHANGED = "password_changed"
USERS_SYNCED = "users_synced"
GROUP_CHANGED = "group_changed"
GRANT_CREATED = "grant_created"
GRANT_REVOKED = "grant_revoked"
DOWNLOAD = "download"


@dataclass(frozen=True)
class AuditEvent:
    event_id: int
    at: datetime
    event: str
    actor_user_id: int | None
    actor_login: str
    address: str
    target: str
    details: dict[str, Any]


def statement(
    event: str,
    *,
    actor_user_id: int | None = None,
    actor_login: str = "",
    address: str = "",
    target: str = "",
    details: dict[str, Any] | None = None,
) -> tuple[str, tuple[Any, ...]]:
    """The statement appending one event, to run with the change it records."""
    return (
        "INSERT INTO auth.audit_log (event, actor_user_id, actor_login, address, target, details)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (event, actor_user_id, actor_login, address, target, encode_details(details)),
    )


def encode_details(details: dict[str, Any] | None) -> str:
    """The ``details`` column's value: JSON, keys sorted, anything else as text."""
    return json.dumps(details or {}, default=str, sort_keys=True)


def record(
    cur: psycopg2.extensions.cursor,
    event: str,
    *,
    actor_user_id: int | None = None,
    actor_login: str = "",
    address: str = "",
    target: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    """Append one event in the caller's transaction."""
    cur.execute(*statement(event, actor_user_id=actor_user_id, actor_login=actor_login,
                           address=address, target=target, details=details))


def record_download(
    conn: psycopg2.extensions.connection,
    *,
    user_id: int | None,
    login: str,
    did: str,
    address: str = "",
    kind: str = "file",
) -> None:
    """Log that a proprietary dataset was served (call only for non-public ones)."""
    with conn, conn.cursor() as cur:
        record(cur, DOWNLOAD, actor_user_id=user_id, actor_login=login, address=address,
               target=did, details={"kind": kind})


def list_events(
    conn: psycopg2.extensions.connection,
    *,
    event: str | None = None,
    actor_user_id: int | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """Newest first."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT event_id, at, event, actor_user_id, actor_login, address, target, details"
            " FROM auth.audit_log"
            " WHERE (%(event)s::text IS NULL OR event = %(event)s)"
            "   AND (%(actor)s::integer IS NULL OR actor_user_id = %(actor)s)"
            "   AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)"
            " ORDER BY at DESC, event_id DESC LIMIT %(limit)s",
            {"event": event, "actor": actor_user_id, "since": since, "limit": limit},
        )
        return [AuditEvent(*row) for row in cur.fetchall()]

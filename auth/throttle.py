"""Login throttling, per account and per client address.

Failed password checks are recorded in ``auth.login_attempts``.  An account is
locked after ``max_failures_per_login`` failures within the window since its last
success (guessing one password from many addresses), an address after
``max_failures_per_address`` failures within the window whatever the login (one
client trying many accounts).  A lock lifts by itself when the window has passed the
failures; the reply says how long that takes (``Retry-After``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import psycopg2.extensions


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures_per_login: int = 5
    max_failures_per_address: int = 20
    window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class ThrottleDecision:
    allowed: bool
    retry_after_seconds: int = 0
    reason: str = ""


def check(conn: psycopg2.extensions.connection, login: str, address: str,
          policy: ThrottlePolicy | None = None) -> ThrottleDecision:
    """Whether a password check may be attempted now for this login from this address."""
    policy = policy or ThrottlePolicy()
    with conn, conn.cursor() as cur:
        cur.execute(
            """
            WITH last_success AS (
                SELECT max(at) AS at FROM auth.login_attempts
                 WHERE login = %(login)s AND succeeded
            ), login_failures AS (
                SELECT count(*) AS n, min(at) AS first FROM (
                    SELECT at FROM auth.login_attempts
                     WHERE login = %(login)s AND NOT succeeded
                       AND at > clock_timestamp() - %(window)s
                       AND at > coalesce((SELECT at FROM last_success), '-infinity')
                     ORDER BY at DESC LIMIT %(max_login)s) AS recent
            ), address_failures AS (
                SELECT count(*) AS n, min(at) AS first FROM (
                    SELECT at FROM auth.login_attempts
                     WHERE address = %(address)s AND NOT succeeded
                       AND at > clock_timestamp() - %(window)s
                     ORDER BY at DESC LIMIT %(max_address)s) AS recent
            )
            SELECT l.n, extract(epoch FROM l.first + %(window)s - clock_timestamp()),
                   a.n, extract(epoch FROM a.first + %(window)s - clock_timestamp())
              FROM login_failures AS l, address_failures AS a
            """,
            {"login": login.lower(), "address": address, "window": policy.window,
             "max_login": policy.max_failures_per_login,
             "max_address": policy.max_failures_per_address},
        )
        row = cur.fetchone()
    assert row is not None
    login_n, login_wait, address_n, address_wait = row
    if address_n >= policy.max_failures_per_address:
        return ThrottleDecision(False, max(1, math.ceil(address_wait)),
                                "too many failed logins from this address")
    if login_n >= policy.max_failures_per_login:
        return ThrottleDecision(False, max(1, math.ceil(login_wait)),
                                "too many failed logins for this account")
    return ThrottleDecision(True)


def record_attempt(conn: psycopg2.extensions.connection, login: str, address: str,
                   succeeded: bool) -> None:
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO auth.login_attempts (login, address, succeeded) VALUES (%s, %s, %s)",
            (login.lower(), address, succeeded),
        )


def purge(conn: psycopg2.extensions.connection, older_than: timedelta = timedelta(days=30)
          ) -> int:
    """Delete old attempts (the audit log keeps the lasting record); returns how many."""
    with conn, conn.cursor() as cur:
        cur.execute("DELETE FROM auth.login_attempts WHERE at < clock_timestamp() - %s",
                    (older_than,))
        return int(cur.rowcount)

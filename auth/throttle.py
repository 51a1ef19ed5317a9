"""Login throttling, per account and per client address.

Failed password checks are recorded in ``auth.login_attempts``.  An account is
locked after ``max_failures_per_login`` failures within the window since its last
success (guessing one password from many addresses), an address after
``max_failures_per_address`` failures within the window whatever the login (one
client trying many accounts).  A lock lifts by itself when the window has passed the
failures; the reply says how long that takes (``Retry-After``).  Old attempts are
deleted by :func:`auth.housekeeping.purge`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import psycopg2.extensions

from auth import db


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures_per_login: int = 5
    max_failures_per_address: int = 20
    window: timedelta = timedelta(minutes=15)

    @classmethod
    def for_limit(cls, max_failed_logins: int, window_seconds: float) -> ThrottlePolicy:
        """The service's policy from its two settings (``auth.max_failed_logins``,
        ``auth.throttle_window_s``): an address may fail four times as often as one
        account, so that a few users behind one NAT do not lock each other out."""
        return cls(max_failures_per_login=max_failed_logins,
                   max_failures_per_address=4 * max_failed_logins,
                   window=timedelta(seconds=window_seconds))


@dataclass(frozen=True)
class ThrottleDecision:
    allowed: bool
    retry_after_seconds: int = 0
    reason: str = ""


# The recent failures of one key (login or address): how many (up to the limit, which
# is all a decision needs) and the seconds until the oldest of them leaves the window.
_RECENT_FAILURES = """
        SELECT count(*) AS n,
               extract(epoch FROM min(at) + %(throttle_window)s - clock_timestamp())::float8
                   AS wait
          FROM (SELECT at FROM auth.login_attempts
                 WHERE {key} = %(throttle_{key})s AND NOT succeeded
                   AND at > clock_timestamp() - %(throttle_window)s{since}
                 ORDER BY at DESC LIMIT %(throttle_max_{key})s) AS recent"""

FAILURES_SQL = f"""
    last_success AS (
        SELECT max(at) AS at FROM auth.login_attempts
         WHERE login = %(throttle_login)s AND succeeded
    ), login_failures AS ({_RECENT_FAILURES.format(key="login", since=(
        " AND at > coalesce((SELECT at FROM last_success), '-infinity')"))}
    ), address_failures AS ({_RECENT_FAILURES.format(key="address", since="")}
    )
"""
"""Common table expressions counting the recent failures of a login and of an address:
``login_failures`` and ``address_failures``, one row each (``n``, ``wait`` in seconds
until the oldest counted failure leaves the window).  Bind :func:`failures_params`.
Shared by :func:`check` and the login, which asks for the account in the same
statement."""


def failures_params(login: str, address: str, policy: ThrottlePolicy) -> dict[str, object]:
    return {"throttle_login": login_key(login), "throttle_address": address,
            "throttle_window": policy.window,
            "throttle_max_login": policy.max_failures_per_login,
            "throttle_max_address": policy.max_failures_per_address}


def login_key(login: str) -> str:
    """How attempts name a login: case-insensitive, as logins are."""
    return login.lower()


def decide(policy: ThrottlePolicy, login_n: int, login_wait: float | None, address_n: int,
           address_wait: float | None) -> ThrottleDecision:
    """The decision from the counts :data:`FAILURES_SQL` selects."""
    if address_n >= policy.max_failures_per_address:
        return ThrottleDecision(False, max(1, math.ceil(address_wait or 0)),
                                "too many failed logins from this address")
    if login_n >= policy.max_failures_per_login:
        return ThrottleDecision(False, max(1, math.ceil(login_wait or 0)),
                                "too many failed logins for this account")
    return ThrottleDecision(True)


def check(conn: psycopg2.extensions.connection, login: str, address: str,
          policy: ThrottlePolicy | None = None) -> ThrottleDecision:
    """Whether a password check may be attempted now for this login from this address."""
    policy = policy or ThrottlePolicy()
    row = db.run_one(conn, f"WITH {FAILURES_SQL} SELECT l.n, l.wait, a.n, a.wait"
                           " FROM login_failures AS l, address_failures AS a",
                     failures_params(login, address, policy))
    assert row is not None
    return decide(policy, *row)


def attempt_statement(login: str, address: str, succeeded: bool) -> db.Statement:
    """The statement recording one password check, for :func:`auth.db.run`."""
    return ("INSERT INTO auth.login_attempts (login, address, succeeded) VALUES (%s, %s, %s)",
            (login_key(login), address, succeeded))


def record_attempt(conn: psycopg2.extensions.connection, login: str, address: str,
                   succeeded: bool) -> None:
    db.run(conn, [attempt_statement(login, address, succeeded)])

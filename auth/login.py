"""Password authentication: throttle, verify, record, audit — one call for every path.

HTTP Basic (VO clients) and the login form both end here, so throttling and the
audit trail cannot differ between them.  Every refusal looks the same to the client,
and takes the same time and the same database work whatever the account:

1. credentials that no account can have (empty, overlong, control characters) are
   refused before any query;
2. one statement counts the recent failures (throttling) and reads the active
   account, its hash and its groups;
3. no connection held, the password is checked with :func:`verify_password`, whose
   cost does not depend on the hash (an unknown login, a disabled account, an
   ``$apr1$`` or an argon2 hash: one argon2 run each), or recalled from the
   :class:`VerifiedCredentialCache` (a correct pair verified in the last minutes);
4. one statement records the outcome: the attempt and its audit event.

A failure always costs steps 2 to 4.  Only a correct password can be recalled from the
cache (its key covers the password), so a fast answer tells a client nothing it did
not know.
"""

from __future__ import annotations

from dataclasses import dataclass

from auth import audit, db, throttle
from auth.passwords import VerifiedCredentialCache, hash_password, needs_rehash, verify_password
from auth.principals import Principal
from auth.users import (
    PRINCIPAL_WIDTH,
    login_problem,
    password_problem,
    principal_columns,
    principal_from_row,
    unstorable,
    user_from_row,
)

# An IPv6 address with a zone is under 64 characters; anything longer is not one.
_MAX_ADDRESS_CHARS = 100


@dataclass(frozen=True)
class LoginResult:
    """``principal`` on success; otherwise ``throttled`` tells whether to send 429."""

    principal: Principal | None
    throttled: bool = False
    retry_after_seconds: int = 0


_LOOKUP_SQL = (
    f"WITH {throttle.FAILURES_SQL}, account AS ("
    f" SELECT {principal_columns('u')}, u.password_hash FROM auth.users AS u"
    "  WHERE lower(u.login) = lower(%(login)s) AND u.is_active)"
    " SELECT l.n, l.wait, a.n, a.wait, account.*"
    "   FROM login_failures AS l CROSS JOIN address_failures AS a"
    "   LEFT JOIN account ON true"
)

# A throttled client may keep trying; the log needs one line per login and address per
# throttle window, not one per try.  The advisory lock (released at commit) makes the
# "no row yet" test and the insert one step for concurrent tries.
_THROTTLED_ONCE_SQL = (
    "SELECT pg_advisory_xact_lock(hashtextextended('lick_auth.throttled ' || lower(%(login)s)"
    " || ' ' || %(address)s, 0));"
    " INSERT INTO auth.audit_log (event, actor_login, address, details)"
    " SELECT %(event)s, %(login)s, %(address)s, %(details)s"
    "  WHERE NOT EXISTS (SELECT FROM auth.audit_log"
    "   WHERE event = %(event)s AND lower(actor_login) = lower(%(login)s)"
    "     AND address = %(address)s AND at > clock_timestamp() - %(window)s)"
)


def authenticate_password(
    connect: db.ConnectionSource,
    login: str,
    password: str,
    address: str,
    *,
    policy: throttle.ThrottlePolicy | None = None,
    cache: VerifiedCredentialCache | None = None,
    auth_method: str = "password",
    audit_success: bool = True,
) -> LoginResult:
    """Check a login and password from ``address`` (the client IP).

    ``connect`` is an owner connection or a source of them (:mod:`auth.db`); with a
    source no connection is held while the password is hashed.  With ``cache`` a
    recently verified pair is accepted without re-hashing (HTTP Basic sends it on every
    request).  Successes that ran a real check are always recorded and audited;
    ``audit_success=False`` keeps the repeats served by the cache out of the log.
    Failures are always recorded.
    """
    policy = policy or throttle.ThrottlePolicy()
    address = _storable_address(address)
    login = login.strip()
    if login_problem(login) or password_problem(password):
        return LoginResult(None)
    with db.borrow(connect) as conn:
        row = db.run_one(conn, _LOOKUP_SQL,
                         {"login": login, **throttle.failures_params(login, address, policy)})
        assert row is not None
        decision = throttle.decide(policy, *row[:4])
        if not decision.allowed:
            _record_throttled(conn, login, address, policy, decision.reason, auth_method)
            return LoginResult(None, throttled=True,
                               retry_after_seconds=decision.retry_after_seconds)
    account = row[4:]
    found = account[0] is not None
    stored: str | None = account[PRINCIPAL_WIDTH] if found else None
    recalled = cache is not None and cache.recall(login, password, stored)
    ok = recalled or verify_password(password, stored)
    if not ok or not found:
        with db.borrow(connect) as conn:
            db.run(conn, [
                throttle.attempt_statement(login, address, False),
                audit.statement(audit.LOGIN_FAILED, actor_login=login, address=address,
                                details={"method": auth_method}),
            ])
        return LoginResult(None)
    assert stored is not None
    principal = principal_from_row(account, auth_method)
    statements: list[db.Statement] = []
    if not recalled:
        if cache is not None:
            cache.remember(login, password, stored)
        if user_from_row(account).is_local and needs_rehash(stored):
            statements.append(("UPDATE auth.users SET password_hash = %s"
                               " WHERE user_id = %s AND password_hash = %s",
                               (hash_password(password), principal.user_id, stored)))
    if audit_success or not recalled:
        statements += [
            throttle.attempt_statement(login, address, True),
            audit.statement(audit.LOGIN, actor_user_id=principal.user_id,
                            actor_login=principal.login, address=address,
                            details={"method": auth_method}),
        ]
    if statements:
        with db.borrow(connect) as conn:
            db.run(conn, statements)
    return LoginResult(principal)


def _storable_address(address: str) -> str:
    """The client address as attempts and the audit log store it: what the HTTP server
    reported, bounded, with control characters (NUL cannot be stored) replaced."""
    address = address[:_MAX_ADDRESS_CHARS]
    return "".join("?" if unstorable(c) else c for c in address) if unstorable(address) \
        else address


def _record_throttled(conn: db.Connection, login: str, address: str,
                      policy: throttle.ThrottlePolicy, reason: str, auth_method: str) -> None:
    db.run(conn, [(_THROTTLED_ONCE_SQL, {
        "event": audit.LOGIN_THROTTLED, "login": login, "address": address,
        "window": policy.window,
        "details": audit.encode_details({"reason": reason, "method": auth_method}),
    })])

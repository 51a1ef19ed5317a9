"""Password authentication: throttle, verify, record, audit — one call for every path.

HTTP Basic (VO clients) and the login form both end here, so throttling and the
audit trail cannot differ between them.  Unknown logins cost the same time as wrong
passwords, and every refusal looks the same to the caller's client.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg2.extensions

from auth import audit, throttle
from auth.passwords import VerifiedCredentialCache, hash_password, needs_rehash, verify_password
from auth.principals import Principal
from auth.users import password_hash_for, principal_for


@dataclass(frozen=True)
class LoginResult:
    """``principal`` on success; otherwise ``throttled`` tells whether to send 429."""

    principal: Principal | None
    throttled: bool = False
    retry_after_seconds: int = 0


def authenticate_password(
    conn: psycopg2.extensions.connection,
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

    With ``cache`` a recently verified pair is accepted without re-hashing (HTTP Basic
    sends it on every request); ``audit_success=False`` keeps such repeats out of the
    audit log while failures are always recorded.
    """
    login = login.strip()
    decision = throttle.check(conn, login, address, policy or throttle.ThrottlePolicy())
    if not decision.allowed:
        with conn, conn.cursor() as cur:
            audit.record(cur, audit.LOGIN_THROTTLED, actor_login=login, address=address,
                         details={"reason": decision.reason, "method": auth_method})
        return LoginResult(None, throttled=True,
                           retry_after_seconds=decision.retry_after_seconds)
    found = password_hash_for(conn, login)
    stored = None if found is None else found[1]
    if cache is not None:
        ok = cache.verify(login, password, stored)
    else:
        ok = verify_password(password, stored)
    if not ok or found is None:
        throttle.record_attempt(conn, login, address, False)
        with conn, conn.cursor() as cur:
            audit.record(cur, audit.LOGIN_FAILED, actor_login=login, address=address,
                         details={"method": auth_method})
        return LoginResult(None)
    user, _ = found
    if user.is_local and stored is not None and needs_rehash(stored):
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE auth.users SET password_hash = %s WHERE user_id = %s",
                        (hash_password(password), user.user_id))
    principal = principal_for(conn, user.user_id, auth_method=auth_method)
    if principal is None:  # disabled between the two reads
        return LoginResult(None)
    if audit_success:
        throttle.record_attempt(conn, login, address, True)
        with conn, conn.cursor() as cur:
            audit.record(cur, audit.LOGIN, actor_user_id=user.user_id, actor_login=user.login,
                         address=address, details={"method": auth_method})
    return LoginResult(principal)

"""Web sessions (cookie) with a per-session CSRF token; no web framework involved.

The cookie carries 256 random bits; the database keeps only their SHA-256, so a
database copy cannot be replayed as a cookie.  Each session has its own CSRF token,
which forms echo back; :func:`csrf_matches` compares in constant time.  Sessions end
at a fixed lifetime, at logout, or when the account is disabled.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg2.extensions

from auth import audit
from auth.principals import Principal
from auth.users import principal_for

COOKIE_NAME = "lick_session"


@dataclass(frozen=True)
class Session:
    session_id: int
    principal: Principal
    csrf_token: str
    expires_at: datetime


def _digest(cookie: str) -> bytes:
    return hashlib.sha256(cookie.encode("utf-8")).digest()


def create_session(
    conn: psycopg2.extensions.connection,
    principal: Principal,
    *,
    lifetime: timedelta = timedelta(hours=8),
    address: str = "",
    user_agent: str = "",
) -> tuple[str, Session]:
    """A new session after a successful login: the cookie value and the session."""
    if principal.user_id is None:
        raise ValueError("only an authenticated principal gets a session")
    cookie = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO auth.sessions (user_id, secret_hash, csrf_token, expires_at, address,"
            " user_agent) VALUES (%s, %s, %s, now() + %s, %s, %s)"
            " RETURNING session_id, expires_at",
            (principal.user_id, _digest(cookie), csrf, lifetime, address, user_agent[:500]),
        )
        row = cur.fetchone()
    assert row is not None
    return cookie, Session(row[0], principal, csrf, row[1])


def load_session(conn: psycopg2.extensions.connection, cookie: str) -> Session | None:
    """The live session of an active account named by this cookie, or None."""
    if not cookie or len(cookie) > 200:
        return None
    with conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE auth.sessions AS s SET last_seen_at = now() FROM auth.users AS u"
            " WHERE s.secret_hash = %s AND u.user_id = s.user_id AND u.is_active"
            "   AND s.expires_at > now()"
            " RETURNING s.session_id, s.user_id, s.csrf_token, s.expires_at",
            (_digest(cookie),),
        )
        row = cur.fetchone()
    if row is None:
        return None
    principal = principal_for(conn, int(row[1]), auth_method="session")
    if principal is None:
        return None
    return Session(row[0], principal, row[2], row[3])


def end_session(conn: psycopg2.extensions.connection, cookie: str, *, address: str = "") -> bool:
    """Logout: delete the session; False when it did not exist (already ended)."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "DELETE FROM auth.sessions WHERE secret_hash = %s RETURNING user_id",
            (_digest(cookie),),
        )
        row = cur.fetchone()
        if row is None:
            return False
        audit.record(cur, audit.LOGOUT, actor_user_id=row[0], address=address)
    return True


def end_user_sessions(conn: psycopg2.extensions.connection, user_id: int) -> int:
    """End every session of an account (password change, disabling); returns how many."""
    with conn, conn.cursor() as cur:
        cur.execute("DELETE FROM auth.sessions WHERE user_id = %s", (user_id,))
        return int(cur.rowcount)


def purge_expired(conn: psycopg2.extensions.connection) -> int:
    with conn, conn.cursor() as cur:
        cur.execute("DELETE FROM auth.sessions WHERE expires_at <= now()")
        return int(cur.rowcount)


def csrf_matches(session: Session, submitted: str | None) -> bool:
    """Whether a form's CSRF token is this session's (constant-time)."""
    if not submitted:
        return False
    return hmac.compare_digest(session.csrf_token.encode(), submitted.encode())

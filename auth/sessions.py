"""Web sessions (cookie) with a per-session CSRF token; no web framework involved.

The cookie carries 256 random bits; the database keeps only their SHA-256, so a
database copy cannot be replayed as a cookie.  Each session has its own CSRF token,
which forms echo back; :func:`csrf_matches` compares in constant time.  Sessions end
at a fixed lifetime, at logout, or when the account is disabled; expired rows are
deleted by :func:`auth.housekeeping.purge`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg2.extensions

from auth import audit, db
from auth.principals import Principal
from auth.users import principal_columns, principal_fields, principal_from_row

COOKIE_NAME = "lick_session"
# secrets.token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
_COOKIE_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_LAST_SEEN_RESOLUTION = "1 minute"


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


def looks_like_cookie(cookie: str) -> bool:
    """Whether a cookie value has the shape :func:`create_session` gives (cheap pre-check:
    anything else names no session, and costs no query)."""
    return _COOKIE_RE.fullmatch(cookie) is not None


def load_session(conn: db.ConnectionSource, cookie: str) -> Session | None:
    """The live session of an active account named by this cookie, or None.

    One statement: the session, its account and groups, and (at most once a
    ``_LAST_SEEN_RESOLUTION``, so that browsing does not write on every page) the
    session's ``last_seen_at``.
    """
    if not looks_like_cookie(cookie):
        return None
    with db.borrow(conn) as c:
        row = db.run_one(c, _LOAD_SQL, {"digest": _digest(cookie),
                                        "resolution": _LAST_SEEN_RESOLUTION})
    if row is None:
        return None
    return Session(row[0], principal_from_row(row[3:], "session"), row[1], row[2])


_LOAD_SQL = (
    "WITH live AS ("
    " SELECT s.session_id, s.csrf_token, s.expires_at, s.last_seen_at,"
    f"       {principal_columns('u')}"
    "   FROM auth.sessions AS s JOIN auth.users AS u ON u.user_id = s.user_id"
    "  WHERE s.secret_hash = %(digest)s AND u.is_active AND s.expires_at > now()"
    "), touched AS ("
    " UPDATE auth.sessions AS s SET last_seen_at = now() FROM live"
    "  WHERE s.session_id = live.session_id"
    "    AND live.last_seen_at < now() - %(resolution)s::interval)"
    f" SELECT session_id, csrf_token, expires_at, {principal_fields('live')} FROM live"
)


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


def csrf_matches(session: Session, submitted: str | None) -> bool:
    """Whether a form's CSRF token is this session's (constant-time)."""
    if not submitted:
        return False
    return hmac.compare_digest(session.csrf_token.encode(), submitted.encode())

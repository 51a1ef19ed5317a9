"""Personal bearer tokens for VO clients (pyvo, TOPCAT, scripts).

A token reads ``lick_<prefix>_<secret>``; only its SHA-256 is stored, so a copy of the
database gives no usable token.  The prefix is stored in clear to let users and staff
tell their tokens apart in listings.  SHA-256 (not a slow password hash) is right here:
the secret has 256 random bits, nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import psycopg2.extensions

from auth import audit, db
from auth.principals import Principal
from auth.users import principal_columns, principal_fields, principal_from_row

TOKEN_PREFIX = "lick_"
_TOKEN_RE = re.compile(r"lick_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")
# last_used_at is refreshed at most this often, so a busy client does not write per request.
_LAST_USED_RESOLUTION = "1 minute"


class TokenError(ValueError):
    """A token request that cannot be done; the message says why."""


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: never the secret."""

    token_id: int
    user_id: int
    prefix: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def display(self) -> str:
        return f"{TOKEN_PREFIX}{self.prefix}_…"


_INFO_COLUMNS = ("token_id, user_id, prefix, label, created_at, expires_at, last_used_at, "
                 "revoked_at")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def looks_like_token(value: str) -> bool:
    """Whether a bearer credential has our token shape (cheap pre-check)."""
    return _TOKEN_RE.fullmatch(value) is not None


def create_token(
    conn: psycopg2.extensions.connection,
    user_id: int,
    *,
    label: str = "",
    expires_at: datetime | None = None,
    actor: Principal | None = None,
) -> tuple[str, TokenInfo]:
    """A new token for an active account: the clear text (shown once) and its record."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT login FROM auth.users WHERE user_id = %s AND is_active", (user_id,))
        row = cur.fetchone()
        if row is None:
            raise TokenError(f"no active account with id {user_id}")
        login = row[0]
        while True:
            prefix = secrets.token_hex(4)
            token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
            cur.execute(
                "INSERT INTO auth.tokens (user_id, prefix, secret_hash, label, expires_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
                f" RETURNING {_INFO_COLUMNS}",
                (user_id, prefix, _digest(token), label, expires_at),
            )
            info = cur.fetchone()
            if info is not None:
                break
        audit.record(
            cur, audit.TOKEN_CREATED,
            actor_user_id=user_id if actor is None else actor.user_id,
            actor_login=login if actor is None else actor.login,
            target=f"{TOKEN_PREFIX}{prefix}", details={"user": login, "label": label},
        )
    return token, TokenInfo(*info)


def verify_token(conn: db.ConnectionSource, token: str) -> Principal | None:
    """The principal a live token stands for, or None (unknown, revoked, expired, disabled).

    One statement: the token, its account and groups, and (at most once a
    ``_LAST_USED_RESOLUTION``) the token's ``last_used_at``.  A value without the token
    shape costs no query.
    """
    if not looks_like_token(token):
        return None
    with db.borrow(conn) as c:
        row = db.run_one(c, _VERIFY_SQL, {"digest": _digest(token),
                                          "resolution": _LAST_USED_RESOLUTION})
    return None if row is None else principal_from_row(row, "token")


_VERIFY_SQL = (
    "WITH live AS ("
    f" SELECT t.token_id, t.last_used_at, {principal_columns('u')}"
    "   FROM auth.tokens AS t JOIN auth.users AS u ON u.user_id = t.user_id"
    "  WHERE t.secret_hash = %(digest)s AND u.is_active AND t.revoked_at IS NULL"
    "    AND (t.expires_at IS NULL OR t.expires_at > now())"
    "), touched AS ("
    " UPDATE auth.tokens AS t SET last_used_at = now() FROM live"
    "  WHERE t.token_id = live.token_id"
    "    AND (live.last_used_at IS NULL"
    "         OR live.last_used_at < now() - %(resolution)s::interval))"
    f" SELECT {principal_fields('live')} FROM live"
)


def list_tokens(conn: psycopg2.extensions.connection, user_id: int | None = None, *,
                include_revoked: bool = False) -> list[TokenInfo]:
    """One account's tokens (or everyone's, for staff), newest first."""
    with conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT {_INFO_COLUMNS} FROM auth.tokens"
            " WHERE (%(user)s::integer IS NULL OR user_id = %(user)s)"
            "   AND (%(revoked)s OR revoked_at IS NULL)"
            " ORDER BY created_at DESC, token_id DESC",
            {"user": user_id, "revoked": include_revoked},
        )
        return [TokenInfo(*row) for row in cur.fetchall()]


def revoke_token(conn: psycopg2.extensions.connection, prefix: str, *,
                 user_id: int | None = None, actor: Principal | None = None) -> bool:
    """Revoke by prefix (``lick_`` optional); ``user_id`` restricts to one owner's tokens.

    False when no live token matched, so a user cannot probe others' prefixes.
    """
    prefix = prefix.removeprefix(TOKEN_PREFIX).rstrip("_…")
    with conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE auth.tokens SET revoked_at = now()"
            " WHERE prefix = %s AND revoked_at IS NULL"
            "   AND (%s::integer IS NULL OR user_id = %s) RETURNING user_id",
            (prefix, user_id, user_id),
        )
        row = cur.fetchone()
        if row is None:
            return False
        audit.record(
            cur, audit.TOKEN_REVOKED,
            actor_user_id=row[0] if actor is None else actor.user_id,
            actor_login="" if actor is None else actor.login,
            target=f"{TOKEN_PREFIX}{prefix}",
        )
    return True

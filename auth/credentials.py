"""Who is asking: the one authentication path of every HTTP request.

Framework-free: the HTTP middleware hands over the raw ``Authorization`` header, the
session cookie and the client address, and gets back an :class:`Identity` (the
principal, the live web session, a stale-cookie flag) or a :class:`Refusal` that says
which status, message and headers to send.  Every capability thereby accepts the same
methods: HTTP Basic (IVOA SSO ``BasicAA``), ``Authorization: Bearer`` personal tokens
and the web pages' session cookie.

No credentials means anonymous (public rows only).  Wrong or malformed credentials in
an ``Authorization`` header are refused, never silently downgraded to anonymous: a
script with a typo in its password must notice.  A session cookie is different:
browsers keep sending one after the session ended (logout elsewhere, expiry, account
disabled), so a cookie that names no live session means anonymous, flagged so that the
pages can drop it.

Nothing a client sends makes this module raise: hostile input (non-UTF-8, NUL and
control characters, overlong values, odd token characters, huge headers) ends in a
refusal, mostly before any query.  Database errors (connection lost) do propagate.
"""

from __future__ import annotations

import base64
import enum
from dataclasses import dataclass, field

from auth import sessions, tokens
from auth.db import ConnectionSource
from auth.login import authenticate_password
from auth.passwords import VerifiedCredentialCache
from auth.principals import ANONYMOUS, Principal
from auth.throttle import ThrottlePolicy

REALM = "Lick Archive"
CHALLENGE = f'Basic realm="{REALM}", charset="UTF-8"'
"""The ``WWW-Authenticate`` value of a 401 for HTTP Basic and for missing credentials:
``charset="UTF-8"`` (RFC 7617) tells clients to send non-ASCII credentials as UTF-8."""
_BEARER_CHALLENGE = f'Bearer realm="{REALM}"'

# Far above any real credential (a Basic header with the longest login and password is
# under 7 kB), far below what would cost anything to look at.
MAX_AUTHORIZATION_CHARS = 8192


@dataclass(frozen=True)
class BasicCredentials:
    login: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class BearerCredentials:
    token: str = field(repr=False)


@dataclass(frozen=True)
class Malformed:
    """An ``Authorization`` header that cannot be read; ``message`` says what is wrong."""

    message: str
    bearer: bool = False


class RefusalReason(enum.Enum):
    WRONG_CREDENTIALS = "wrong_credentials"
    MALFORMED = "malformed"
    THROTTLED = "throttled"


@dataclass(frozen=True)
class Identity:
    """The requester; ``session`` is the live web session named by the cookie (its CSRF
    token for the pages), ``stale_cookie`` says a cookie was sent that names none."""

    principal: Principal
    session: sessions.Session | None = None
    stale_cookie: bool = False


ANONYMOUS_IDENTITY = Identity(ANONYMOUS)


@dataclass(frozen=True)
class Refusal:
    """Credentials were sent and are not accepted: reply :attr:`status` with
    :attr:`headers` and :attr:`message` (safe to show: it never says whether a login
    exists)."""

    reason: RefusalReason
    message: str
    challenge: str = CHALLENGE
    retry_after_seconds: int | None = None

    @property
    def status(self) -> int:
        return 429 if self.reason is RefusalReason.THROTTLED else 401

    @property
    def headers(self) -> dict[str, str]:
        """``WWW-Authenticate`` for a 401, ``Retry-After`` for a 429."""
        if self.reason is RefusalReason.THROTTLED:
            return {"Retry-After": str(self.retry_after_seconds or 1)}
        return {"WWW-Authenticate": self.challenge}


def parse_authorization(header: str | bytes | None
                        ) -> BasicCredentials | BearerCredentials | Malformed | None:
    """The credentials of an ``Authorization`` header: None when absent, else the Basic
    or Bearer credentials, or :class:`Malformed` saying what is wrong.

    ``bytes`` are read as Latin-1 (as HTTP header bytes); Basic credentials must then
    decode as UTF-8 (RFC 7617 with ``charset="UTF-8"``, which our challenge announces).
    """
    if header is None:
        return None
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    if len(header) > MAX_AUTHORIZATION_CHARS:
        return Malformed(f"the Authorization header is longer than {MAX_AUTHORIZATION_CHARS} "
                         "characters")
    parts = header.strip().split(None, 1)
    if not parts:
        return Malformed("the Authorization header is empty")
    scheme, value = parts[0].lower(), (parts[1].strip() if len(parts) > 1 else "")
    if scheme == "basic":
        return _parse_basic(value)
    if scheme == "bearer":
        if not value:
            return Malformed("no token after 'Bearer'", bearer=True)
        return BearerCredentials(value)
    shown = parts[0][:32].encode("ascii", "backslashreplace").decode("ascii")
    return Malformed(f"unsupported authorization scheme {shown!r}; use Basic or Bearer")


def _parse_basic(value: str) -> BasicCredentials | Malformed:
    if not value:
        return Malformed("no credentials after 'Basic'")
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII characters
        return Malformed("the HTTP Basic credentials are not valid base64")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Malformed("the HTTP Basic credentials are not UTF-8 text (RFC 7617)")
    login, sep, password = decoded.partition(":")
    if not sep:
        return Malformed("the HTTP Basic credentials have no ':' between login and password")
    if not login.strip():
        return Malformed("the HTTP Basic login (before the ':') is empty")
    return BasicCredentials(login, password)


def authenticate_request(
    connect: ConnectionSource,
    *,
    authorization: str | bytes | None,
    session_cookie: str | None,
    address: str,
    policy: ThrottlePolicy,
    cache: VerifiedCredentialCache | None,
) -> Identity | Refusal:
    """Who is asking, for every HTTP request (blocking: run it in a worker thread).

    ``connect``: an owner-role connection, or a callable returning a context manager
    that lends one (a pool's ``owner()``); with a callable, a connection is borrowed
    only around each statement, never while a password is hashed.
    ``authorization``: the raw ``Authorization`` header (str, or bytes read as
    Latin-1), or None.  ``session_cookie``: the ``lick_session`` cookie's value, or None.
    ``address``: the client's IP address, for throttling and the audit log.
    ``policy``: the login throttling policy (``ThrottlePolicy.for_limit``).
    ``cache``: the process's :class:`VerifiedCredentialCache` (None: no caching).

    Returns :class:`Identity` or :class:`Refusal`:

    - the ``Authorization`` header wins; a cookie sent with it is ignored;
    - HTTP Basic: right → ``Identity(principal)`` (``auth_method="basic"``); wrong
      login or password, unknown or disabled account, or a login or password no
      account can have (control characters, overlong) → 401 ``WRONG_CREDENTIALS`` with
      :data:`CHALLENGE`; too many recent failures → 429 ``THROTTLED`` with
      ``retry_after_seconds`` (even with the right password);
    - Bearer: a live token → ``Identity(principal)`` (``auth_method="token"``); else
      401 ``WRONG_CREDENTIALS`` with a Bearer challenge (``error="invalid_token"``);
    - an unreadable header (not base64, not UTF-8, no ':', empty login, no token,
      another scheme, longer than :data:`MAX_AUTHORIZATION_CHARS`) → 401 ``MALFORMED``
      whose message says what is malformed;
    - no header: a cookie naming a live session → ``Identity(principal, session)``
      (``auth_method="session"``); any other cookie →
      ``Identity(ANONYMOUS, stale_cookie=True)``;
    - neither → :data:`ANONYMOUS_IDENTITY`, without touching the database.

    Database work: none for anonymous and for credentials refused by their shape; one
    statement for a cookie, a token, or a Basic pair recalled from the cache; two for
    any other Basic check, the same two whatever the outcome (see :mod:`auth.login`).
    """
    if authorization:
        return _authenticate_header(connect, authorization, address, policy, cache)
    if not session_cookie:
        return ANONYMOUS_IDENTITY
    session = sessions.load_session(connect, session_cookie)
    if session is None:
        return Identity(ANONYMOUS, stale_cookie=True)
    return Identity(session.principal, session)


def _authenticate_header(connect: ConnectionSource, authorization: str | bytes, address: str,
                         policy: ThrottlePolicy, cache: VerifiedCredentialCache | None
                         ) -> Identity | Refusal:
    credentials = parse_authorization(authorization)
    if isinstance(credentials, BasicCredentials):
        result = authenticate_password(
            connect, credentials.login, credentials.password, address,
            policy=policy, cache=cache, auth_method="basic", audit_success=False)
        if result.principal is not None:
            return Identity(result.principal)
        if result.throttled:
            return Refusal(RefusalReason.THROTTLED,
                           f"too many failed logins; try again in "
                           f"{result.retry_after_seconds} s",
                           retry_after_seconds=result.retry_after_seconds)
        return Refusal(RefusalReason.WRONG_CREDENTIALS, "wrong login or password")
    if isinstance(credentials, BearerCredentials):
        principal = tokens.verify_token(connect, credentials.token)
        if principal is not None:
            return Identity(principal)
        return Refusal(RefusalReason.WRONG_CREDENTIALS, "unknown, expired or revoked token",
                       challenge=f'{_BEARER_CHALLENGE}, error="invalid_token"')
    if credentials is None:  # not reached: a non-empty header parses to something
        return ANONYMOUS_IDENTITY
    challenge = (f'{_BEARER_CHALLENGE}, error="invalid_request"' if credentials.bearer
                 else CHALLENGE)
    return Refusal(RefusalReason.MALFORMED,
                   f"malformed Authorization header: {credentials.message}",
                   challenge=challenge)

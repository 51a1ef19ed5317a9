"""HTTP credentials to principals: Basic (IVOA SSO BasicAA), bearer tokens, cookies.

Framework-free: the HTTP layer hands over the ``Authorization`` header, the session
cookie and the client address, and gets back a principal or a refusal with the
``WWW-Authenticate`` challenge to send.  Every route uses this one function, so every
capability accepts the same methods (declared as :data:`SECURITY_METHODS`).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import psycopg2.extensions

from auth import sessions, throttle, tokens
from auth.login import authenticate_password
from auth.passwords import VerifiedCredentialCache
from auth.principals import ANONYMOUS, Principal

REALM = "Lick Observatory Archive"
# IVOA SSO 2.0 securityMethod standardIDs, for every capability's <interface>.
SECURITY_METHODS = (
    "ivo://ivoa.net/sso#BasicAA",
    "ivo://ivoa.net/sso#token",
    "ivo://ivoa.net/sso#cookie",
)
CHALLENGE = f'Basic realm="{REALM}", Bearer realm="{REALM}"'


@dataclass(frozen=True)
class BasicCredentials:
    login: str
    password: str


@dataclass(frozen=True)
class BearerCredentials:
    token: str


@dataclass(frozen=True)
class AuthOutcome:
    """``principal`` (ANONYMOUS when no credentials were sent) or a refusal.

    ``refused`` means credentials were sent and are wrong: reply 401 with
    ``WWW-Authenticate: challenge`` (or 429 with ``Retry-After`` when ``throttled``).
    """

    principal: Principal
    refused: bool = False
    throttled: bool = False
    retry_after_seconds: int = 0
    challenge: str = CHALLENGE


def parse_authorization(header: str | None) -> BasicCredentials | BearerCredentials | None:
    """The credentials of an ``Authorization`` header; None when absent or unreadable."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        login, sep, password = decoded.partition(":")
        if not sep or not login:
            return None
        return BasicCredentials(login, password)
    if scheme.lower() == "bearer" and value:
        return BearerCredentials(value)
    return None


def authenticate_request(
    conn: psycopg2.extensions.connection,
    *,
    authorization: str | None,
    session_cookie: str | None,
    address: str,
    cache: VerifiedCredentialCache | None = None,
    policy: throttle.ThrottlePolicy | None = None,
) -> AuthOutcome:
    """Who is asking: an ``Authorization`` header wins over the session cookie.

    A malformed or wrong header is refused rather than treated as anonymous, so a
    client with a typo in its password learns it instead of seeing only public data.
    """
    if authorization:
        credentials = parse_authorization(authorization)
        if isinstance(credentials, BasicCredentials):
            result = authenticate_password(
                conn, credentials.login, credentials.password, address,
                policy=policy, cache=cache, auth_method="basic", audit_success=cache is None,
            )
            if result.principal is not None:
                return AuthOutcome(result.principal)
            return AuthOutcome(ANONYMOUS, refused=True, throttled=result.throttled,
                               retry_after_seconds=result.retry_after_seconds)
        if isinstance(credentials, BearerCredentials):
            principal = tokens.verify_token(conn, credentials.token)
            if principal is not None:
                return AuthOutcome(principal)
        return AuthOutcome(ANONYMOUS, refused=True)
    if session_cookie:
        session = sessions.load_session(conn, session_cookie)
        if session is not None:
            return AuthOutcome(session.principal)
    return AuthOutcome(ANONYMOUS)

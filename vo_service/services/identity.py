"""Who is asking: HTTP Basic (IVOA SSO BasicAA), a bearer token or the web session cookie.

No credentials means anonymous (public rows only).  Wrong credentials in an
``Authorization`` header are an error, never a silent downgrade to anonymous: a
script with a typo in its password must notice.  Throttled logins get 429 with
Retry-After.  A session cookie is different: browsers keep sending a cookie after the
session ended (logout elsewhere, expiry, account disabled), so an unknown cookie
means anonymous, and the pages offer a fresh login.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import timedelta

import psycopg2.extensions

from auth.login import authenticate_password
from auth.passwords import VerifiedCredentialCache
from auth.principals import ANONYMOUS, Principal
from auth.sessions import Session, load_session
from auth.throttle import ThrottlePolicy
from auth.tokens import verify_token
from vo_service.database.pool import Pool
from vo_service.errors import AuthorizationFault, ServiceError
from vo_service.settings import AuthSettings


class TooManyAttempts(ServiceError):
    fault = "AuthorizationFault"
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after} s",
                         retry_after=retry_after)


def throttle_policy(auth: AuthSettings) -> ThrottlePolicy:
    """The one throttling policy for HTTP Basic and the login form."""
    return ThrottlePolicy(
        max_failures_per_login=auth.max_failed_logins,
        max_failures_per_address=4 * auth.max_failed_logins,
        window=timedelta(seconds=auth.throttle_window_s))


@dataclass(frozen=True)
class Identity:
    """The requester, and the web session when the session cookie named a live one.

    ``stale_cookie`` says a session cookie was sent that names no live session, so the
    pages can drop it.
    """

    principal: Principal
    session: Session | None = None
    stale_cookie: bool = False


ANONYMOUS_IDENTITY = Identity(ANONYMOUS)


class IdentityService:
    """Credentials to identities on the identity pool (owner role)."""

    def __init__(self, pool: Pool, auth: AuthSettings) -> None:
        self.pool = pool
        self.policy = throttle_policy(auth)
        self.cache = VerifiedCredentialCache()

    async def identify(self, authorization: str | None, session_cookie: str | None,
                       address: str) -> Identity:
        """Who is asking; without credentials, anonymous with no database work at all."""
        if not authorization and not session_cookie:
            return ANONYMOUS_IDENTITY
        return await self.pool.run_with(
            lambda conn: self._identify(conn, authorization, session_cookie, address))

    def _identify(self, conn: psycopg2.extensions.connection, authorization: str | None,
                  session_cookie: str | None, address: str) -> Identity:
        if authorization or not session_cookie:
            return Identity(self._authenticate(conn, authorization, address))
        session = load_session(conn, session_cookie)
        if session is None:
            return Identity(ANONYMOUS, stale_cookie=True)
        return Identity(session.principal, session)

    def _authenticate(self, conn: psycopg2.extensions.connection, authorization: str | None,
                      address: str) -> Principal:
        if not authorization:
            return ANONYMOUS
        scheme, _, value = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            try:
                login, sep, password = base64.b64decode(value.strip(), validate=True) \
                    .decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise AuthorizationFault("malformed HTTP Basic credentials") from None
            if not sep or "\x00" in login or "\x00" in password:
                raise AuthorizationFault("malformed HTTP Basic credentials") from None
            result = authenticate_password(conn, login, password, address,
                                           policy=self.policy, cache=self.cache,
                                           auth_method="basic", audit_success=False)
            if result.throttled:
                raise TooManyAttempts(result.retry_after_seconds)
            if result.principal is None:
                raise AuthorizationFault("wrong login or password")
            return result.principal
        if scheme == "bearer":
            principal = verify_token(conn, value.strip())
            if principal is None:
                raise AuthorizationFault("unknown, expired or revoked token")
            return principal
        raise AuthorizationFault(f"unsupported authorization scheme {scheme[:20]!r}; use "
                                 "Basic or Bearer")

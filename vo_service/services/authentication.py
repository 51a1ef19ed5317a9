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

from auth.login import authenticate_password
from auth.principals import ANONYMOUS, Principal
from auth.sessions import Session, load_session
from auth.throttle import ThrottlePolicy
from auth.tokens import verify_token
from vo_service.context import AppContext
from vo_service.errors import AuthorizationFault, ServiceError


class TooManyAttempts(ServiceError):
    fault = "AuthorizationFault"
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after} s")
        self.retry_after = retry_after


def throttle_policy(ctx: AppContext) -> ThrottlePolicy:
    """The one throttling policy for HTTP Basic and the login form."""
    return ThrottlePolicy(
        max_failures_per_login=ctx.settings.auth.max_failed_logins,
        max_failures_per_address=4 * ctx.settings.auth.max_failed_logins,
        window=timedelta(seconds=ctx.settings.auth.throttle_window_s))


@dataclass(frozen=True)
class Identity:
    """The requester, and the web session when the session cookie named a live one.

    ``stale_cookie`` says a session cookie was sent that names no live session, so the
    pages can drop it.
    """

    principal: Principal
    session: Session | None = None
    stale_cookie: bool = False


def identify(ctx: AppContext, authorization: str | None, session_cookie: str | None,
             address: str) -> Identity:
    """Who is asking: the ``Authorization`` header wins over the cookie (blocking)."""
    if authorization or not session_cookie:
        return Identity(authenticate(ctx, authorization, address))
    with ctx.database.owner() as conn:
        session = load_session(conn, session_cookie)
    if session is None:
        return Identity(ANONYMOUS, stale_cookie=True)
    return Identity(session.principal, session)


def authenticate(ctx: AppContext, authorization: str | None, address: str) -> Principal:
    """The principal for an ``Authorization`` header (blocking: run in a thread)."""
    if not authorization:
        return ANONYMOUS
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        try:
            login, sep, password = base64.b64decode(value.strip(), validate=True) \
                .decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthorizationFault("malformed HTTP Basic credentials") from None
        if not sep:
            raise AuthorizationFault("malformed HTTP Basic credentials") from None
        with ctx.database.owner() as conn:
            result = authenticate_password(conn, login, password, address,
                                           policy=throttle_policy(ctx),
                                           cache=ctx.credentials, auth_method="basic",
                                           audit_success=False)
        if result.throttled:
            raise TooManyAttempts(result.retry_after_seconds)
        if result.principal is None:
            raise AuthorizationFault("wrong login or password")
        return result.principal
    if scheme == "bearer":
        with ctx.database.owner() as conn:
            principal = verify_token(conn, value.strip())
        if principal is None:
            raise AuthorizationFault("unknown, expired or revoked token")
        return principal
    raise AuthorizationFault(f"unsupported authorization scheme {scheme!r}; use Basic or "
                             "Bearer")

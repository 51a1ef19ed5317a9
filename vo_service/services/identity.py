"""Who is asking, for the HTTP layer: :mod:`auth.credentials` on the identity pool.

The one authentication path is auth's (:func:`auth.credentials.authenticate_request`);
this service only runs it off the event loop, on the identity pool, and turns its
typed refusals into the service's errors.  A request without credentials is anonymous
at once, with no database work and no waiting.
"""

from __future__ import annotations

from auth.credentials import ANONYMOUS_IDENTITY, Identity, Refusal, authenticate_request
from auth.passwords import VerifiedCredentialCache
from auth.throttle import ThrottlePolicy
from vo_service.database.pool import Pool
from vo_service.errors import AuthorizationFault, ServiceError
from vo_service.settings import AuthSettings


def refusal_error(refusal: Refusal) -> ServiceError:
    """The error for a refusal: 401 with its challenge, or 429 with Retry-After."""
    error = AuthorizationFault(refusal.message, status=refusal.status,
                               retry_after=refusal.retry_after_seconds)
    error.headers = dict(refusal.headers)
    return error


class IdentityService:
    """Credentials to identities on the identity pool (owner role)."""

    def __init__(self, pool: Pool, auth: AuthSettings) -> None:
        self.pool = pool
        self.policy = ThrottlePolicy.for_limit(auth.max_failed_logins, auth.throttle_window_s)
        self.cache = VerifiedCredentialCache()

    async def identify(self, authorization: str | None, session_cookie: str | None,
                       address: str) -> Identity:
        """Who is asking; raises the 401/429 error for refused credentials."""
        if not authorization and not session_cookie:
            return ANONYMOUS_IDENTITY
        outcome = await self.pool.run_with(lambda conn: authenticate_request(
            conn, authorization=authorization, session_cookie=session_cookie,
            address=address, policy=self.policy, cache=self.cache))
        if isinstance(outcome, Refusal):
            raise refusal_error(outcome)
        return outcome

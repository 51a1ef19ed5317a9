"""What the identity pages do, without HTTP: blocking calls into :mod:`auth`.

Each function borrows one owner connection from the pages' pool and leaves the
transactions to the ``auth`` functions, which also write the audit records (the
acting principal is always passed).  Run them in a worker thread of that pool
(``pool.run``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from auth import audit, grants, sessions, tokens, users
from auth.audit import AuditEvent
from auth.grants import Grant
from auth.login import authenticate_password
from auth.principals import Principal
from auth.throttle import ThrottlePolicy
from auth.tokens import TokenInfo
from auth.users import Group, User
from vo_service.database.pool import Pool
from vo_service.web.forms import GrantRequest, TokenRequest, UserRequest


class ActionRefused(ValueError):
    """A valid request the actor may not make, or one about something that does not exist."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


def utc_today() -> date:
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class LoginOutcome:
    """``cookie`` and ``session`` on success; otherwise whether the attempt was throttled."""

    cookie: str | None = None
    session: sessions.Session | None = None
    throttled: bool = False
    retry_after_seconds: int = 0


def login(pool: Pool, email: str, password: str, *, address: str, user_agent: str,
          previous_cookie: str | None, policy: ThrottlePolicy,
          session_lifetime_s: int) -> LoginOutcome:
    """Check the password (throttled and audited like HTTP Basic) and open a session.

    A session the browser still held is ended first: a login always starts a fresh
    session id, so a cookie planted before login is worth nothing after it.
    """
    with pool.connection() as conn:
        result = authenticate_password(conn, email, password, address,
                                       policy=policy, auth_method="password")
        if result.principal is None:
            return LoginOutcome(throttled=result.throttled,
                                retry_after_seconds=result.retry_after_seconds)
        if previous_cookie:
            sessions.end_session(conn, previous_cookie, address=address)
        cookie, session = sessions.create_session(
            conn, result.principal,
            lifetime=timedelta(seconds=session_lifetime_s),
            address=address, user_agent=user_agent)
    return LoginOutcome(cookie, session)


def logout(pool: Pool, cookie: str, address: str) -> bool:
    with pool.connection() as conn:
        return sessions.end_session(conn, cookie, address=address)


@dataclass(frozen=True)
class AccountView:
    user: User | None
    tokens: list[TokenInfo]
    grants: list[Grant]


def account_view(pool: Pool, principal: Principal) -> AccountView:
    assert principal.user_id is not None
    with pool.connection() as conn:
        return AccountView(
            users.get_user(conn, user_id=principal.user_id),
            tokens.list_tokens(conn, principal.user_id),
            grants.list_grants(conn, user_login=principal.login),
        )


def create_token(pool: Pool, principal: Principal, request: TokenRequest
                 ) -> tuple[str, TokenInfo]:
    """A personal token of the requester: the clear text (to show once) and its record."""
    assert principal.user_id is not None
    with pool.connection() as conn:
        try:
            return tokens.create_token(conn, principal.user_id, label=request.label,
                                       expires_at=request.expires_at, actor=principal)
        except tokens.TokenError as exc:
            raise ActionRefused(str(exc)) from exc


def revoke_token(pool: Pool, principal: Principal, prefix: str) -> None:
    """Only the requester's own tokens: an unknown prefix and another's look alike."""
    with pool.connection() as conn:
        if not tokens.revoke_token(conn, prefix, user_id=principal.user_id, actor=principal):
            raise ActionRefused("you have no live token with that prefix", status=404)


@dataclass(frozen=True)
class AdminView:
    users: list[User]
    groups: list[Group]
    grants: list[Grant]
    events: list[AuditEvent]


def admin_view(pool: Pool, *, all_grants: bool = False, events: int = 30) -> AdminView:
    with pool.connection() as conn:
        return AdminView(
            users.list_users(conn),
            users.list_groups(conn),
            grants.list_grants(conn, live_only=not all_grants),
            audit.list_events(conn, limit=events),
        )


def add_user(pool: Pool, actor: Principal, request: UserRequest) -> User:
    """A local staff or admin account; only admins make admins."""
    if request.is_admin and not actor.is_admin:
        raise ActionRefused("only an admin can create an admin account")
    with pool.connection() as conn:
        try:
            return users.add_user(conn, request.login, request.password,
                                  first_name=request.first_name, last_name=request.last_name,
                                  is_staff=True, is_admin=request.is_admin, actor=actor)
        except users.UserError as exc:
            raise ActionRefused(str(exc), status=400) from exc


def set_active(pool: Pool, actor: Principal, login: str, active: bool) -> User:
    """Disable or re-enable an account; not one's own, and admins only by admins."""
    with pool.connection() as conn:
        target = users.get_user(conn, login=login)
        if target is None:
            raise ActionRefused(f"no account {login!r}", status=404)
        if target.user_id == actor.user_id:
            raise ActionRefused("you cannot disable or enable your own account")
        if target.is_admin and not actor.is_admin:
            raise ActionRefused("only an admin can disable or enable an admin account")
        return users.set_active(conn, target.login, active, actor=actor)


def create_grant(pool: Pool, actor: Principal, request: GrantRequest) -> Grant:
    with pool.connection() as conn:
        try:
            return grants.create_grant(
                conn, user_login=request.user_login, group_name=request.group_name,
                did=request.did, night=request.night, instrument_dir=request.instrument_dir,
                program=request.program, expires_at=request.expires_at, granted_by=actor,
                note=request.note)
        except grants.GrantError as exc:
            raise ActionRefused(str(exc), status=400) from exc


def revoke_grant(pool: Pool, actor: Principal, grant_id: int) -> None:
    with pool.connection() as conn:
        if not grants.revoke_grant(conn, grant_id, revoked_by=actor):
            raise ActionRefused(f"no live grant #{grant_id}", status=404)


@dataclass(frozen=True)
class Owner:
    observer_id: int
    login: str | None


def dataset_owners(pool: Pool, did: str) -> list[Owner]:
    """The observers entitled to a dataset before its release (owner role: call only
    for a dataset the requester was shown through row-level security)."""
    with pool.connection() as conn:
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT o.id, u.login FROM lick.files AS f "
                    "CROSS JOIN LATERAL unnest(f.owner_ids) AS o(id) "
                    "LEFT JOIN auth.users AS u ON u.observer_id = o.id "
                    "WHERE f.obs_publisher_did = %s ORDER BY o.id", (did,))
                return [Owner(int(r[0]), r[1]) for r in cur.fetchall()]
        finally:
            conn.rollback()

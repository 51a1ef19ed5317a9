"""Accounts and groups: local staff/admin accounts, observers synced from the schedule.

Observers live in the observatory's scheduling database; :func:`sync_users` copies
them (``$apr1$`` hashes untouched) and disables accounts that disappeared there.
Local accounts (``is_local``) are created here with argon2 hashes and are never
touched by a sync.  Every function owns its transaction on the owner connection it
is given, and records what it changed in the audit log.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import psycopg2
import psycopg2.extensions

from auth import audit, db
from auth.passwords import hash_password
from auth.principals import Principal

# Two-part advisory lock key for the sync: concurrent timer runs queue, not interleave.
_SYNC_LOCK = (0x4C49434B, 1)

_USER_FIELDS = (
    "user_id", "observer_id", "login", "first_name", "last_name", "email", "is_active",
    "disabled_reason", "is_staff", "is_admin", "is_local", "created_at", "synced_at",
)
_USER_COLUMNS = ", ".join(_USER_FIELDS)

# Longest login and password a credential may carry.  Logins are email addresses
# (RFC 5321 caps a path at 254 characters); a password check hashes what it is given,
# so an unbounded one would let a client buy argon2 time by the megabyte.
MAX_LOGIN_CHARS = 254
MAX_PASSWORD_CHARS = 1024


class UserError(ValueError):
    """A request about accounts that cannot be done; the message says why."""


class SyncError(RuntimeError):
    """The sync was refused or failed; nothing was changed."""


@dataclass(frozen=True)
class User:
    user_id: int
    observer_id: int | None
    login: str
    first_name: str
    last_name: str
    email: str
    is_active: bool
    disabled_reason: str | None
    is_staff: bool
    is_admin: bool
    is_local: bool
    created_at: datetime
    synced_at: datetime | None

    @property
    def display_name(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.login


@dataclass(frozen=True)
class Group:
    group_id: int
    name: str
    description: str
    member_logins: tuple[str, ...]


@dataclass
class SyncReport:
    """What one sync did; ``conflicts`` explains each schedule row it skipped."""

    seen: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    reenabled: list[str] = field(default_factory=list)
    unchanged: int = 0
    conflicts: list[str] = field(default_factory=list)


def _user(row: Sequence[object]) -> User:
    return User(*row)  # type: ignore[arg-type]


def unstorable(text: str) -> bool:
    """Control characters (NUL among them: PostgreSQL text cannot hold it) or lone
    surrogates (not encodable as UTF-8): no account can have them, no query gets them."""
    return any(unicodedata.category(c) in ("Cc", "Cs") for c in text)


def login_problem(login: str) -> str | None:
    """Why ``login`` cannot name any account (checked before any query), or None."""
    if not login:
        return "the login is empty"
    if len(login) > MAX_LOGIN_CHARS:
        return f"the login is longer than {MAX_LOGIN_CHARS} characters"
    if unstorable(login):
        return "the login contains a control character"
    return None


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be any account's password (checked before any query)."""
    if len(password) > MAX_PASSWORD_CHARS:
        return f"the password is longer than {MAX_PASSWORD_CHARS} characters"
    if unstorable(password):
        return "the password contains a control character"
    return None


def _new_password_problem(password: str) -> str | None:
    if len(password) < 8:
        return "the password must have at least 8 characters"
    return password_problem(password)


def principal_columns(alias: str) -> str:
    """The select list :func:`principal_from_row` reads, for the account aliased ``alias``.

    Account and groups in one statement, so that resolving a credential costs one
    round trip.  ``alias`` is a constant of the calling module, never user text.
    """
    if not alias.isidentifier():
        raise ValueError(f"not an SQL alias: {alias!r}")
    return (
        ", ".join(f"{alias}.{name}" for name in _USER_FIELDS)
        + f", ARRAY(SELECT m.group_id FROM auth.group_members AS m"
          f" WHERE m.user_id = {alias}.user_id ORDER BY m.group_id) AS group_ids"
        + f", ARRAY(SELECT g.name FROM auth.group_members AS m JOIN auth.groups AS g"
          f" USING (group_id) WHERE m.user_id = {alias}.user_id ORDER BY g.name) AS group_names"
    )


PRINCIPAL_WIDTH = len(_USER_FIELDS) + 2
"""How many columns :func:`principal_columns` selects."""


def principal_fields(alias: str) -> str:
    """The columns of :func:`principal_columns` read back from a derived table ``alias``."""
    if not alias.isidentifier():
        raise ValueError(f"not an SQL alias: {alias!r}")
    return ", ".join(f"{alias}.{name}" for name in (*_USER_FIELDS, "group_ids", "group_names"))


def user_from_row(row: Sequence[Any]) -> User:
    """The account of a row selected with :func:`principal_columns`."""
    return _user(row[:len(_USER_FIELDS)])


def principal_from_row(row: Sequence[Any], auth_method: str) -> Principal:
    """The principal of a row selected with :func:`principal_columns`."""
    user = user_from_row(row)
    group_ids, group_names = row[len(_USER_FIELDS)], row[len(_USER_FIELDS) + 1]
    return Principal(
        user_id=user.user_id,
        login=user.login,
        display_name=user.display_name,
        is_staff=user.is_staff or user.is_admin,
        is_admin=user.is_admin,
        observer_id=user.observer_id,
        group_ids=frozenset(group_ids or ()),
        group_names=frozenset(group_names or ()),
        auth_method=auth_method,
    )


def get_user(conn: psycopg2.extensions.connection, *, login: str | None = None,
             user_id: int | None = None) -> User | None:
    """One account by login (case-insensitive) or id, active or not."""
    if (login is None) == (user_id is None):
        raise TypeError("give exactly one of login and user_id")
    with conn, conn.cursor() as cur:
        if login is not None:
            cur.execute(f"SELECT {_USER_COLUMNS} FROM auth.users WHERE lower(login) = lower(%s)",
                        (login,))
        else:
            cur.execute(f"SELECT {_USER_COLUMNS} FROM auth.users WHERE user_id = %s", (user_id,))
        row = cur.fetchone()
    return None if row is None else _user(row)


def list_users(conn: psycopg2.extensions.connection, *, include_inactive: bool = True
               ) -> list[User]:
    with conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT {_USER_COLUMNS} FROM auth.users"
            " WHERE %s OR is_active ORDER BY lower(login)",
            (include_inactive,),
        )
        return [_user(row) for row in cur.fetchall()]


def add_user(
    conn: psycopg2.extensions.connection,
    login: str,
    password: str | None,
    *,
    first_name: str = "",
    last_name: str = "",
    is_staff: bool = False,
    is_admin: bool = False,
    actor: Principal | None = None,
) -> User:
    """Create a local account (staff, admin, or a guest); the login is its email.

    ``password=None`` makes an account that can only use tokens.
    """
    login = login.strip()
    if login_problem(login) or any(c.isspace() for c in login) or ":" in login:
        raise UserError(f"invalid login {login!r}: an email address without spaces or ':', "
                        f"at most {MAX_LOGIN_CHARS} characters")
    problem = None if password is None else _new_password_problem(password)
    if problem:
        raise UserError(problem)
    password_hash = None if password is None else hash_password(password)
    with conn, conn.cursor() as cur:
        try:
            cur.execute(
                "INSERT INTO auth.users (login, email, first_name, last_name, password_hash,"
                " is_staff, is_admin, is_local) VALUES (%s, %s, %s, %s, %s, %s, %s, true)"
                f" RETURNING {_USER_COLUMNS}",
                (login, login, first_name, last_name, password_hash, is_staff or is_admin,
                 is_admin),
            )
        except psycopg2.errors.UniqueViolation as exc:
            raise UserError(f"an account with login {login!r} exists already") from exc
        row = cur.fetchone()
        assert row is not None
        _audit(cur, audit.USER_ADDED, actor, login,
               {"staff": is_staff or is_admin, "admin": is_admin})
    return _user(row)


def _audit(cur: psycopg2.extensions.cursor, event: str, actor: Principal | None, target: str,
           details: dict[str, object] | None = None) -> None:
    audit.record(
        cur, event,
        actor_user_id=None if actor is None else actor.user_id,
        actor_login="" if actor is None else actor.login,
        target=target, details=dict(details or {}),
    )


def set_password(conn: psycopg2.extensions.connection, login: str, password: str, *,
                 actor: Principal | None = None) -> None:
    """New argon2 hash for a local account (synced observers change theirs upstream)."""
    problem = _new_password_problem(password)
    if problem:
        raise UserError(problem)
    with conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE auth.users SET password_hash = %s, updated_at = now()"
            " WHERE lower(login) = lower(%s) AND is_local RETURNING login",
            (hash_password(password), login),
        )
        if cur.fetchone() is None:
            raise UserError(f"no local account {login!r} (observers change their password "
                            "in the scheduling system)")
        _audit(cur, audit.PASSWORD_CHANGED, actor, login)


def set_active(conn: psycopg2.extensions.connection, login: str, active: bool, *,
               actor: Principal | None = None) -> User:
    """Disable or re-enable an account; a disabled account loses all access at once."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE auth.users SET is_active = %s, disabled_reason = %s, updated_at = now()"
            f" WHERE lower(login) = lower(%s) RETURNING {_USER_COLUMNS}",
            (active, None if active else "staff", login),
        )
        row = cur.fetchone()
        if row is None:
            raise UserError(f"no account {login!r}")
        if not active:  # web sessions end now, not when re-enabled
            cur.execute("DELETE FROM auth.sessions WHERE user_id = %s", (row[0],))
        _audit(cur, audit.USER_ENABLED if active else audit.USER_DISABLED, actor, login)
    return _user(row)


def disable_user(conn: psycopg2.extensions.connection, login: str, *,
                 actor: Principal | None = None) -> User:
    return set_active(conn, login, False, actor=actor)


def principal_for(conn: psycopg2.extensions.connection, user_id: int, *,
                  auth_method: str = "none") -> Principal | None:
    """The principal of an active account (with its groups), or None."""
    row = db.run_one(conn, f"SELECT {principal_columns('u')} FROM auth.users AS u"
                           " WHERE u.user_id = %s AND u.is_active", (user_id,))
    return None if row is None else principal_from_row(row, auth_method)


# --- groups -------------------------------------------------------------------------


def create_group(conn: psycopg2.extensions.connection, name: str, description: str = "", *,
                 actor: Principal | None = None) -> int:
    with conn, conn.cursor() as cur:
        try:
            cur.execute(
                "INSERT INTO auth.groups (name, description) VALUES (%s, %s) RETURNING group_id",
                (name, description),
            )
        except psycopg2.errors.UniqueViolation as exc:
            raise UserError(f"a group named {name!r} exists already") from exc
        row = cur.fetchone()
        assert row is not None
        _audit(cur, audit.GROUP_CHANGED, actor, name, {"action": "created"})
        return int(row[0])


def set_membership(conn: psycopg2.extensions.connection, group: str, login: str,
                   member: bool, *, actor: Principal | None = None) -> None:
    """Add ``login`` to ``group`` (``member=True``) or remove it."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT group_id FROM auth.groups WHERE name = %s", (group,))
        g = cur.fetchone()
        cur.execute("SELECT user_id FROM auth.users WHERE lower(login) = lower(%s)", (login,))
        u = cur.fetchone()
        if g is None or u is None:
            raise UserError(f"no group {group!r}" if g is None else f"no account {login!r}")
        if member:
            cur.execute("INSERT INTO auth.group_members VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        (g[0], u[0]))
        else:
            cur.execute("DELETE FROM auth.group_members WHERE group_id = %s AND user_id = %s",
                        (g[0], u[0]))
        _audit(cur, audit.GROUP_CHANGED, actor, group,
               {"action": "added" if member else "removed", "login": login})


def list_groups(conn: psycopg2.extensions.connection) -> list[Group]:
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT g.group_id, g.name, g.description,"
            "       coalesce(array_agg(u.login ORDER BY u.login)"
            "                FILTER (WHERE u.login IS NOT NULL), '{}')"
            " FROM auth.groups AS g"
            " LEFT JOIN auth.group_members AS m USING (group_id)"
            " LEFT JOIN auth.users AS u USING (user_id)"
            " GROUP BY g.group_id ORDER BY g.name"
        )
        return [Group(r[0], r[1], r[2], tuple(r[3])) for r in cur.fetchall()]


# --- sync from the scheduling database ---------------------------------------------


@dataclass(frozen=True)
class ScheduleObserver:
    """One row of the configured schedule query."""

    obid: int
    first_name: str
    last_name: str
    email: str
    password_hash: str | None


def read_schedule_observers(schedule_dsn: str, query: str) -> list[ScheduleObserver]:
    """Run the configured query (obid, first_name, last_name, email, password_hash)."""
    try:
        conn = psycopg2.connect(schedule_dsn)
    except psycopg2.Error as exc:
        raise SyncError(f"cannot connect to the scheduling database: {exc}") from exc
    try:
        conn.set_session(readonly=True)
        with conn, conn.cursor() as cur:
            cur.execute(query)
            if cur.description is None or len(cur.description) < 5:
                raise SyncError("the schedule query must return obid, first_name, last_name, "
                                "email, password_hash")
            rows = cur.fetchall()
    except psycopg2.Error as exc:
        raise SyncError(f"the schedule query failed: {exc}") from exc
    finally:
        conn.close()
    return [
        ScheduleObserver(int(r[0]), (r[1] or "").strip(), (r[2] or "").strip(),
                         (r[3] or "").strip(), r[4] or None)
        for r in rows
    ]


def sync_users(
    conn: psycopg2.extensions.connection,
    schedule_dsn: str,
    query: str,
    *,
    allow_empty: bool = False,
) -> SyncReport:
    """Copy observers from the scheduling database; disable those gone from it.

    One transaction: either the whole schedule is applied or nothing is.  An empty
    answer is refused unless ``allow_empty`` (a broken query must not disable every
    observer).  Observers without an email cannot log in and are skipped; two
    observers sharing an email keep the login for the lower obid.
    """
    observers = read_schedule_observers(schedule_dsn, query)
    if not observers and not allow_empty:
        raise SyncError("the schedule query returned no observers; refusing to disable "
                        "every synced account (pass allow_empty to force it)")
    return apply_schedule(conn, observers)


class _Account(NamedTuple):
    """The columns of an existing account the sync compares against."""

    user_id: int
    observer_id: int | None
    login_key: str
    first_name: str
    last_name: str
    email: str
    password_hash: str | None
    is_active: bool
    disabled_reason: str | None
    is_local: bool


def apply_schedule(conn: psycopg2.extensions.connection,
                   observers: Sequence[ScheduleObserver]) -> SyncReport:
    """The write half of :func:`sync_users`, for observers already read."""
    report = SyncReport(seen=len(observers))
    by_login: dict[str, ScheduleObserver] = {}
    for obs in sorted(observers, key=lambda o: o.obid):
        if not obs.email:
            report.conflicts.append(f"obid {obs.obid}: no email, cannot log in; skipped")
            continue
        key = obs.email.lower()
        if key in by_login:
            report.conflicts.append(
                f"obid {obs.obid}: email {obs.email} already used by obid "
                f"{by_login[key].obid}; skipped")
            continue
        by_login[key] = obs
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", _SYNC_LOCK)
        cur.execute(
            "SELECT user_id, observer_id, lower(login), first_name, last_name, email,"
            " password_hash, is_active, disabled_reason, is_local FROM auth.users"
        )
        existing = [_Account(*row) for row in cur.fetchall()]
        synced = {a.observer_id: a for a in existing
                  if a.observer_id is not None and not a.is_local}
        login_holder = {a.login_key: a for a in existing}
        wanted = {obs.obid for obs in by_login.values()}
        for key, obs in by_login.items():
            holder = login_holder.get(key)
            if holder is not None and (holder.is_local or holder.observer_id != obs.obid):
                report.conflicts.append(
                    f"obid {obs.obid}: login {obs.email} belongs to another account; skipped")
                wanted.discard(obs.obid)
                continue
            current = synced.get(obs.obid)
            if current is None:
                cur.execute(
                    "INSERT INTO auth.users (observer_id, login, email, first_name, last_name,"
                    " password_hash, is_local, synced_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, false, now())",
                    (obs.obid, obs.email, obs.email, obs.first_name, obs.last_name,
                     obs.password_hash),
                )
                report.added.append(obs.email)
                continue
            # Only accounts the sync itself disabled come back; staff decisions stand.
            reenable = not current.is_active and current.disabled_reason == "sync"
            same = (current.email, current.first_name, current.last_name,
                    current.password_hash) == (obs.email, obs.first_name, obs.last_name,
                                               obs.password_hash)
            if same and not reenable:
                cur.execute("UPDATE auth.users SET synced_at = now() WHERE user_id = %s",
                            (current.user_id,))
                report.unchanged += 1
                continue
            cur.execute(
                "UPDATE auth.users SET login = %s, first_name = %s, last_name = %s, email = %s,"
                " password_hash = %s, synced_at = now(), updated_at = now(),"
                " is_active = CASE WHEN disabled_reason = 'sync' THEN true ELSE is_active END,"
                " disabled_reason = CASE WHEN disabled_reason = 'sync' THEN NULL"
                "                        ELSE disabled_reason END"
                " WHERE user_id = %s",
                (obs.email, obs.first_name, obs.last_name, obs.email, obs.password_hash,
                 current.user_id),
            )
            (report.reenabled if reenable else report.updated).append(obs.email)
        for obid, account in synced.items():
            if obid not in wanted and account.is_active:
                cur.execute(
                    "UPDATE auth.users SET is_active = false, disabled_reason = 'sync',"
                    " updated_at = now() WHERE user_id = %s",
                    (account.user_id,),
                )
                cur.execute("DELETE FROM auth.sessions WHERE user_id = %s", (account.user_id,))
                report.disabled.append(account.email or account.login_key)
        audit.record(cur, audit.USERS_SYNCED, details={
            "seen": report.seen, "added": len(report.added), "updated": len(report.updated),
            "disabled": report.disabled, "reenabled": report.reenabled,
            "conflicts": len(report.conflicts),
        })
    return report

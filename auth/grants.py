"""Override grants: staff open proprietary data to a user or a group before release.

A grant names one grantee (user or group) and one target: a dataset (its publisher
DID), a night (optionally one instrument directory) or a program (the PROGRAM card).
It may expire; revoking keeps the row for the record.  PostgreSQL applies live grants
itself (``auth.requester_granted_dids()`` in the row-level policies), so a grant takes
effect with the next query and lapses at its expiry without any job running.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import psycopg2.extensions

from auth import audit
from auth.principals import Principal


class GrantError(ValueError):
    """A grant that cannot be made as asked; the message says what to fix."""


@dataclass(frozen=True)
class Grant:
    grant_id: int
    user_id: int | None
    user_login: str | None
    group_id: int | None
    group_name: str | None
    did: str | None
    night: date | None
    instrument_dir: str | None
    program: str | None
    expires_at: datetime | None
    granted_by: int | None
    granted_at: datetime
    revoked_at: datetime | None
    note: str

    @property
    def grantee(self) -> str:
        return f"user {self.user_login}" if self.user_id is not None else f"group {self.group_name}"

    @property
    def target(self) -> str:
        if self.did is not None:
            return f"dataset {self.did}"
        if self.night is not None:
            where = f" {self.instrument_dir}" if self.instrument_dir else ""
            return f"night {self.night.isoformat()}{where}"
        return f"program {self.program}"


_SELECT = (
    "SELECT g.grant_id, g.user_id, u.login, g.group_id, gr.name, g.did, g.night,"
    " g.instrument_dir, g.program, g.expires_at, g.granted_by, g.granted_at, g.revoked_at,"
    " g.note FROM auth.grants AS g"
    " LEFT JOIN auth.users AS u ON u.user_id = g.user_id"
    " LEFT JOIN auth.groups AS gr ON gr.group_id = g.group_id"
)


def create_grant(
    conn: psycopg2.extensions.connection,
    *,
    user_login: str | None = None,
    group_name: str | None = None,
    did: str | None = None,
    night: date | None = None,
    instrument_dir: str | None = None,
    program: str | None = None,
    expires_at: datetime | None = None,
    granted_by: Principal | None = None,
    note: str = "",
) -> Grant:
    """Open a dataset, night or program to a user or group; audited."""
    if (user_login is None) == (group_name is None):
        raise GrantError("name exactly one grantee: a user login or a group name")
    if sum(x is not None for x in (did, night, program)) != 1:
        raise GrantError("name exactly one target: a dataset DID, a night or a program")
    if instrument_dir is not None and night is None:
        raise GrantError("an instrument directory narrows a night grant; give the night too")
    if expires_at is not None and expires_at.tzinfo is None:
        raise GrantError("the expiry needs a time zone")
    with conn, conn.cursor() as cur:
        user_id = group_id = None
        if user_login is not None:
            cur.execute("SELECT user_id FROM auth.users WHERE lower(login) = lower(%s)",
                        (user_login,))
            row = cur.fetchone()
            if row is None:
                raise GrantError(f"no account {user_login!r}")
            user_id = row[0]
        else:
            cur.execute("SELECT group_id FROM auth.groups WHERE name = %s", (group_name,))
            row = cur.fetchone()
            if row is None:
                raise GrantError(f"no group {group_name!r}")
            group_id = row[0]
        cur.execute(
            "INSERT INTO auth.grants (user_id, group_id, did, night, instrument_dir, program,"
            " expires_at, granted_by, note) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING grant_id",
            (user_id, group_id, did, night, instrument_dir, program, expires_at,
             None if granted_by is None else granted_by.user_id, note),
        )
        row = cur.fetchone()
        assert row is not None
        cur.execute(_SELECT + " WHERE g.grant_id = %s", (row[0],))
        grant = Grant(*cur.fetchone())  # type: ignore[misc]
        audit.record(
            cur, audit.GRANT_CREATED,
            actor_user_id=None if granted_by is None else granted_by.user_id,
            actor_login="" if granted_by is None else granted_by.login,
            target=f"{grant.grantee} → {grant.target}",
            details={"grant_id": grant.grant_id, "expires_at": expires_at, "note": note},
        )
    return grant


def revoke_grant(conn: psycopg2.extensions.connection, grant_id: int, *,
                 revoked_by: Principal | None = None) -> bool:
    """End a live grant now; False when there is no live grant with that id."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE auth.grants SET revoked_at = now(), revoked_by = %s"
            " WHERE grant_id = %s AND revoked_at IS NULL RETURNING grant_id",
            (None if revoked_by is None else revoked_by.user_id, grant_id),
        )
        if cur.fetchone() is None:
            return False
        cur.execute(_SELECT + " WHERE g.grant_id = %s", (grant_id,))
        grant = Grant(*cur.fetchone())  # type: ignore[misc]
        audit.record(
            cur, audit.GRANT_REVOKED,
            actor_user_id=None if revoked_by is None else revoked_by.user_id,
            actor_login="" if revoked_by is None else revoked_by.login,
            target=f"{grant.grantee} → {grant.target}", details={"grant_id": grant_id},
        )
    return True


def list_grants(conn: psycopg2.extensions.connection, *, live_only: bool = True,
                user_login: str | None = None) -> list[Grant]:
    """Grants, newest first; ``live_only`` hides revoked and expired ones.

    ``user_login`` keeps the grants that reach this user, directly or by a group.
    """
    with conn, conn.cursor() as cur:
        cur.execute(
            _SELECT
            + " WHERE (NOT %(live)s OR (g.revoked_at IS NULL"
              "        AND (g.expires_at IS NULL OR g.expires_at > now())))"
              "   AND (%(login)s::text IS NULL"
              "        OR lower(u.login) = lower(%(login)s)"
              "        OR g.group_id IN (SELECT m.group_id FROM auth.group_members AS m"
              "             JOIN auth.users AS mu USING (user_id)"
              "             WHERE lower(mu.login) = lower(%(login)s)))"
              " ORDER BY g.granted_at DESC, g.grant_id DESC",
            {"live": live_only, "login": user_login},
        )
        return [Grant(*row) for row in cur.fetchall()]

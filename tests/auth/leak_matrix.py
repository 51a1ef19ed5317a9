"""The leak matrix: a dataset, its principals and, per principal, exactly what it may see.

Reusable by every path that shows data (TAP, SIA, DataLink, downloads...): call
:func:`install` with an owner DSN, then for each name in :data:`EXPECTED` check that the
path, used as ``dataset.principals[name]`` (credentials in ``dataset.passwords`` and
``dataset.tokens``), shows exactly ``dataset.did(n) for n in EXPECTED[name]`` among
the DIDs starting with :data:`DID_PREFIX`, and nothing of the others.

The expectations are written out by hand from the rules (MISSION §1), not computed
by the code under test.  Release dates are placed relative to the current observing
night (noon to noon PST), computed here independently of ``auth``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import psycopg2
import psycopg2.extensions
from passlib.hash import apr_md5_crypt

from auth import grants, tokens, users
from auth.principals import ANONYMOUS, Principal

DID_PREFIX = "ivo://lick.test/leak?"
NIGHT = date(2024, 3, 5)
OTHER_NIGHT = date(2024, 3, 6)


def current_night() -> date:
    """Independent of auth: local (PST, UTC-8) date, shifted back to the night's noon."""
    pst = datetime.now(UTC) - timedelta(hours=8)
    return (pst - timedelta(hours=12)).date()


@dataclass(frozen=True)
class Row:
    name: str
    release: str  # 'past' | 'today' | 'tomorrow' | 'future' | 'unknown'
    owners: tuple[int, ...]
    night: date = NIGHT
    instrument_dir: str = "shane"
    program: str = "2024A_S001"

    def release_date(self) -> datetime | None:
        today = current_night()
        return {
            "past": datetime(2001, 1, 1),
            "today": datetime(today.year, today.month, today.day),
            "tomorrow": datetime(today.year, today.month, today.day) + timedelta(days=1),
            "future": datetime(today.year, today.month, today.day) + timedelta(days=400),
            "unknown": None,
        }[self.release]


# Observer ids (obid in the schedule): alice 101, bob 102, carol 104; 103 owns the
# rows that only grants open.
ROWS = (
    Row("public_old", "past", (101,)),
    Row("public_today", "today", (102,)),
    Row("alice_only", "future", (101,)),
    Row("bob_only", "future", (102,)),
    Row("alice_and_bob", "future", (101, 102)),
    Row("bob_tomorrow", "tomorrow", (102,)),
    Row("undated_alice", "unknown", (101,)),
    Row("undated_nobody", "unknown", ()),
    Row("granted_file", "future", (103,)),
    Row("granted_night_shane", "future", (103,), night=OTHER_NIGHT),
    Row("night_other_instrument", "future", (103,), night=OTHER_NIGHT, instrument_dir="AO"),
    Row("granted_program", "future", (103,), program="2024B_X42"),
    Row("expired_grant", "future", (103,)),
    Row("revoked_grant", "future", (103,)),
)
ALL = frozenset(r.name for r in ROWS)
PUBLIC = frozenset({"public_old", "public_today"})

# principal name -> the rows it may see.
EXPECTED: dict[str, frozenset[str]] = {
    "anonymous": PUBLIC,
    "alice": PUBLIC | {"alice_only", "alice_and_bob"},
    "bob": PUBLIC | {"bob_only", "alice_and_bob", "bob_tomorrow"},
    "carol": PUBLIC | {"granted_file"},
    "dave": PUBLIC | {"granted_night_shane"},
    "erin": PUBLIC | {"granted_program"},
    "staff": ALL,
    "admin": ALL,
    "staff_disabled": PUBLIC,
}
# Accounts disabled after their principal and token were made: a stale principal sees
# only public rows in the database, and over HTTP their password and token must be
# refused (401), not silently downgraded to anonymous.
REFUSED_OVER_HTTP = frozenset({"staff_disabled"})
PASSWORD = "leak-matrix-password"


@dataclass
class LeakDataset:
    principals: dict[str, Principal] = field(default_factory=dict)
    passwords: dict[str, tuple[str, str]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def did(name: str) -> str:
        return f"{DID_PREFIX}{name}"

    def visible_dids(self, principal: str) -> frozenset[str]:
        return frozenset(self.did(n) for n in EXPECTED[principal])


def insert_rows(cur: psycopg2.extensions.cursor, rows: tuple[Row, ...] = ROWS) -> None:
    for row in rows:
        did = LeakDataset.did(row.name)
        release = row.release_date()
        path = f"{row.night:%Y-%m/%d}/{row.instrument_dir}/{row.name}.fits"
        cur.execute(
            "INSERT INTO ivoa.obscore (calib_level, obs_collection, obs_id, obs_publisher_did,"
            " obs_release_date, owner_ids, target_name, s_ra, s_dec, s_fov, s_region,"
            " data_rights) VALUES (1, 'Lick/test', %s, %s, %s, %s, %s, 10.0, 20.0, 0.2,"
            " spoly '{(9.95d,19.95d),(10.05d,19.95d),(10.05d,20.05d),(9.95d,20.05d)}',"
            " 'proprietary')",
            (path, did, release, list(row.owners), row.name),
        )
        cur.execute(
            "INSERT INTO lick.files (obs_publisher_did, path, filename, night, instrument_dir,"
            " program, release_date, owner_ids, object, header)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (did, path, f"{row.name}.fits", row.night, row.instrument_dir, row.program,
             release, list(row.owners), row.name, f"OBJECT  = '{row.name}'"),
        )


def install(owner_dsn: str) -> LeakDataset:
    """Insert the rows, accounts, group and grants; returns principals and credentials."""
    conn = psycopg2.connect(owner_dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM ivoa.obscore WHERE obs_publisher_did LIKE %s",
                        (DID_PREFIX + "%",))
            insert_rows(cur)
            cur.execute("DELETE FROM auth.users WHERE login LIKE '%%@leak.test'")
            cur.execute("DELETE FROM auth.groups WHERE name = 'leak-team'")
        apr1 = apr_md5_crypt.hash(PASSWORD)
        observers = [
            users.ScheduleObserver(101, "Alice", "Owner", "alice@leak.test", apr1),
            users.ScheduleObserver(102, "Bob", "Owner", "bob@leak.test", apr1),
            users.ScheduleObserver(104, "Carol", "Grantee", "carol@leak.test", apr1),
        ]
        users.apply_schedule(conn, observers)
        users.add_user(conn, "dave@leak.test", PASSWORD)
        users.add_user(conn, "erin@leak.test", PASSWORD)
        users.add_user(conn, "staff@leak.test", PASSWORD, is_staff=True)
        users.add_user(conn, "admin@leak.test", PASSWORD, is_admin=True)
        # Disabled below, after its principal and token exist: staff rights must lapse.
        users.add_user(conn, "staff_disabled@leak.test", PASSWORD, is_staff=True)
        users.create_group(conn, "leak-team")
        users.set_membership(conn, "leak-team", "dave@leak.test", True)
        staff = users.principal_for(conn, _uid(conn, "staff@leak.test"))
        grants.create_grant(conn, user_login="carol@leak.test",
                            did=LeakDataset.did("granted_file"), granted_by=staff)
        grants.create_grant(conn, group_name="leak-team", night=OTHER_NIGHT,
                            instrument_dir="shane", granted_by=staff)
        grants.create_grant(conn, user_login="erin@leak.test", program="2024B_X42",
                            granted_by=staff)
        grants.create_grant(conn, user_login="carol@leak.test",
                            did=LeakDataset.did("expired_grant"), granted_by=staff,
                            expires_at=datetime.now(UTC) - timedelta(minutes=1))
        revoked = grants.create_grant(conn, user_login="carol@leak.test",
                                      did=LeakDataset.did("revoked_grant"), granted_by=staff,
                                      expires_at=datetime.now(UTC) + timedelta(days=30))
        grants.revoke_grant(conn, revoked.grant_id, revoked_by=staff)
        dataset = LeakDataset()
        dataset.principals["anonymous"] = ANONYMOUS
        for name in EXPECTED:
            if name == "anonymous":
                continue
            login = f"{name}@leak.test"
            principal = users.principal_for(conn, _uid(conn, login))
            assert principal is not None
            dataset.principals[name] = principal
            dataset.passwords[name] = (login, PASSWORD)
            dataset.tokens[name], _ = tokens.create_token(conn, _uid(conn, login),
                                                          label="leak matrix")
        users.disable_user(conn, "staff_disabled@leak.test")
        return dataset
    finally:
        conn.close()


def _uid(conn: psycopg2.extensions.connection, login: str) -> int:
    user = users.get_user(conn, login=login)
    assert user is not None, login
    return user.user_id

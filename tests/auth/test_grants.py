"""Override grants: validation, audit, and their effect in PostgreSQL, expiry included."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg2
import pytest

from auth import audit, grants, users
from auth.identity import begin_query_transaction, load_secret
from auth.principals import Principal
from tests.auth.leak_matrix import Row, insert_rows


@pytest.fixture
def world(owner):
    """Three proprietary files of observer 900 and a reader with no rights of its own."""
    with owner, owner.cursor() as cur:
        insert_rows(cur, (
            Row("g_file", "future", (900,)),
            Row("g_night", "future", (900,), night=date(2023, 5, 1), instrument_dir="AO"),
            Row("g_program", "future", (900,), program="2023A_P7"),
        ))
    reader = users.add_user(owner, "reader@example.org", "reader-password")
    staff = users.add_user(owner, "boss@example.org", "boss-password", is_staff=True)
    staff_principal = users.principal_for(owner, staff.user_id)
    reader_principal = users.principal_for(owner, reader.user_id)
    assert staff_principal is not None and reader_principal is not None
    return reader_principal, staff_principal


def seen(auth_db, owner, principal: Principal) -> set[str]:
    with owner, owner.cursor() as cur:
        secret = load_secret(cur)
    conn = psycopg2.connect(auth_db.query_dsn)
    try:
        with conn.cursor() as cur:
            begin_query_transaction(cur, principal, secret)
            cur.execute("SELECT target_name FROM ivoa.obscore")
            names = {r[0] for r in cur.fetchall()}
            cur.execute("SELECT object FROM lick.files")
            assert {r[0] for r in cur.fetchall()} == names
        return names
    finally:
        conn.close()


def test_validation(owner, world) -> None:
    _, staff = world
    with pytest.raises(grants.GrantError):
        grants.create_grant(owner, did="x", granted_by=staff)
    with pytest.raises(grants.GrantError):
        grants.create_grant(owner, user_login="reader@example.org", group_name="g", did="x")
    with pytest.raises(grants.GrantError):
        grants.create_grant(owner, user_login="reader@example.org", did="x", program="p")
    with pytest.raises(grants.GrantError):
        grants.create_grant(owner, user_login="reader@example.org", program="p",
                            instrument_dir="AO")
    with pytest.raises(grants.GrantError):
        grants.create_grant(owner, user_login="nobody@example.org", did="x")
    with pytest.raises(grants.GrantError):
        grants.create_grant(owner, user_login="reader@example.org", did="x",
                            expires_at=datetime(2030, 1, 1))


def test_each_kind_of_grant_opens_exactly_its_target(auth_db, owner, world) -> None:
    reader, staff = world
    assert seen(auth_db, owner, reader) == set()
    grants.create_grant(owner, user_login=reader.login,
                        did="ivo://lick.test/leak?g_file", granted_by=staff, note="referee")
    assert seen(auth_db, owner, reader) == {"g_file"}
    grants.create_grant(owner, user_login=reader.login, night=date(2023, 5, 1),
                        instrument_dir="shane", granted_by=staff)
    assert seen(auth_db, owner, reader) == {"g_file"}, "another instrument that night"
    grants.create_grant(owner, user_login=reader.login, night=date(2023, 5, 1),
                        granted_by=staff)
    assert seen(auth_db, owner, reader) == {"g_file", "g_night"}
    users.create_group(owner, "p7-team")
    grants.create_grant(owner, group_name="p7-team", program="2023A_P7", granted_by=staff)
    assert seen(auth_db, owner, reader) == {"g_file", "g_night"}
    users.set_membership(owner, "p7-team", reader.login, True)
    assert seen(auth_db, owner, reader) == {"g_file", "g_night", "g_program"}
    listed = grants.list_grants(owner, user_login=reader.login)
    assert {g.target for g in listed} == {
        "dataset ivo://lick.test/leak?g_file", "night 2023-05-01 shane", "night 2023-05-01",
        "program 2023A_P7"}
    created = [e for e in audit.list_events(owner, event=audit.GRANT_CREATED)]
    assert len(created) == 4
    assert all(e.actor_login == "boss@example.org" for e in created)


def test_expiry_and_revocation(auth_db, owner, world) -> None:
    reader, staff = world
    soon = grants.create_grant(owner, user_login=reader.login,
                               did="ivo://lick.test/leak?g_file", granted_by=staff,
                               expires_at=datetime.now(UTC) + timedelta(hours=1))
    assert seen(auth_db, owner, reader) == {"g_file"}
    with owner, owner.cursor() as cur:
        cur.execute("UPDATE auth.grants SET expires_at = now() - interval '1 second'"
                    " WHERE grant_id = %s", (soon.grant_id,))
    assert seen(auth_db, owner, reader) == set(), "expired without any job running"
    assert grants.list_grants(owner) == []
    assert len(grants.list_grants(owner, live_only=False)) == 1

    lasting = grants.create_grant(owner, user_login=reader.login, program="2023A_P7",
                                  granted_by=staff)
    assert seen(auth_db, owner, reader) == {"g_program"}
    assert grants.revoke_grant(owner, lasting.grant_id, revoked_by=staff)
    assert not grants.revoke_grant(owner, lasting.grant_id, revoked_by=staff)
    assert seen(auth_db, owner, reader) == set()
    revoked = audit.list_events(owner, event=audit.GRANT_REVOKED)
    assert [e.details["grant_id"] for e in revoked] == [lasting.grant_id]


def test_download_audit(owner, world) -> None:
    reader, _ = world
    audit.record_download(owner, user_id=reader.user_id, login=reader.login,
                          did="ivo://lick.test/leak?g_file", address="10.2.0.1")
    [event] = audit.list_events(owner, event=audit.DOWNLOAD)
    assert (event.actor_user_id, event.target, event.address) == (
        reader.user_id, "ivo://lick.test/leak?g_file", "10.2.0.1")

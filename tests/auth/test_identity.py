"""The query role cannot change who it is: forging, replaying, reading the key, escaping.

Each attack runs arbitrary SQL as the query role (what a user could do if ADQL
translation ever let SQL through) and must end as anonymous, or fail.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, date, datetime

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import pytest

from auth.identity import (
    IdentityError,
    assertion_mac,
    begin_query_transaction,
    is_public,
    load_secret,
    observing_night,
    prepare_query_transaction,
    rejection_error,
    rotate_secret,
)
from auth.principals import ANONYMOUS
from tests.auth import leak_matrix
from tests.auth.conftest import empty_tables
from tests.auth.leak_matrix import LeakDataset


@pytest.fixture(scope="module")
def dataset(auth_db) -> LeakDataset:
    empty_tables(auth_db.owner_dsn)
    return leak_matrix.install(auth_db.owner_dsn)


@pytest.fixture(scope="module")
def secret(auth_db, dataset) -> bytes:
    conn = psycopg2.connect(auth_db.owner_dsn)
    with conn, conn.cursor() as cur:
        value = load_secret(cur)
    conn.close()
    return value


@pytest.fixture
def q(auth_db) -> Iterator[psycopg2.extensions.connection]:
    conn = psycopg2.connect(auth_db.query_dsn)
    yield conn
    conn.close()


def visible(cur: psycopg2.extensions.cursor) -> frozenset[str]:
    cur.execute("SELECT obs_publisher_did FROM ivoa.obscore")
    return frozenset(r[0] for r in cur.fetchall())


def one(cur: psycopg2.extensions.cursor) -> tuple:
    row = cur.fetchone()
    assert row is not None
    return tuple(row)


def staff_id(dataset: LeakDataset) -> int:
    uid = dataset.principals["staff"].user_id
    assert uid is not None
    return uid


def test_night_rule_pst_noon_is_2000_utc() -> None:
    """Independent values: 19:59 UTC is still the previous night, 20:00 starts a new one."""
    assert observing_night(datetime(2024, 3, 1, 19, 59, tzinfo=UTC)) == date(2024, 2, 29)
    assert observing_night(datetime(2024, 3, 1, 20, 0, tzinfo=UTC)) == date(2024, 3, 1)
    assert observing_night(datetime(2024, 3, 2, 7, 0, tzinfo=UTC)) == date(2024, 3, 1)
    with pytest.raises(ValueError):
        observing_night(datetime(2024, 3, 1))


def test_is_public_mirrors_the_policy_boundary() -> None:
    at = datetime(2024, 3, 2, 3, 0, tzinfo=UTC)  # night of 2024-03-01
    assert is_public(datetime(2024, 3, 1, 23, 59), at)
    assert not is_public(datetime(2024, 3, 2, 0, 0), at)
    assert not is_public(None, at)
    assert is_public(datetime(2024, 3, 2), datetime(2024, 3, 2, 20, 0, tzinfo=UTC))


def test_database_night_matches(q) -> None:
    with q.cursor() as cur:
        cur.execute("SELECT auth.current_night(), now()")
        row = cur.fetchone()
        assert row is not None
        night, now = row
    q.rollback()
    assert night == observing_night(now)


def test_mac_is_hmac_sha256_of_claim_pid_stamp(q, secret) -> None:
    """The Python side and the database agree on the message (checked via assume)."""
    expected = hmac.new(secret, b"7:1234:99", hashlib.sha256).hexdigest()
    assert assertion_mac(secret, 7, 1234, "99") == expected
    assert assertion_mac(secret, None, 1, "2") == hmac.new(
        secret, b"anonymous:1:2", hashlib.sha256).hexdigest()


def test_set_config_alone_does_not_impersonate(q, dataset) -> None:
    with q.cursor() as cur:
        cur.execute("SELECT set_config('lick_auth.user_id', %s, false)", (str(staff_id(dataset)),))
        cur.execute("SELECT set_config('lick_auth.mac', repeat('0', 64), false)")
        assert visible(cur) == dataset.visible_dids("anonymous")
        cur.execute("SELECT auth.requester_user_id(), auth.requester_is_staff()")
        assert cur.fetchone() == (None, False)
    q.rollback()


def test_changing_the_claim_after_a_valid_assume_fails(q, dataset, secret) -> None:
    with q.cursor() as cur:
        begin_query_transaction(cur, dataset.principals["alice"], secret)
        assert visible(cur) == dataset.visible_dids("alice")
        cur.execute("SELECT set_config('lick_auth.user_id', %s, true)", (str(staff_id(dataset)),))
        assert visible(cur) == dataset.visible_dids("anonymous")
    q.rollback()


def test_replay_in_a_later_transaction_fails(q, dataset, secret) -> None:
    with q.cursor() as cur:
        begin_query_transaction(cur, dataset.principals["staff"], secret)
        cur.execute("SELECT current_setting('lick_auth.user_id'), current_setting('lick_auth.mac')")
        claim, mac = one(cur)
    q.commit()
    with q.cursor() as cur:
        cur.execute("SELECT set_config('lick_auth.user_id', %s, true),"
                    " set_config('lick_auth.mac', %s, true)", (claim, mac))
        assert visible(cur) == dataset.visible_dids("anonymous")
        with pytest.raises(psycopg2.errors.InvalidAuthorizationSpecification):
            cur.execute("SELECT auth.assume(%s, %s)", (int(claim), mac))
    q.rollback()


def test_replay_on_another_backend_at_the_same_time_fails(auth_db, q, dataset, secret) -> None:
    """A staff transaction is open on one connection; another copies its assertion."""
    victim = psycopg2.connect(auth_db.query_dsn)
    try:
        with victim.cursor() as vcur:
            begin_query_transaction(vcur, dataset.principals["staff"], secret)
            vcur.execute("SELECT current_setting('lick_auth.user_id'),"
                         " current_setting('lick_auth.mac')")
            claim, mac = one(vcur)
            assert visible(vcur) == dataset.visible_dids("staff")
            with q.cursor() as cur:
                cur.execute("SELECT set_config('lick_auth.user_id', %s, true),"
                            " set_config('lick_auth.mac', %s, true)", (claim, mac))
                assert visible(cur) == dataset.visible_dids("anonymous")
            q.rollback()
            with q.cursor() as cur, pytest.raises(
                    psycopg2.errors.InvalidAuthorizationSpecification):
                cur.execute("SELECT auth.assume(%s, %s)", (int(claim), mac))
            q.rollback()
    finally:
        victim.close()


@pytest.mark.parametrize("mac", ["", "0" * 64, "not hex", None])
def test_assume_with_a_wrong_mac_is_refused(q, dataset, mac) -> None:
    with q.cursor() as cur, pytest.raises(psycopg2.errors.InvalidAuthorizationSpecification):
        cur.execute("SELECT auth.assume(%s, %s)", (staff_id(dataset), mac))
    q.rollback()


def test_a_mac_made_with_another_key_is_refused(q, dataset) -> None:
    with q.cursor() as cur, pytest.raises(IdentityError):
        begin_query_transaction(cur, dataset.principals["staff"], b"x" * 32)
    q.rollback()


@pytest.mark.parametrize("statement", [
    "SELECT secret FROM auth.identity_secret",
    "SELECT * FROM auth.users",
    "SELECT * FROM auth.tokens",
    "SELECT * FROM auth.grants",
    "SELECT * FROM auth.group_members",
    "SELECT * FROM auth.audit_log",
    "SELECT * FROM auth.login_attempts",
    "SELECT auth._assertion_mac('1')",
    "SELECT auth._mac_matches('1', 'x')",
    "SELECT auth._requester_id()",
])
def test_the_query_role_cannot_read_auth_internals(q, statement) -> None:
    with q.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
        cur.execute(statement)
    q.rollback()


@pytest.mark.parametrize("statement", [
    "SET ROLE lick_owner",
    "SET SESSION AUTHORIZATION lick_owner",
    "SET ROLE postgres",
    "ALTER TABLE ivoa.obscore DISABLE ROW LEVEL SECURITY",
    "DROP POLICY obscore_visible ON ivoa.obscore",
    "CREATE FUNCTION auth.requester_is_staff() RETURNS boolean LANGUAGE sql AS 'SELECT true'",
    "CREATE OR REPLACE FUNCTION auth.public_before() RETURNS timestamp LANGUAGE sql"
    " AS $$SELECT 'infinity'::timestamp$$",
    "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE TABLE public.t (x int)",
    "UPDATE auth.identity_secret SET secret = '\\x00'",
])
def test_the_query_role_cannot_escape(q, statement) -> None:
    with q.cursor() as cur:
        cur.execute("SET TRANSACTION READ WRITE")
        with pytest.raises((psycopg2.errors.InsufficientPrivilege,
                            psycopg2.errors.ReadOnlySqlTransaction)):
            cur.execute(statement)
    q.rollback()


WRITES = [
    "INSERT INTO ivoa.obscore (calib_level, obs_collection, obs_id, obs_publisher_did)"
    " VALUES (1, 'x', 'x', 'x')",
    "UPDATE ivoa.obscore SET obs_release_date = '2000-01-01'",
    "DELETE FROM ivoa.obscore",
    "UPDATE lick.files SET owner_ids = '{1}'",
    "DELETE FROM lick.files",
    "INSERT INTO auth.users (login, is_local, is_staff) VALUES ('x', true, true)",
    "UPDATE auth.users SET is_staff = true",
    "INSERT INTO auth.grants (user_id, program) VALUES (1, 'x')",
    "DELETE FROM tap_schema.columns",
    "TRUNCATE ivoa.obscore",
]


@pytest.mark.parametrize("statement", WRITES)
@pytest.mark.parametrize("mode", ["read_write", "after_begin"])
def test_the_query_role_cannot_write(q, dataset, secret, statement, mode) -> None:
    """Refused by privileges even in a read-write transaction, and by read-only mode."""
    with q.cursor() as cur:
        if mode == "read_write":
            cur.execute("SET TRANSACTION READ WRITE")
            expected: type[Exception] = psycopg2.errors.InsufficientPrivilege
        else:
            begin_query_transaction(cur, dataset.principals["staff"], secret)
            expected = psycopg2.errors.ReadOnlySqlTransaction
        with pytest.raises(expected):
            cur.execute(statement)
    q.rollback()


def test_read_only_cannot_be_undone_after_begin(q, dataset, secret) -> None:
    with q.cursor() as cur:
        begin_query_transaction(cur, dataset.principals["alice"], secret)
        with pytest.raises(psycopg2.errors.ActiveSqlTransaction):
            cur.execute("SET TRANSACTION READ WRITE")
    q.rollback()


def test_reset_and_discard_fall_back_to_anonymous(q, dataset, secret) -> None:
    with q.cursor() as cur:
        begin_query_transaction(cur, dataset.principals["staff"], secret)
        cur.execute("RESET ALL")
        assert visible(cur) == dataset.visible_dids("anonymous")
    q.rollback()


def test_statistics_of_protected_tables_are_hidden(auth_db, q, dataset) -> None:
    owner = psycopg2.connect(auth_db.owner_dsn)
    owner.autocommit = True
    with owner.cursor() as cur:
        cur.execute("ANALYZE ivoa.obscore; ANALYZE lick.files")
    owner.close()
    with q.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stats WHERE schemaname IN ('ivoa', 'lick')")
        assert cur.fetchone() == (0,)
    q.rollback()


def test_binding_ends_with_the_transaction(q, dataset, secret) -> None:
    with q.cursor() as cur:
        begin_query_transaction(cur, dataset.principals["staff"], secret)
        assert visible(cur) == dataset.visible_dids("staff")
    q.commit()
    with q.cursor() as cur:
        assert visible(cur) == dataset.visible_dids("anonymous")
    q.rollback()


def test_autocommit_connections_are_refused(auth_db, dataset, secret) -> None:
    conn = psycopg2.connect(auth_db.query_dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur, pytest.raises(IdentityError):
            begin_query_transaction(cur, ANONYMOUS, secret)
    finally:
        conn.close()


def test_rotating_the_secret_invalidates_the_old_one(auth_db, q, dataset, secret) -> None:
    owner = psycopg2.connect(auth_db.owner_dsn)
    try:
        with owner, owner.cursor() as cur:
            new = rotate_secret(cur)
        assert new != secret
        with q.cursor() as cur, pytest.raises(IdentityError):
            begin_query_transaction(cur, dataset.principals["staff"], secret)
        q.rollback()
        with q.cursor() as cur:
            begin_query_transaction(cur, dataset.principals["staff"], new)
            assert visible(cur) == dataset.visible_dids("staff")
        q.rollback()
    finally:
        with owner, owner.cursor() as cur:
            cur.execute("UPDATE auth.identity_secret SET secret = %s", (secret,))
        owner.close()


@pytest.mark.parametrize("statement", [
    "ALTER ROLE lick_query SET default_transaction_read_only = off",
    "ALTER ROLE lick_query SET lick_auth.user_id = '1'",
    "CREATE TEMP TABLE late (x int)",
    "CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
])
def test_after_begin_the_role_cannot_change_itself(q, dataset, secret, statement) -> None:
    """An ordinary role may change its own defaults, but not in a read-only transaction."""
    with q.cursor() as cur:
        begin_query_transaction(cur, dataset.principals["alice"], secret)
        with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
            cur.execute(statement)
    q.rollback()


def test_prepared_assertion_goes_with_the_callers_settings(q, dataset, secret) -> None:
    """One statement binds the requester and sets the query's limits: one round trip less."""
    with q.cursor() as cur:
        assertion = prepare_query_transaction(cur, dataset.principals["alice"], secret)
        assert visible(cur) == dataset.visible_dids("anonymous"), "anonymous until sent"
        cur.execute(f"SELECT {assertion.expression}, set_config('statement_timeout', %s, true),"
                    " set_config('work_mem', %s, true)", (*assertion.params, "7s", "8MB"))
        cur.execute("SHOW statement_timeout")
        assert one(cur) == ("7s",)
        assert visible(cur) == dataset.visible_dids("alice")
        with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
            cur.execute("CREATE TEMP TABLE late (x int)")
    q.rollback()


def test_prepared_assertion_as_a_statement_of_its_own(q, dataset, secret) -> None:
    with q.cursor() as cur:
        assertion = prepare_query_transaction(cur, dataset.principals["staff"], secret)
        cur.execute(assertion.sql + "; SELECT set_config('work_mem', '8MB', true)",
                    assertion.params)
        assert visible(cur) == dataset.visible_dids("staff")
    q.rollback()


def test_a_prepared_assertion_is_void_in_the_next_transaction(q, dataset, secret) -> None:
    with q.cursor() as cur:
        assertion = prepare_query_transaction(cur, dataset.principals["staff"], secret)
    q.rollback()
    with q.cursor() as cur:
        cur.execute("SELECT 1")
        with pytest.raises(psycopg2.Error) as raised:
            cur.execute(assertion.sql, assertion.params)
    q.rollback()
    error = rejection_error(raised.value)
    assert isinstance(error, IdentityError) and "secret" in str(error)
    assert rejection_error(ValueError("other")) is None


def test_prepared_uploads_are_created_in_the_same_round_trip(q, dataset, secret) -> None:
    with q.cursor() as cur:
        assertion = prepare_query_transaction(
            cur, dataset.principals["alice"], secret,
            temp_tables=("CREATE TEMP TABLE up1 (x int) ON COMMIT DROP;",
                         "CREATE TEMP TABLE up2 (y text) ON COMMIT DROP"))
        cur.execute(assertion.sql, assertion.params)
        cur.execute("INSERT INTO pg_temp.up1 VALUES (1); SELECT count(*) FROM pg_temp.up2")
        assert one(cur) == (0,)
        assert visible(cur) == dataset.visible_dids("alice")
        with pytest.raises(IdentityError):
            prepare_query_transaction(cur, ANONYMOUS, secret, temp_tables=("DROP TABLE x",))
    q.rollback()

"""The DDL applies, TAP_SCHEMA equals the declaration, the query role cannot write."""

from __future__ import annotations

import psycopg2
import pytest

from tap_schema import rows as tap_rows
from tap_schema.declaration import SCHEMAS, published_tables
from tests.conftest import fetch, run_cli


def test_pgsphere_is_installed(database):
    (distance, contained) = fetch(
        database.query_dsn,
        "SELECT degrees(spoint '(0d, 0d)' <-> spoint '(1d, 0d)'), "
        "spoint '(10d, 10d)' @ scircle '<(10d, 10.5d), 1d>'",
    )[0]
    assert abs(distance - 1.0) < 1e-12
    assert contained is True


def test_pgsphere_negated_operators_negate(database):
    """pgSphere 1.2 ships six '!' operators calling the positive test (repaired at
    set-up): none may share its negator's function, and NOT over an overlap (which
    PostgreSQL rewrites with the negator) must be the negation."""
    broken = fetch(database.owner_dsn,
                    "SELECT o.oid::regoperator::text FROM pg_operator o JOIN pg_operator n"
                    " ON n.oid = o.oprnegate WHERE o.oprcode = n.oprcode")
    assert broken == []
    a, b, c = ("spoly '{(0d,0d),(2d,0d),(2d,2d),(0d,2d)}'",
               "spoly '{(1d,1d),(3d,1d),(3d,3d),(1d,3d)}'",
               "spoly '{(10d,10d),(12d,10d),(12d,12d),(10d,12d)}'")
    rows = fetch(database.owner_dsn,
                  f"SELECT {a} && {b}, NOT ({a} && {b}), {a} !&& {b}, {a} !&& {c},"
                  " count(*) FILTER (WHERE NOT (x && y)) FROM (VALUES"
                  f" ({a}, {b}), ({a}, {c})) AS v(x, y)")
    assert rows == [(True, False, False, True, 1)]


def test_migrations_match_declaration(database):
    """Every declared column exists with its storage type; nothing undeclared exists."""
    for schema in SCHEMAS:
        for table in schema.tables:
            found = dict(fetch(
                database.owner_dsn,
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
                (table.qualified_name,),
            ))
            declared = {
                c.name: c.storage_type.split(" GENERATED")[0] for c in table.columns
            }
            assert found == declared, table.qualified_name
            indexes = {name for (name,) in fetch(
                database.owner_dsn,
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
                (table.schema, table.name),
            )}
            # Exactly the declared indexes (a migration must drop what it replaces).
            assert {i.name for i in table.indexes} == {
                i for i in indexes if not i.endswith("_pkey")}, table.qualified_name
            for kind, declared_names in (("f", {fk.key_id for fk in table.foreign_keys}),
                                         ("c", {c.name for c in table.checks})):
                constraints = {name for (name,) in fetch(
                    database.owner_dsn,
                    "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass "
                    "AND contype = %s", (table.qualified_name, kind),
                )}
                assert declared_names == constraints, (table.qualified_name, kind)


def test_tap_schema_rows_equal_declaration(database):
    for table_name, produce in tap_rows.ALL_ROWS.items():
        expected = produce()
        if not expected:
            continue
        columns = list(expected[0])
        stored = fetch(database.owner_dsn,
                        f"SELECT {', '.join(columns)} FROM {table_name}")
        as_dicts = sorted((dict(zip(columns, r, strict=True)) for r in stored), key=repr)
        assert as_dicts == sorted(expected, key=repr), table_name


def test_tap_schema_lists_every_published_column(database):
    stored = set(fetch(database.owner_dsn,
                        "SELECT table_name, column_name FROM tap_schema.columns"))
    for table in published_tables():
        for column in table.columns:
            assert ((table.qualified_name, column.published_name) in stored) == \
                column.published


def test_query_role_reads_published_tables(database):
    for table in published_tables():
        fetch(database.query_dsn, f"SELECT count(*) FROM {table.qualified_name}")


@pytest.mark.parametrize("statement", [
    "INSERT INTO tap_schema.schemas (schema_name) VALUES ('evil')",
    "DELETE FROM tap_schema.columns",
    "UPDATE ivoa.obscore SET target_name = 'x'",
    "CREATE TABLE public.evil (x int)",
    "CREATE TABLE ivoa.evil (x int)",
    "CREATE SCHEMA evil",
    "DROP TABLE ivoa.obscore",
    "ALTER TABLE lick.files ADD COLUMN evil int",
    "TRUNCATE lick.files",
    "CREATE FUNCTION public.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "SET default_transaction_read_only = off; INSERT INTO tap_schema.keys (key_id, "
    "from_table, target_table) VALUES ('a', 'b', 'c')",
    "SET SESSION AUTHORIZATION lick_owner",
    "SET ROLE lick_owner",
    "ALTER ROLE lick_query SET default_transaction_read_only = off",
])
def test_query_role_cannot_write_or_create(database, statement):
    conn = psycopg2.connect(database.query_dsn)
    try:
        with conn.cursor() as cur, pytest.raises(psycopg2.Error):
            cur.execute(statement)
            conn.commit()
    finally:
        conn.close()


def test_query_role_transactions_are_read_only_by_default(database):
    (value,) = fetch(database.query_dsn, "SHOW default_transaction_read_only")[0]
    assert value == "on"
    (timeout,) = fetch(database.query_dsn, "SHOW statement_timeout")[0]
    assert timeout not in ("0", "")


def test_query_role_queries_are_not_jit_compiled(database):
    """JIT follows cost estimates that RLS and upload joins inflate (docs/scaling.md)."""
    assert fetch(database.query_dsn, "SHOW jit")[0] == ("off",)


def test_superuser_sql_repairs_a_stock_pgsphere(database):
    """What `lick-archive db superuser-sql` prints for external servers, run by a
    superuser on a database with the stock pgSphere script, repairs the negators and
    sets the LEAKPROOF marks."""
    from vo_service.database.pgsphere import _install_script

    admin = psycopg2.connect(database.target.admin_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS test_stock_pgsphere")
        cur.execute("CREATE DATABASE test_stock_pgsphere")
    admin.close()
    conn = psycopg2.connect(database.target.admin_dsn, dbname="test_stock_pgsphere")
    conn.autocommit = True
    broken_sql = ("SELECT count(*) FROM pg_operator o JOIN pg_operator n"
                  " ON n.oid = o.oprnegate WHERE o.oprcode = n.oprcode AND o.oprname LIKE '!%'")
    try:
        with conn.cursor() as cur:
            cur.execute(_install_script(cur))
            cur.execute(broken_sql)
            assert cur.fetchone() == (6,)
            cur.execute(run_cli(database, "db", "superuser-sql"))
            cur.execute(broken_sql)
            assert cur.fetchone() == (0,)
            cur.execute("SELECT bool_and(proleakproof) FROM pg_proc WHERE oid IN"
                        " ('scircle_overlap(scircle, scircle)'::regprocedure,"
                        " 'spoint(double precision, double precision)'::regprocedure)")
            assert cur.fetchone() == (True,)
    finally:
        conn.close()

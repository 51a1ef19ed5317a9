"""Upgrades: a database created at the first Alembic revision and filled with the
archive's rows is upgraded by `lick-archive db init` to head without losing a row, and
the service then starts on it and answers as on a database created at head."""

from __future__ import annotations

import io
import subprocess
import sys

import httpx
import psycopg2
import pytest
from psycopg2 import sql

from tests.conftest import (
    PROJECT,
    TestDatabase,
    cli_env,
    database_env,
    embedded_url,
    fetch,
    running_server,
)
from vo_service.database import setup

FIRST = "0001_foundation"
DBNAME = "test_upgrade_from_first"


def _columns(cur, table: str) -> list[str]:
    schema, name = table.split(".")
    cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = %s AND is_generated = 'NEVER' ORDER BY ordinal_position",
                (schema, name))
    return [row[0] for row in cur.fetchall()]


def _tables(cur) -> list[str]:
    cur.execute("SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname IN "
                "('ivoa', 'lick') ORDER BY 1")
    return [row[0] for row in cur.fetchall()]


def _digest(dsn: str, table: str, columns: list[str]) -> tuple:
    """Row count and an md5 over every row of ``columns`` (in a fixed order)."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            row = sql.SQL("ROW({})::text").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in columns))
            cur.execute(sql.SQL("SELECT count(*), md5(string_agg({row}, '|' ORDER BY {row})) "
                                "FROM {table}").format(
                row=row, table=sql.SQL(".").join(map(sql.Identifier, table.split(".")))))
            return tuple(cur.fetchone())
    finally:
        conn.close()


def test_upgrade_from_the_first_revision_keeps_every_row(database: TestDatabase, archive,
                                                         server) -> None:
    if not database.settings.embedded:
        pytest.skip("creates a database in the embedded cluster")
    cluster = setup.embedded_cluster(database.settings)
    superuser = cluster.dsn(setup.SUPERUSER, "postgres")
    conn = psycopg2.connect(superuser)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(DBNAME)))
    conn.close()
    target = setup.database_target(database.settings, DBNAME)
    # the database as the first release's `db init` left it: extensions, revision 0001
    setup._ensure_embedded_roles_and_databases(cluster, target, (DBNAME,))
    setup.run_migrations(target.owner_dsn, FIRST)
    assert fetch(target.owner_dsn, "SELECT version_num FROM alembic_version") == [(FIRST,)]

    # filled with the archive's rows (the demo archive ingested at head), column by column
    source = psycopg2.connect(database.owner_dsn)
    old = psycopg2.connect(target.owner_dsn)
    copied: dict[str, list[str]] = {}
    try:
        with source.cursor() as src, old.cursor() as dst:
            for table in _tables(dst):
                columns = [c for c in _columns(dst, table) if c in set(_columns(src, table))]
                buffer = io.StringIO()
                names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
                qualified = sql.SQL(".").join(map(sql.Identifier, table.split(".")))
                src.copy_expert(sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT").format(
                    names, qualified).as_string(src), buffer)
                buffer.seek(0)
                dst.copy_expert(sql.SQL("COPY {} ({}) FROM STDIN").format(
                    qualified, names).as_string(dst), buffer)
                copied[table] = columns
        old.commit()
    finally:
        source.close()
        old.close()
    assert copied["lick.files"] and copied["ivoa.obscore"]
    before = {table: _digest(target.owner_dsn, table, columns)
              for table, columns in copied.items()}
    assert before["lick.files"][0] > 100

    # the operator's upgrade: `lick-archive db init` on the new release
    env = {**cli_env(database), **database_env(database, TestDatabase(database.settings,
                                                                        target))}
    result = subprocess.run([sys.executable, "-m", "vo_service.cli", "db", "init"], env=env,
                            cwd=PROJECT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    head = fetch(database.owner_dsn, "SELECT version_num FROM alembic_version")
    assert fetch(target.owner_dsn, "SELECT version_num FROM alembic_version") == head
    for table, columns in copied.items():
        assert _digest(target.owner_dsn, table, columns) == before[table], table
    # the same tables as a database created at head
    conn = psycopg2.connect(target.owner_dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT schemaname || '.' || tablename FROM pg_tables "
                    "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")
        upgraded_tables = cur.fetchall()
    conn.close()
    assert upgraded_tables == fetch(
        database.owner_dsn, "SELECT schemaname || '.' || tablename FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")

    # the service starts on it and answers as on the suite's database
    upgraded = TestDatabase(database.settings, target)
    env = {"LICK_ARCHIVE_DATABASE_URL": embedded_url(database, DBNAME)}
    with running_server(upgraded, env) as started:
        query = {"LANG": "ADQL", "RESPONSEFORMAT": "csv",
                 "QUERY": "SELECT obs_publisher_did, s_ra, s_dec, obs_release_date FROM "
                          "ivoa.obscore ORDER BY obs_publisher_did"}
        reply = httpx.get(f"{started.tap_url}/sync", params=query, timeout=60)
        assert reply.status_code == 200 and reply.text.count("\n") > 10
        # the same public rows as the suite's server shows
        assert reply.text == httpx.get(f"{server.tap_url}/sync", params=query,
                                       timeout=60).text
        ready = httpx.get(f"{started.base_url}/readyz")
        assert ready.status_code == 200, ready.text
    conn = psycopg2.connect(superuser)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(DBNAME)))
    conn.close()

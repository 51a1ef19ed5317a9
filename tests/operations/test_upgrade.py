"""Upgrades: a database created at the first Alembic revision and filled, release after
release, with the archive's rows (frames, then accounts, jobs and ingest records) is
upgraded by `lick-archive db init` to head without losing a row, and the service then
starts on it and answers as on a database created at head."""

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
#: Revisions at which the test database is filled: the first, then one with every
#: schema (auth, uws, ingest) that later ones change.
STAGES = (FIRST, "0004_uws")
DBNAME = "test_upgrade_from_first"


def _columns(cur, table: str) -> list[str]:
    schema, name = table.split(".")
    cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = %s AND is_generated = 'NEVER' ORDER BY ordinal_position",
                (schema, name))
    return [row[0] for row in cur.fetchall()]


def _tables(cur) -> list[str]:
    cur.execute("SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname IN "
                "('ivoa', 'lick', 'auth', 'uws', 'ingest') ORDER BY 1")
    return [row[0] for row in cur.fetchall()]


def _copy_new_tables(source_dsn: str, target_dsn: str, done: dict[str, list[str]]
                     ) -> dict[str, list[str]]:
    """Copy the rows of the tables that exist in the target, were not copied yet and are
    empty (not seeded by a migration), in the columns both have; foreign keys and
    triggers are off for the copy (superuser)."""
    source = psycopg2.connect(source_dsn)
    target = psycopg2.connect(target_dsn)
    copied: dict[str, list[str]] = {}
    try:
        with source.cursor() as src, target.cursor() as dst:
            dst.execute("SET session_replication_role = replica")
            for table in _tables(dst):
                qualified = sql.SQL(".").join(map(sql.Identifier, table.split(".")))
                dst.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(qualified))
                if table in done or dst.fetchone()[0]:  # seeded by its migration
                    continue
                columns = [c for c in _columns(dst, table) if c in set(_columns(src, table))]
                buffer = io.StringIO()
                names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
                src.copy_expert(sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT").format(
                    names, qualified).as_string(src), buffer)
                buffer.seek(0)
                dst.copy_expert(sql.SQL("COPY {} ({}) FROM STDIN").format(
                    qualified, names).as_string(dst), buffer)
                copied[table] = columns
        target.commit()
    finally:
        source.close()
        target.close()
    return copied


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
    # a job with its parameters in the archive to copy
    created = httpx.post(f"{server.tap_url}/async", data={
        "LANG": "ADQL", "QUERY": "SELECT TOP 1 obs_id FROM ivoa.obscore"})
    assert created.status_code == 303
    target = setup.database_target(database.settings, DBNAME)
    # the database as the first release's `db init` left it: extensions, revision 0001
    setup._ensure_embedded_roles_and_databases(cluster, target, (DBNAME,))
    copied: dict[str, list[str]] = {}
    before: dict[str, tuple] = {}
    for stage, revision in enumerate(STAGES):
        # filled, release after release, with the archive's rows (the demo archive, its
        # users and jobs, as the suite made them at head), column by column
        setup.run_migrations(target.owner_dsn, revision)
        assert fetch(target.owner_dsn, "SELECT version_num FROM alembic_version") == [
            (revision,)]
        new = _copy_new_tables(database.owner_dsn, cluster.dsn(setup.SUPERUSER, DBNAME),
                               copied)
        copied.update(new)
        before.update({table: _digest(target.owner_dsn, table, columns)
                       for table, columns in new.items()})
        assert stage > 0 or set(copied) == {"ivoa.obscore", "lick.files"}
    assert {"auth.users", "uws.jobs", "ingest.rejected_files"} <= set(copied)
    assert before["lick.files"][0] > 100
    for table in ("auth.users", "uws.jobs", "uws.parameters", "ingest.rejected_files"):
        assert before[table][0] > 0, table

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

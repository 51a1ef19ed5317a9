"""`lick-archive db init`: roles, extensions, migrations, TAP_SCHEMA rows and grants.

Two roles: the owner (DDL, ingest, jobs) and the read-only query role that every
user query runs as: SELECT on the published tables only, read-only transactions
by default, a statement timeout, no CREATE anywhere (TEMP only, for uploads).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from auth.policy import leakproof_statements
from tap_schema import rows as tap_rows
from tap_schema.declaration import SCHEMAS, published_tables
from vo_service.database.cluster import SUPERUSER, EmbeddedCluster
from vo_service.database.pgsphere import install_pgsphere
from vo_service.settings import Settings

EMBEDDED_DATABASE = "lick"
SCHEDULE_DATABASE = "lick_schedule"
MIGRATIONS = Path(__file__).resolve().parent.parent.parent / "tap_schema" / "migrations"


class DatabaseSetupError(RuntimeError):
    """Set-up could not finish; the message says what the operator must do."""


@dataclass(frozen=True)
class DatabaseTarget:
    """Where the service's database is and how each role reaches it."""

    owner_dsn: str
    query_dsn: str
    owner_role: str
    query_role: str
    admin_dsn: str | None = None
    schedule_dsn: str | None = None
    dbname: str = EMBEDDED_DATABASE
    direct_dsn: str | None = None

    @property
    def session_dsn(self) -> str:
        """The owner's connection for what needs a whole session of its own (LISTEN,
        a held advisory lock, session settings, migrations): the primary itself even
        when ``owner_dsn`` goes through pgbouncer in transaction pooling mode."""
        return self.direct_dsn or self.owner_dsn


def embedded_cluster(settings: Settings) -> EmbeddedCluster:
    return EmbeddedCluster(settings.data_dir / "postgres")


def _url_with_user(url: str, user: str) -> str:
    from sqlalchemy.engine import make_url  # 0.2 s to import: only for external databases

    parsed = make_url(url)
    return parsed.set(drivername="postgresql", username=user, password=None).render_as_string(
        hide_password=False
    )


def database_target(settings: Settings, dbname: str = EMBEDDED_DATABASE) -> DatabaseTarget:
    db = settings.database
    if settings.embedded:
        cluster = embedded_cluster(settings)
        return DatabaseTarget(
            owner_dsn=cluster.dsn(db.owner_role, dbname),
            query_dsn=cluster.dsn(db.query_role, dbname),
            owner_role=db.owner_role,
            query_role=db.query_role,
            admin_dsn=cluster.dsn(SUPERUSER, dbname),
            schedule_dsn=settings.schedule.dsn or cluster.dsn(db.owner_role, SCHEDULE_DATABASE),
            dbname=dbname,
        )
    from sqlalchemy.engine import make_url

    url = make_url(db.url)
    owner_dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return DatabaseTarget(
        owner_dsn=owner_dsn,
        query_dsn=db.query_url or _url_with_user(db.url, db.query_role),
        owner_role=url.username or db.owner_role,
        query_role=db.query_role,
        schedule_dsn=settings.schedule.dsn or None,
        dbname=url.database or EMBEDDED_DATABASE,
        direct_dsn=db.direct_url or None,
    )


@contextmanager
def connect(dsn: str, autocommit: bool = False) -> Iterator[psycopg2.extensions.connection]:
    conn = psycopg2.connect(dsn)
    conn.autocommit = autocommit
    try:
        yield conn
    finally:
        conn.close()


def _role_exists(cur: psycopg2.extensions.cursor, role: str) -> bool:
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    return cur.fetchone() is not None


def _ensure_embedded_roles_and_databases(cluster: EmbeddedCluster, target: DatabaseTarget,
                                         databases: tuple[str, ...]) -> None:
    with connect(cluster.dsn(SUPERUSER, "postgres"), autocommit=True) as conn, \
            conn.cursor() as cur:
        for role in (target.owner_role, target.query_role):
            if not _role_exists(cur, role):
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        for dbname in databases:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(dbname), sql.Identifier(target.owner_role)))
    for dbname in databases:
        with connect(cluster.dsn(SUPERUSER, dbname), autocommit=True) as conn, \
                conn.cursor() as cur:
            # Nobody but the owner creates objects in public; PUBLIC loses TEMP so that
            # only roles granted it (the query role, for uploads) can make temp tables.
            cur.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            cur.execute(sql.SQL("REVOKE TEMP ON DATABASE {} FROM PUBLIC").format(
                sql.Identifier(dbname)))
            cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO PUBLIC"))
            if dbname != SCHEDULE_DATABASE:
                cur.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
                install_pgsphere(conn)
                # Index use under row-level security needs LEAKPROOF geometry tests.
                for statement in leakproof_statements():
                    cur.execute(statement)


def _has_spoint(cur: psycopg2.extensions.cursor) -> bool:
    cur.execute("SELECT to_regtype('spoint') IS NOT NULL")
    row = cur.fetchone()
    return bool(row and row[0])


def _ensure_external_setup(target: DatabaseTarget) -> None:
    with connect(target.owner_dsn, autocommit=True) as conn, conn.cursor() as cur:
        for extension in ("pg_sphere", "pgcrypto"):
            cur.execute("SELECT 1 FROM pg_extension WHERE extname = %s", (extension,))
            if cur.fetchone() is None and not (extension == "pg_sphere" and _has_spoint(cur)):
                try:
                    cur.execute(sql.SQL("CREATE EXTENSION {}").format(sql.Identifier(extension)))
                except psycopg2.Error as exc:
                    raise DatabaseSetupError(
                        f"extension {extension} is missing and the owner role cannot create "
                        f"it; ask a superuser to run CREATE EXTENSION {extension} in the "
                        f"database ({exc.pgerror or exc})"
                    ) from exc
        if not _role_exists(cur, target.query_role):
            try:
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(
                    sql.Identifier(target.query_role)))
            except psycopg2.Error as exc:
                raise DatabaseSetupError(
                    f"the query role {target.query_role} does not exist and the owner cannot "
                    f"create it; ask a superuser: CREATE ROLE {target.query_role} LOGIN "
                    f"PASSWORD '...'; ({exc.pgerror or exc})"
                ) from exc


def run_migrations(owner_dsn: str, revision: str = "head") -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine("postgresql+psycopg2://", creator=lambda: psycopg2.connect(owner_dsn),
                           poolclass=NullPool)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()


def load_tap_schema(owner_dsn: str) -> None:
    """Replace the TAP_SCHEMA rows by the declaration's, in one transaction."""
    with connect(owner_dsn) as conn, conn.cursor() as cur:
        for table in reversed(list(tap_rows.ALL_ROWS)):
            cur.execute(f"DELETE FROM {table}")
        for table, produce in tap_rows.ALL_ROWS.items():
            for row in produce():
                columns = sql.SQL(", ").join(sql.Identifier(c) for c in row)
                values = sql.SQL(", ").join(sql.Placeholder(c) for c in row)
                cur.execute(
                    sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                        sql.SQL(table), columns, values),
                    row,
                )
        conn.commit()


def grant_query_role(target: DatabaseTarget, settings: Settings) -> None:
    role = sql.Identifier(target.query_role)
    with connect(target.session_dsn) as conn, conn.cursor() as cur:
        for schema in SCHEMAS:
            cur.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                sql.Identifier(schema.name), role))
        for table in published_tables():
            cur.execute(sql.SQL("GRANT SELECT ON {}.{} TO {}").format(
                sql.Identifier(table.schema), sql.Identifier(table.name), role))
        cur.execute(sql.SQL("GRANT TEMP ON DATABASE {} TO {}").format(
            sql.Identifier(target.dbname), role))
        conn.commit()
    # Role-level defaults: even a connection that forgets to say so is read-only and
    # time-limited.  ALTER ROLE needs the role's owner or CREATEROLE: embedded, the
    # superuser does it; external, a failure only costs this second line of defence.
    timeout = settings.database.sync_statement_timeout_ms
    statements = [
        sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(role),
        sql.SQL("ALTER ROLE {} SET statement_timeout = {}").format(role, sql.Literal(timeout)),
        sql.SQL("ALTER ROLE {} SET temp_file_limit = {}").format(
            role, sql.Literal(settings.database.sync_temp_file_limit)),
        # PostgreSQL ends the query of a client that died (a killed server) this fast.
        # A role default rather than a connect-time option: pgbouncer in transaction
        # mode refuses startup options.
        sql.SQL("ALTER ROLE {} SET client_connection_check_interval = {}").format(
            role, sql.Literal(f"{settings.database.client_check_interval_ms}ms")),
        # No JIT compilation for user queries: its decision follows the planner's cost
        # estimate, which row-level security and joins with uploads inflate (1,000
        # uploaded positions against 1M rows: estimated 835,101 rows, found 20,717), so
        # short queries paid 16-700 ms of compilation (bench/tap.py, docs/scaling.md).
        sql.SQL("ALTER ROLE {} SET jit = off").format(role),
        # temp_file_limit is superuser-only; this superuser-owned function lets the
        # service raise it per transaction for async queries, never beyond their limit.
        sql.SQL(
            "CREATE OR REPLACE FUNCTION public.lick_set_temp_file_limit(requested text) "
            "RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS "
            "$fn$ BEGIN "
            "IF pg_size_bytes(requested) > pg_size_bytes({}) THEN "
            "RAISE EXCEPTION 'temp_file_limit % is above the configured maximum', requested; "
            "END IF; "
            "RETURN set_config('temp_file_limit', requested, true); END $fn$"
        ).format(sql.Literal(settings.database.async_temp_file_limit)),
        sql.SQL("REVOKE ALL ON FUNCTION public.lick_set_temp_file_limit(text) FROM PUBLIC"),
        sql.SQL("GRANT EXECUTE ON FUNCTION public.lick_set_temp_file_limit(text) TO {}").format(
            role),
    ]
    admin = target.admin_dsn or target.session_dsn
    with connect(admin, autocommit=True) as conn, conn.cursor() as cur:
        for statement in statements:
            try:
                cur.execute(statement)
            except psycopg2.Error:
                if target.admin_dsn is not None:
                    raise


def initialize(settings: Settings, dbname: str = EMBEDDED_DATABASE) -> DatabaseTarget:
    """Create or upgrade everything; safe to run again at any time."""
    target = database_target(settings, dbname)
    if settings.embedded:
        cluster = embedded_cluster(settings)
        cluster.start()
        databases = (dbname,) if dbname != EMBEDDED_DATABASE else (dbname, SCHEDULE_DATABASE)
        _ensure_embedded_roles_and_databases(cluster, target, databases)
    else:
        _ensure_external_setup(target)
    run_migrations(target.session_dsn)
    load_tap_schema(target.session_dsn)
    grant_query_role(target, settings)
    return target

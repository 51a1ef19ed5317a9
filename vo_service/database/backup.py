"""``lick-archive backup DIR`` and ``lick-archive restore DIR``.

A backup directory holds what an instance cannot rebuild: the archive database
(``archive.dump``: ``pg_dump`` custom format, one consistent snapshot, made with the
embedded cluster's own PostgreSQL binaries or, for an external server, the newest
installed ``pg_dump``), the async job results (``jobs/``, the files behind the
``uws.jobs`` rows), the configuration in use (``config/``) and ``manifest.json``: when,
the schema revision, and the row count of every table, which ``restore`` checks.

The dump is taken first, then the results are copied: a job that completes in between
restores as EXECUTING and is set to ERROR by the runner at start-up; a job destroyed in
between restores without its result file and is swept at its destruction time.

``restore`` targets a **fresh** instance (the configured database; embedded: the
cluster in ``data_dir``, created if needed): it refuses a database that already holds
the archive's tables unless ``force`` (then the database is dropped and re-created).
It runs ``pg_restore`` as the embedded cluster's superuser (the owner and query roles
are created first, so ownership and grants are kept) or, external, as the owner role
(``--no-owner``), then ``db init`` (a backup from an older release is upgraded by the
migrations), copies the job results back and compares the row counts with the
manifest.  Previews are a cache and are not kept.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from vo_service.database import setup
from vo_service.database.cluster import SUPERUSER, ClusterError, find_postgres_bin
from vo_service.settings import Settings

MANIFEST = "manifest.json"
DUMP = "archive.dump"
JOBS = "jobs"
CONFIG = "config"
FORMAT = 1
#: Schemas of the archive whose tables are counted (and must come back whole).
SCHEMAS = ("ivoa", "lick", "tap_schema", "ingest", "auth", "uws")


class BackupError(RuntimeError):
    """A backup or restore could not be made; the message says why and what to do."""


@dataclass(frozen=True)
class Manifest:
    created: str
    revision: str
    counts: dict[str, int]
    job_files: int
    config_files: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "created": self.created,
                           "revision": self.revision, "counts": self.counts,
                           "job_files": self.job_files,
                           "config_files": list(self.config_files)}, indent=2) + "\n"

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        try:
            data = json.loads((directory / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            raise BackupError(f"{directory} is not a backup of lick-archive ({exc})") from exc
        if data.get("format") != FORMAT:
            raise BackupError(f"{directory}: unknown backup format {data.get('format')!r}")
        return cls(data["created"], data["revision"], dict(data["counts"]),
                   int(data["job_files"]), tuple(data["config_files"]))


def table_counts(dsn: str) -> dict[str, int]:
    """Rows of every table of the archive's schemas (``schema.table`` -> count)."""
    with setup.connect(dsn) as conn, conn.cursor() as cur:
        return _counts(cur)


def _counts(cur: psycopg2.extensions.cursor) -> dict[str, int]:
    counts: dict[str, int] = {}
    cur.execute("SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY(%s) "
                "ORDER BY 1, 2", (list(SCHEMAS),))
    for schema, table in cur.fetchall():
        cur.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table)))
        row = cur.fetchone()
        counts[f"{schema}.{table}"] = int(row[0]) if row else 0
    return counts


def schema_revision(dsn: str) -> str:
    with setup.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL")
        row = cur.fetchone()
        if not (row and row[0]):
            return ""
        cur.execute("SELECT version_num FROM public.alembic_version")
        found = cur.fetchone()
        return str(found[0]) if found else ""


def _binary(name: str) -> str:
    try:
        return str(find_postgres_bin() / name)
    except ClusterError:
        found = shutil.which(name)
        if found is None:
            raise BackupError(f"{name} not found: install the Debian package "
                              "postgresql-client") from None
        return found


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{what} failed ({result.returncode}): "
                          f"{(result.stderr or result.stdout).strip()[-2000:]}")


def _admin_dsn(settings: Settings, target: setup.DatabaseTarget) -> str:
    """Who dumps and restores: the embedded superuser, else the owner."""
    return target.admin_dsn or target.owner_dsn


def backup(settings: Settings, directory: Path, config_files: tuple[Path, ...] = ()
           ) -> Manifest:
    """Write a backup into ``directory`` (created; it must be empty)."""
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty: give a new directory per backup")
    if settings.embedded:
        setup.embedded_cluster(settings).start()
    target = setup.database_target(settings)
    directory.mkdir(parents=True, exist_ok=True)
    dsn = _admin_dsn(settings, target)
    revision = schema_revision(dsn)
    # The counts and the dump see one snapshot (exported by this transaction, which
    # stays open while pg_dump runs): a concurrent ingest or job changes neither.
    with setup.connect(dsn) as conn, conn.cursor() as cur:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        cur.execute("SELECT pg_export_snapshot()")
        row = cur.fetchone()
        snapshot = str(row[0]) if row else ""
        counts = _counts(cur)
        if not counts:
            raise BackupError("the database holds no archive tables: run "
                              "`lick-archive db init`")
        _run([_binary("pg_dump"), "--format=custom", "--snapshot", snapshot,
              "--file", str(directory / DUMP), "--dbname", dsn], "pg_dump")
        conn.rollback()
    jobs = settings.data_dir / JOBS
    job_files = 0
    if jobs.is_dir():
        shutil.copytree(jobs, directory / JOBS, symlinks=False)
        job_files = sum(1 for path in (directory / JOBS).rglob("*") if path.is_file())
    kept = []
    if config_files:
        (directory / CONFIG).mkdir()
        for path in config_files:
            if path.is_file():
                shutil.copy2(path, directory / CONFIG / path.name)
                kept.append(path.name)
    manifest = Manifest(datetime.now(UTC).isoformat(timespec="seconds"), revision, counts,
                        job_files, tuple(kept))
    (directory / MANIFEST).write_text(manifest.to_json())
    return manifest


def restore(settings: Settings, directory: Path, *, force: bool = False) -> Manifest:
    """Restore ``directory`` into the configured (fresh) instance; see the module."""
    manifest = Manifest.read(directory)
    if not (directory / DUMP).is_file():
        raise BackupError(f"{directory / DUMP} is missing")
    target = setup.database_target(settings)
    if settings.embedded:
        cluster = setup.embedded_cluster(settings)
        cluster.start()
        _fresh_embedded_database(settings, target, force=force)
        _run([_binary("pg_restore"), "--exit-on-error", "--dbname",
              cluster.dsn(SUPERUSER, target.dbname), str(directory / DUMP)], "pg_restore")
    else:
        if table_counts(target.owner_dsn) and not force:
            raise BackupError("the target database already holds the archive's tables; "
                              "restore into an empty database (or --force, which "
                              "restores over it with --clean)")
        _run([_binary("pg_restore"), "--exit-on-error", "--no-owner", "--role",
              target.owner_role, *(["--clean", "--if-exists"] if force else []),
              "--dbname", target.owner_dsn, str(directory / DUMP)], "pg_restore")
    setup.initialize(settings, target.dbname)
    jobs = settings.data_dir / JOBS
    if (directory / JOBS).is_dir():
        if jobs.exists() and any(jobs.iterdir()):
            if not force:
                raise BackupError(f"{jobs} is not empty: restore into a fresh data_dir "
                                  "(or --force)")
            shutil.rmtree(jobs)
        shutil.copytree(directory / JOBS, jobs, dirs_exist_ok=True)
    restored = table_counts(_admin_dsn(settings, target))
    # TAP_SCHEMA is reloaded from this release's declaration by db init
    lost = {name: (count, restored.get(name, 0)) for name, count in manifest.counts.items()
            if not name.startswith("tap_schema.") and restored.get(name, 0) < count}
    if lost:
        raise BackupError(f"rows missing after the restore (table: backup, restored): {lost}")
    return manifest


def _fresh_embedded_database(settings: Settings, target: setup.DatabaseTarget, *,
                             force: bool) -> None:
    cluster = setup.embedded_cluster(settings)
    with setup.connect(cluster.dsn(SUPERUSER, "postgres"), autocommit=True) as conn, \
            conn.cursor() as cur:
        for role in (target.owner_role, target.query_role):
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target.dbname,))
        if cur.fetchone() is not None:
            if table_counts(cluster.dsn(SUPERUSER, target.dbname)) and not force:
                raise BackupError(
                    f"the embedded database {target.dbname} in {cluster.root} already "
                    "holds the archive: restore into a fresh data_dir (or --force, which "
                    "drops it first)")
            cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(
                sql.Identifier(target.dbname)))
        cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(target.dbname), sql.Identifier(target.owner_role)))
    # the archive database's own settings (as db init makes them) before the restore
    try:
        with setup.connect(cluster.dsn(SUPERUSER, target.dbname), autocommit=True) as conn, \
                conn.cursor() as cur:
            cur.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            cur.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
    except psycopg2.Error as exc:
        raise BackupError(f"cannot prepare the database: {exc}") from exc

"""``lick-archive``: the one command line for operators (the composition root).

It loads the settings, builds what a subcommand needs and calls into the packages.
It is the only module of ``vo_service`` allowed to import ``ingest`` (through
``vo_service.commands``), as the import-linter contract in pyproject.toml says.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vo_service import logs
from vo_service.database import setup
from vo_service.database.backup import BackupError
from vo_service.database.cluster import ClusterError
from vo_service.settings import (
    CONFIG_ENV,
    Settings,
    SettingsError,
    default_config_path,
    load_settings,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette

Handler = Callable[[Settings, argparse.Namespace], int]


def _db_init(settings: Settings, args: argparse.Namespace) -> int:
    target = setup.initialize(settings)
    where = "embedded cluster in " + str(setup.embedded_cluster(settings).root) \
        if settings.embedded else "external database"
    print(f"database ready ({where}); owner role {target.owner_role}, "
          f"query role {target.query_role}")
    from vo_service.commands.ingest_commands import rebase_access_urls

    moved = rebase_access_urls(settings, target)
    if moved:
        print(f"{moved} access URLs now start with {settings.service.base_url}")
    return 0


def _db_start(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.embedded:
        print("database.url is set: the database is external; nothing to start")
        return 0
    cluster = setup.embedded_cluster(settings)
    started = cluster.start()
    print(f"embedded database {'started' if started else 'already running'} "
          f"(socket {cluster.socket_dir})")
    return 0


def _db_stop(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.embedded:
        print("database.url is set: the database is external; nothing to stop")
        return 0
    stopped = setup.embedded_cluster(settings).stop()
    print("embedded database " + ("stopped" if stopped else "was not running"))
    return 0


def _db_status(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.embedded:
        print(f"external database: {setup.database_target(settings).owner_dsn}")
        return 0
    cluster = setup.embedded_cluster(settings)
    running = cluster.running()
    state = "running" if running else ("stopped" if cluster.initialized else "not created")
    print(f"embedded database {state} (data {cluster.pgdata}, socket {cluster.socket_dir})")
    return 0 if running else 3


def _db_superuser_sql(settings: Settings, args: argparse.Namespace) -> int:
    """What a superuser of an external server runs once (the embedded set-up does it)."""
    from auth.policy import leakproof_statements
    from vo_service.database.pgsphere import NEGATOR_REPAIR

    print("-- Run as a superuser in the archive database (docs/operations.md).")
    print("-- Geometry tests usable by indexes under row-level security:")
    for statement in leakproof_statements():
        print(f"{statement};")
    print("-- pgSphere 1.2's negated operators that call the positive test:")
    print(f"{NEGATOR_REPAIR};")
    return 0


def service_app(settings: Settings | None = None) -> Starlette:
    """The application with what the composition root knows from ingest's
    configuration (archive roots, instrument directories).  ``serve --workers N``
    names this factory to uvicorn, which calls it in every worker process: each reads
    the configuration itself (the same file and environment as the parent)."""
    from vo_service.app import create_app
    from vo_service.commands.ingest_commands import ingest_config

    if settings is None:  # a worker process of `serve --workers N`
        settings = load_settings(default_config_path())
        logs.configure(json_lines=settings.service.log_format == "json")
    archive = ingest_config(settings)
    return create_app(settings, instrument_dirs=tuple(archive.instrument_dirs),
                      archive_roots=archive.roots)


def _config_files(args: argparse.Namespace) -> tuple[Path, ...]:
    """The configuration in use: the TOML file and the instruments file beside it."""
    path = args.config or default_config_path()
    if path is None:
        return ()
    return (path, path.resolve().parent / "instruments.toml")


def _backup(settings: Settings, args: argparse.Namespace) -> int:
    from vo_service.database.backup import backup

    manifest = backup(settings, args.directory.resolve(), _config_files(args))
    rows = sum(manifest.counts.values())
    print(f"backup written to {args.directory}: schema {manifest.revision}, {rows} rows in "
          f"{len(manifest.counts)} tables, {manifest.job_files} job result files, "
          f"configuration: {', '.join(manifest.config_files) or 'none'}")
    return 0


def _restore(settings: Settings, args: argparse.Namespace) -> int:
    from vo_service.database.backup import CONFIG, restore

    manifest = restore(settings, args.directory.resolve(), force=args.force)
    print(f"restored the backup of {manifest.created} (schema {manifest.revision}, now "
          f"upgraded to this release's); every table has its rows back. The configuration "
          f"saved with it is in {args.directory / CONFIG}: compare it with "
          f"{args.config or default_config_path()}")
    return 0


def _metrics_directory(settings: Settings) -> None:
    """prometheus_client's multiprocess mode for this server and its workers: a fresh
    directory of its own, named before anything creates a metric (vo_service.metrics)."""
    from vo_service.metrics import MULTIPROC_ENV, prepare_multiprocess_dir

    os.environ[MULTIPROC_ENV] = str(prepare_multiprocess_dir(settings.data_dir / "run"))
    from prometheus_client import values  # chosen at its import: make sure of it

    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    service = settings.service
    if service.log_format not in ("json", "text"):
        raise SettingsError("configuration key service.log_format: json or text, not "
                            f"{service.log_format!r}")
    logs.configure(json_lines=service.log_format == "json")
    _metrics_directory(settings)
    setup.initialize(settings)
    workers = args.workers or service.workers
    trusted = ",".join(service.trusted_proxies)
    options = dict(
        host=args.host or service.host, port=args.port or service.port, log_level="info",
        # X-Forwarded-For/-Proto only from the configured proxies (none by default)
        proxy_headers=bool(trusted), forwarded_allow_ips=trusted or None,
        timeout_keep_alive=int(service.keepalive_timeout_s),
        h11_max_incomplete_event_size=service.max_header_bytes,
        limit_concurrency=service.max_connections, access_log=False,
        log_config=None,  # uvicorn's lines go through our (JSON) handler
        timeout_graceful_shutdown=10)
    if workers <= 1:
        uvicorn.run(service_app(settings), **options)  # type: ignore[arg-type]
        return 0
    if args.config is not None:  # the workers read the same file
        os.environ[CONFIG_ENV] = str(args.config.resolve())
    uvicorn.run("vo_service.cli:service_app", factory=True, workers=workers,
                **options)  # type: ignore[arg-type]
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lick-archive", description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, help="TOML configuration file "
                        "(default: $LICK_ARCHIVE_CONFIG or conf/lick-archive.toml)")
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="the database: init, start, stop, status")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    for name, handler, text in (
        ("init", _db_init, "create or upgrade roles, schemas, tables and TAP_SCHEMA"),
        ("start", _db_start, "start the embedded PostgreSQL cluster"),
        ("stop", _db_stop, "stop the embedded PostgreSQL cluster"),
        ("status", _db_status, "is the embedded cluster running?"),
        ("superuser-sql", _db_superuser_sql,
         "print the SQL a superuser of an external server runs once"),
    ):
        db_commands.add_parser(name, help=text).set_defaults(handler=handler)

    serve = commands.add_parser("serve", help="run the web service (starts the embedded db)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int,
                       help="server processes (default: [service] workers); "
                       "docs/architecture.md says how many for how many cores")
    serve.set_defaults(handler=_serve)

    backup = commands.add_parser(
        "backup", help="write the database (pg_dump), job results and configuration to DIR")
    backup.add_argument("directory", type=Path)
    backup.set_defaults(handler=_backup)
    restore = commands.add_parser(
        "restore", help="restore a backup DIR into this (fresh) instance and check it")
    restore.add_argument("directory", type=Path)
    restore.add_argument("--force", action="store_true",
                         help="replace an existing archive database and job results")
    restore.set_defaults(handler=_restore)

    from vo_service import commands as extra

    extra.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logs.configure()
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config or default_config_path())
        handler: Handler = args.handler
        return handler(settings, args)
    except (SettingsError, ClusterError, setup.DatabaseSetupError, BackupError) as exc:
        print(f"lick-archive: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        # Errors meant for the operator (ingest, users...) are ValueError/RuntimeError
        # subclasses with a message; anything else keeps its traceback.
        if type(exc).__module__.split(".")[0] in ("ingest", "auth") \
                or isinstance(exc, ValueError):
            print(f"lick-archive: {exc}", file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

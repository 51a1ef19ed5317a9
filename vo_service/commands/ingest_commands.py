"""``demo-data``, ``ingest``, ``ingest report``, ``watch`` and ``access recompute``; and
the access URLs ``db init`` keeps on the configured base URL."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ingest import obscore_map
from ingest.config import IngestConfig, IngestSettings
from vo_service import logs
from vo_service.database import setup
from vo_service.database.setup import DatabaseTarget
from vo_service.settings import Settings, SettingsError, section_values


def ingest_config(settings: Settings, extra_roots: Sequence[Path] = (), *,
                  default_roots: Sequence[Path] = ()) -> IngestConfig:
    """Ingest's configuration: ``[ingest]`` typed and defaulted by ingest's own
    declaration, and the service's identity and scheduling database added.

    The archive roots are those configured (else ``default_roots``), then
    ``extra_roots``, each once.
    """
    section = settings.ingest
    values = section_values(IngestSettings, "ingest", section.table, section.environ)
    roots = (*(values.pop("roots", ()) or default_roots), *extra_roots)
    target = setup.database_target(settings)
    try:
        return IngestConfig(
            **values,
            roots=tuple(dict.fromkeys(p.resolve() for p in roots)),
            authority=settings.service.authority,
            base_url=settings.service.base_url.rstrip("/"),
            schedule_dsn=target.schedule_dsn,
        )
    except ValueError as exc:  # a value of the right type that ingest refuses
        raise SettingsError(f"configuration section [ingest]: {exc}") from exc


def _demo_data(settings: Settings, args: argparse.Namespace) -> int:
    import psycopg2

    from ingest.demo_data import write_demo_data
    from ingest.schedule import load_schedule_json

    directory: Path = args.directory.resolve()
    summary = write_demo_data(directory)
    print(f"demo archive written to {directory}: {summary}")
    target = setup.initialize(settings)
    if target.schedule_dsn:
        conn = psycopg2.connect(target.schedule_dsn)
        try:
            observers, runs = load_schedule_json(conn, directory / "schedule.json")
        finally:
            conn.close()
        print(f"scheduling database loaded: {observers} observers, {runs} runs")
        from vo_service.commands.user_commands import sync_users

        sync_users(settings)
    return 0


def _ingest(settings: Settings, args: argparse.Namespace) -> int:
    from rich.console import Console

    from ingest.loader import ingest_paths
    from ingest.report import print_summary

    paths: list[Path] = args.paths
    if [str(p) for p in paths] == ["report"]:
        return _report(settings, args)
    if str(paths[0]) == "prune":
        return _prune(settings, args, paths[1:])
    if args.apply or args.force:
        print("lick-archive ingest: --apply and --force belong to `ingest prune`")
        return 2
    target = setup.database_target(settings)
    # With no roots configured, the directories named are archive roots themselves.
    config = ingest_config(settings, default_roots=[p for p in paths if p.is_dir()])
    console = Console(stderr=True)
    summary = ingest_paths(config, target.session_dsn, paths, dry_run=args.dry_run,
                           console=console)
    print_summary(summary, console)
    if not args.dry_run:
        # the coverage follows the new data now, not at the server's next round
        from vo_service.commands.registry_commands import refresh_registry

        try:
            refresh_registry(settings, force=False)
        except Exception as exc:  # the data are in; the server's refresher will follow
            console.print(f"registry refresh failed ({exc}); the server recomputes the "
                          "coverage at its next round (docs/registry.md)")
    return 0


def _report(settings: Settings, args: argparse.Namespace) -> int:
    from rich.console import Console

    from ingest.report import ingest_report, print_report

    target = setup.database_target(settings)
    lines = ingest_report(ingest_config(settings), target.session_dsn)
    print_report(lines, Console())
    return 0


def _prune(settings: Settings, args: argparse.Namespace, paths: Sequence[Path]) -> int:
    from rich.console import Console

    from ingest.prune import print_prune, prune

    target = setup.database_target(settings)
    result = prune(ingest_config(settings), target.owner_dsn, paths, apply=args.apply,
                   force=args.force)
    print_prune(result, Console(width=200))
    return 3 if result.refused else 0


def _watch(settings: Settings, args: argparse.Namespace) -> int:
    from ingest.watcher import watch

    logs.configure(json_lines=settings.service.log_format == "json")
    target = setup.database_target(settings)
    config = ingest_config(settings, tuple(args.roots))
    if not config.roots:
        print("lick-archive watch: no archive roots; set [ingest] roots or give them")
        return 2
    watch(config, target.session_dsn)
    return 0


def _recompute(settings: Settings, args: argparse.Namespace) -> int:
    from ingest.recompute import recompute_access

    target = setup.database_target(settings)
    summary = recompute_access(ingest_config(settings), target.session_dsn, args.target)
    print(summary)
    return 0


def register(commands: Any) -> None:
    demo = commands.add_parser("demo-data", help="write a deterministic sample archive and "
                               "load its scheduling database")
    demo.add_argument("directory", type=Path)
    demo.set_defaults(handler=_demo_data)

    ingest = commands.add_parser(
        "ingest", help="ingest files or trees (PATH...); `ingest report`: disk versus "
        "database per night and instrument; `ingest prune [PATH...]`: rows of files gone "
        "from disk (dry run unless --apply)")
    ingest.add_argument("paths", nargs="+", type=Path)
    ingest.add_argument("--dry-run", action="store_true", help="read and report, write nothing")
    ingest.add_argument("--apply", action="store_true",
                        help="prune: remove the rows (default: only report them)")
    ingest.add_argument("--force", action="store_true",
                        help="prune: also above [ingest] prune_max_share of a night, or "
                        "with a root missing")
    ingest.set_defaults(handler=_ingest)

    watch = commands.add_parser("watch", help="the ingest daemon: poll the roots and ingest "
                                "files once they are complete")
    watch.add_argument("roots", nargs="*", type=Path)
    watch.set_defaults(handler=_watch)

    access = commands.add_parser("access", help="access rules")
    access_commands = access.add_subparsers(dest="access_command", required=True)
    recompute = access_commands.add_parser(
        "recompute", help="re-apply owners and release dates to a file, directory or night")
    recompute.add_argument("target")
    recompute.set_defaults(handler=_recompute)


def rebase_access_urls(settings: Settings, target: DatabaseTarget) -> int:
    """``db init``: access URLs written under another base URL follow the configured
    one (the service moved or went behind a proxy); how many rows changed."""
    with setup.connect(target.session_dsn) as conn, conn.cursor() as cur:
        moved = obscore_map.rebase_access_urls(cur, settings.service.base_url)
        conn.commit()
    return moved

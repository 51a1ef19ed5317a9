"""``lick-archive ingest report``: the archive disk against the database, per night and
instrument, with every mismatch marked; and the rich rendering of ingest summaries.

A file on disk is accounted for when ``lick.files`` or ``ingest.rejected_files`` holds
its path with the same size and mtime; anything else is a mismatch the operator should
see: files not ingested yet (``missing``), files changed since ingest (``stale``) and
rows whose file is gone (``orphaned``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg2

from ingest.config import IngestConfig
from ingest.disk import find_root, instrument_dirs, night_of, scan_directory
from ingest.summary import IngestSummary


@dataclass(frozen=True)
class ReportLine:
    """One night and instrument directory."""

    night: date
    instrument_dir: str
    on_disk: int
    ingested: int  # rows in lick.files
    rejected: int  # rows in ingest.rejected_files
    missing: int  # on disk, in neither table
    stale: int  # in a table with another size or mtime
    orphaned: int  # in a table, not on disk
    watched_at: datetime | None = None  # the watcher's last scan of the directory

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.stale == 0 and self.orphaned == 0


def _prefixes(paths: Sequence[Path | str], config: IngestConfig) -> list[str]:
    prefixes = []
    for given in paths:
        path = Path(given)
        root = find_root(path, config)
        relative = path.resolve().relative_to(root.resolve()).as_posix()
        prefixes.append("" if relative == "." else relative.strip("/"))
    return prefixes


def _wanted(relative: str, prefixes: Sequence[str]) -> bool:
    return not prefixes or any(
        p == "" or relative == p or relative.startswith(p + "/") for p in prefixes)


@dataclass(frozen=True)
class Comparison:
    """The archive disk and the database side by side (below some paths)."""

    #: path -> (size, mtime) of the archive files on disk
    disk: dict[str, tuple[int, datetime]]
    #: path -> (table: "files" or "rejected", size, mtime) of the recorded files
    recorded: dict[str, tuple[str, int, datetime]]
    #: instrument directory -> the watcher's last scan
    watched: dict[str, datetime]
    #: the roots that could not be listed (an NFS mount that is not there)
    unreadable_roots: tuple[Path, ...] = ()


def compare(config: IngestConfig, dsn: str, paths: Sequence[Path | str] = ()) -> Comparison:
    """Scan the disk (whole archive, or below ``paths``) and read what the database
    records; the one comparison behind the report and ``ingest prune``."""
    prefixes = _prefixes(paths, config)
    disk: dict[str, tuple[int, datetime]] = {}
    unreadable = []
    for root in config.roots:
        try:
            if not root.is_dir() or not any(root.iterdir()):
                unreadable.append(root)
                continue
        except OSError:
            unreadable.append(root)
            continue
        for directory in instrument_dirs(root, config):
            if not (_wanted(directory, prefixes)
                    or any(p.startswith(directory + "/") for p in prefixes)):
                continue
            for f in scan_directory(root, directory, config):
                if _wanted(f.path, prefixes):
                    disk[f.path] = (f.size, f.mtime)
    recorded: dict[str, tuple[str, int, datetime]] = {}
    conn = psycopg2.connect(dsn, application_name="lick-archive-report")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT path, scanned_at FROM ingest.directories")
            watched: dict[str, datetime] = dict(cur.fetchall())
        for table, query in (
            ("files", "SELECT path, file_size, file_mtime FROM lick.files"),
            ("rejected", "SELECT path, size, mtime FROM ingest.rejected_files"),
        ):
            with conn.cursor(name=f"report_{table}") as cur:
                cur.itersize = 20_000
                cur.execute(query)
                for path, size, mtime in cur:
                    if _wanted(path, prefixes):
                        recorded.setdefault(path, (table, size, mtime))
        conn.rollback()
    finally:
        conn.close()
    return Comparison(disk, recorded, watched, tuple(unreadable))


def ingest_report(config: IngestConfig, dsn: str, paths: Sequence[Path | str] = (),
                  ) -> list[ReportLine]:
    """Compare disk and database for the whole archive, or below ``paths``."""
    found = compare(config, dsn, paths)
    disk, recorded, watched = found.disk, found.recorded, found.watched
    counts: dict[tuple[date, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for path in disk.keys() | recorded.keys():
        night = night_of(path)
        if night is None:
            continue
        c = counts[(night, path.split("/")[2])]
        on_disk = disk.get(path)
        row = recorded.get(path)
        if on_disk is not None:
            c["on_disk"] += 1
        if row is not None:
            c["ingested" if row[0] == "files" else "rejected"] += 1
        if on_disk is None:
            c["orphaned"] += 1
        elif row is None:
            c["missing"] += 1
        elif (row[1], row[2]) != on_disk:
            c["stale"] += 1
    return [
        ReportLine(night, instrument, c["on_disk"], c["ingested"], c["rejected"],
                   c["missing"], c["stale"], c["orphaned"],
                   watched.get(f"{night:%Y-%m/%d}/{instrument}"))
        for (night, instrument), c in sorted(counts.items())
    ]


def print_report(lines: Sequence[ReportLine], console: Any, *, only_mismatches: bool = False
                 ) -> None:
    from rich.table import Table

    table = Table(title="archive disk vs database")
    for name in ("night", "instrument", "on disk", "ingested", "rejected", "missing",
                 "stale", "orphaned", "watcher's last scan (UTC)", ""):
        table.add_column(name, justify="left" if name in ("night", "instrument") else "right")
    for line in lines:
        if only_mismatches and line.ok:
            continue
        mark = "[green]ok[/green]" if line.ok else "[bold red]MISMATCH[/bold red]"
        table.add_row(line.night.isoformat(), line.instrument_dir, str(line.on_disk),
                      str(line.ingested), str(line.rejected), str(line.missing),
                      str(line.stale), str(line.orphaned),
                      f"{line.watched_at.astimezone(UTC):%Y-%m-%d %H:%M}" if line.watched_at
                      else "never", mark)
    console.print(table)
    bad = sum(1 for line in lines if not line.ok)
    console.print(f"{len(lines)} night/instrument directories, {bad} with mismatches")
    orphaned = sum(line.orphaned for line in lines)
    if orphaned:
        console.print(f"{orphaned} recorded files are gone from disk: `lick-archive ingest "
                      "prune` lists them (and removes them with --apply)")


def print_summary(summary: IngestSummary, console: Any) -> None:
    """The summary table printed at the end of ``lick-archive ingest``."""
    from rich.table import Table

    title = "ingest summary" + (" (dry run: nothing written)" if summary.dry_run else "")
    table = Table(title=title, show_header=False)
    table.add_row("new", str(summary.new))
    table.add_row("updated", str(summary.updated))
    table.add_row("unchanged", str(summary.unchanged))
    table.add_row("rejected earlier, unchanged", str(summary.still_rejected))
    for reason, count in sorted(summary.rejected.items()):
        table.add_row(f"rejected: {reason}", f"[red]{count}[/red]")
    if summary.ignored:
        table.add_row("ignored (not archive files)", str(summary.ignored))
    rate = summary.total / summary.seconds if summary.seconds > 0 else 0.0
    table.add_row("time", f"{summary.seconds:.1f} s ({rate:,.0f} files/s)")
    console.print(table)

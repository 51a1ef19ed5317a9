"""``lick-archive ingest prune``: rows whose file is gone from the archive disk.

A file deleted or moved on disk leaves its rows behind (``orphaned`` in ``ingest
report``): the service would list a dataset it cannot deliver.  Prune finds them with
the report's comparison, says for each whether a file of the same name and size now
lies elsewhere in the archive (moved: the watcher ingests it at its new path), and —
only with ``apply`` — deletes them (``ivoa.obscore``, ``lick.files`` by cascade, and
``ingest.rejected_files``) in one transaction.

A disk that is not there must never empty the archive: an NFS mount that failed looks
exactly like every file deleted.  So a root that cannot be listed or is empty stops
the run, and a night's instrument directory losing more than ``prune_max_share`` of
its recorded files is refused (reported, not removed) unless ``force``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import psycopg2

from ingest.batch import APPLICATION_NAME
from ingest.config import IngestConfig, IngestError
from ingest.disk import night_of
from ingest.report import compare


@dataclass(frozen=True)
class Gone:
    """A recorded file that is not on disk any more."""

    path: str
    table: str  # "files" (ingested) or "rejected"
    moved_to: tuple[str, ...] = ()  # archive files of the same name and size


@dataclass(frozen=True)
class NightPrune:
    """One night's instrument directory."""

    night: date
    instrument_dir: str
    recorded: int
    gone: tuple[Gone, ...]
    refused: bool  # more than the allowed share, and no force

    @property
    def share(self) -> float:
        return len(self.gone) / self.recorded if self.recorded else 0.0


@dataclass
class PruneResult:
    nights: list[NightPrune] = field(default_factory=list)
    removed: int = 0
    applied: bool = False
    max_share: float = 0.0

    @property
    def gone(self) -> int:
        return sum(len(n.gone) for n in self.nights)

    @property
    def refused(self) -> int:
        return sum(len(n.gone) for n in self.nights if n.refused)


def prune(config: IngestConfig, dsn: str, paths: Sequence[Path | str] = (), *,
          apply: bool = False, force: bool = False) -> PruneResult:
    """Find (and with ``apply`` remove) the rows of files gone from disk below
    ``paths`` (the whole archive when empty)."""
    if not config.roots:
        raise IngestError("no archive roots: set [ingest] roots")
    found = compare(config, dsn, paths)
    if found.unreadable_roots and not force:
        raise IngestError(
            "archive root(s) missing or empty: "
            f"{', '.join(str(r) for r in found.unreadable_roots)}; is the disk mounted? "
            "Nothing was pruned (--force prunes anyway)")
    by_name: dict[tuple[str, int], list[str]] = defaultdict(list)
    for path, (size, _mtime) in found.disk.items():
        if path not in found.recorded:
            by_name[(path.rsplit("/", 1)[-1], size)].append(path)
    groups: dict[tuple[date, str], list[Gone]] = defaultdict(list)
    recorded: dict[tuple[date, str], int] = defaultdict(int)
    for path, (table, size, _mtime) in found.recorded.items():
        night = night_of(path)
        if night is None:
            continue
        key = (night, path.split("/")[2])
        recorded[key] += 1
        if path not in found.disk:
            moved = tuple(sorted(by_name.get((path.rsplit("/", 1)[-1], size), ())))
            groups[key].append(Gone(path, table, moved))
    result = PruneResult(max_share=config.prune_max_share)
    for key in sorted(groups):
        gone = tuple(sorted(groups[key], key=lambda g: g.path))
        refused = not force and len(gone) > config.prune_max_share * recorded[key]
        result.nights.append(NightPrune(key[0], key[1], recorded[key], gone, refused))
    if apply:
        result.removed = _remove([g for n in result.nights if not n.refused for g in n.gone],
                                 dsn)
        result.applied = True
    return result


def _remove(gone: Sequence[Gone], dsn: str) -> int:
    """Delete the rows of ``gone`` in one transaction; the count of paths removed.

    A row whose file came back meanwhile (same path) is still removed here and
    re-ingested by the next watcher poll or ``ingest``: nothing is lost."""
    if not gone:
        return 0
    files = [g.path for g in gone if g.table == "files"]
    rejected = [g.path for g in gone if g.table == "rejected"]
    conn = psycopg2.connect(dsn, application_name=APPLICATION_NAME)
    try:
        with conn, conn.cursor() as cur:
            # the archive row goes with its ObsCore row (ON DELETE CASCADE)
            cur.execute("DELETE FROM ivoa.obscore WHERE obs_publisher_did IN"
                        " (SELECT obs_publisher_did FROM lick.files WHERE path = ANY(%s))",
                        (files,))
            removed = cur.rowcount
            cur.execute("DELETE FROM lick.files WHERE path = ANY(%s)", (files,))
            removed += cur.rowcount
            cur.execute("DELETE FROM ingest.rejected_files WHERE path = ANY(%s)", (rejected,))
            removed += cur.rowcount
    finally:
        conn.close()
    return removed


def print_prune(result: PruneResult, console: object) -> None:
    """The rich rendering: each night directory, its files, what was (or would be) done."""
    from rich.console import Console
    from rich.table import Table

    assert isinstance(console, Console)
    if not result.nights:
        console.print("no recorded file is missing from disk: nothing to prune")
        return
    table = Table(title="files gone from disk" + ("" if result.applied else
                                                   " (dry run: nothing removed)"))
    for name in ("night", "instrument", "path", "recorded as", "now at", "action"):
        table.add_column(name)
    for night in result.nights:
        action = ("[bold red]refused[/bold red] "
                  f"({len(night.gone)}/{night.recorded} > {result.max_share:.0%}; --force)"
                  if night.refused else ("removed" if result.applied else "would remove"))
        for gone in night.gone:
            table.add_row(night.night.isoformat(), night.instrument_dir, gone.path,
                          "ingested" if gone.table == "files" else "rejected",
                          ", ".join(gone.moved_to) or "-", action)
    console.print(table)
    if result.applied:
        console.print(f"{result.removed} rows removed; {result.refused} files refused")
    else:
        console.print(f"{result.gone - result.refused} files would be removed, "
                      f"{result.refused} refused; run with --apply to remove them")

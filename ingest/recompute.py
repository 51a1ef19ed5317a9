"""Re-applying the access rules to rows already in the database.

Used by ``lick-archive access recompute`` (a schedule or override changed) and by the
watcher when a directory's override file changes.  The header's own frame type is not
stored, so a row whose frame type was set by an override is read again from disk when
the rules are re-applied; everything else comes from the stored row.  It needs a
connection and the access rules, not the loader: the watcher lends it its own.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions

from ingest.access import override_file
from ingest.batch import APPLICATION_NAME, OVERRIDE_FLAG, AccessRules, flags_with, read_one
from ingest.config import IngestConfig
from ingest.disk import find_root, mtime_of, stat_file
from ingest.schedule import ScheduleSource


@dataclass
class RecomputeSummary:
    examined: int = 0
    changed: int = 0
    reread: int = 0


@dataclass(frozen=True)
class OverrideState:
    """The override file in force in a directory as seen on disk (all None: none)."""

    name: str | None
    size: int | None
    mtime: datetime | None

    @classmethod
    def of(cls, directory: Path) -> OverrideState:
        path = override_file(directory)
        if path is None:
            return cls(None, None, None)
        try:
            st = path.stat()
        except OSError:
            return cls(None, None, None)
        return cls(path.name, st.st_size, mtime_of(st))


def target_filter(target: str | date | Path, config: IngestConfig) -> tuple[str, list[Any]]:
    """SQL condition on ``lick.files f`` for a night, a file or a directory."""
    if isinstance(target, str):
        with contextlib.suppress(ValueError):
            target = date.fromisoformat(target)
    if isinstance(target, date):
        return "f.night = %s", [target]
    path = Path(target)
    if path.is_absolute():
        root = find_root(path, config)
        relative = path.resolve().relative_to(root.resolve()).as_posix()
    else:
        relative = path.as_posix()
    relative = relative.strip("/")
    if relative in ("", "."):
        return "TRUE", []
    pattern = relative.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"
    return "(f.path = %s OR f.path LIKE %s)", [relative, pattern]


def recompute_access(config: IngestConfig, dsn: str, target: str | date | Path, *,
                     schedule: ScheduleSource | None = None) -> RecomputeSummary:
    """``lick-archive access recompute PATH|NIGHT``: re-apply the access rules.

    ``target`` is a night (``date`` or ``YYYY-MM-DD``), or a file or directory
    (absolute below a root, or relative to the roots).  Schedule answers and override
    rules are read afresh; rows whose owners, release date, rights or overridden
    frame type change are updated in one transaction.
    """
    rules = AccessRules(config, dsn, schedule)
    conn = psycopg2.connect(dsn, application_name=APPLICATION_NAME)
    try:
        return recompute(conn, rules, target)
    finally:
        conn.close()
        rules.close()


def recompute(conn: psycopg2.extensions.connection, rules: AccessRules,
              target: str | date | Path) -> RecomputeSummary:
    """Re-apply the rules to the rows of ``target`` in one transaction on ``conn``."""
    config = rules.config
    where, args = target_filter(target, config)
    rules.forget()
    summary = RecomputeSummary()
    directories: dict[tuple[Path, str], OverrideState] = {}
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT f.path, f.frame_type, f.program, f.observer, f.ingest_flags,"
                " f.owner_ids, f.release_date, o.data_rights, f.obs_publisher_did"
                " FROM lick.files f JOIN ivoa.obscore o USING (obs_publisher_did)"
                f" WHERE {where} ORDER BY f.path FOR UPDATE OF f, o", args)
            for (path, frame_type, program, observer, flags, owners, release, rights,
                 did) in cur.fetchall():
                summary.examined += 1
                directory = path.rsplit("/", 1)[0]
                root = next((r for r in config.roots if (r / directory).is_dir()),
                            config.roots[0] if config.roots else Path("/"))
                base = frame_type
                if OVERRIDE_FLAG in (flags or "").split():
                    # The header's own frame type is not stored: read it again.
                    disk = stat_file(root, path)
                    if disk is not None:
                        result = read_one(disk, config)
                        summary.reread += 1
                        if result.meta is not None:
                            base = result.meta.frame_type
                decision = rules.decide(root, path, base, program, observer)
                new_type = decision.obstype_override or base
                new_flags = flags_with(flags, OVERRIDE_FLAG, new_type != base)
                old_release = release.date() if isinstance(release, datetime) else release
                if (tuple(owners or ()), old_release, rights, frame_type, flags or "") == (
                        decision.owner_ids, decision.release_date, decision.data_rights,
                        new_type, new_flags):
                    directories.setdefault((root, directory), OverrideState.of(root / directory))
                    continue
                summary.changed += 1
                cur.execute(
                    "UPDATE lick.files SET owner_ids = %s, release_date = %s, frame_type = %s,"
                    " ingest_flags = %s WHERE path = %s",
                    (list(decision.owner_ids), decision.release_date, new_type, new_flags, path))
                cur.execute(
                    "UPDATE ivoa.obscore SET owner_ids = %s, obs_release_date = %s,"
                    " data_rights = %s WHERE obs_publisher_did = %s",
                    (list(decision.owner_ids), decision.release_date, decision.data_rights,
                     did))
                directories.setdefault((root, directory), OverrideState.of(root / directory))
            for (_, directory), state in directories.items():
                record_override_state(cur, directory, state)
        conn.commit()
    except BaseException:
        with contextlib.suppress(psycopg2.Error):
            conn.rollback()
        raise
    return summary


def record_override_state(cur: psycopg2.extensions.cursor, directory: str,
                          state: OverrideState) -> None:
    cur.execute(
        "INSERT INTO ingest.override_files (directory, name, size, mtime) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (directory) DO UPDATE SET name = EXCLUDED.name, size = EXCLUDED.size,"
        " mtime = EXCLUDED.mtime, applied_at = now()",
        (directory, state.name, state.size, state.mtime))

"""Schedule edits re-applied to the archive: the runs last applied against today's.

Access (owners, release date) is computed at ingest from the scheduling database. When
the observatory edits a run afterwards — an observer added, nights moved, a release
date changed — the rows of the nights concerned must follow, without anyone running
``access recompute``.  :func:`apply_schedule_changes` keeps, in
``ingest.schedule_runs``, a fingerprint of every run whose rules are in force; it
compares them with the scheduling database's runs, re-applies the access rules
(:func:`ingest.recompute.recompute`) to every night that a new, changed or removed run
covered or covers and that holds files, then records the runs as applied.  A crash in
between only means the same nights are recomputed again (recompute is idempotent).

The first call on an archive records the schedule as it is and changes nothing: the
rows were computed from it at ingest (after an upgrade, an edit made before the first
watcher run needs one ``access recompute``).  The watcher calls this every
``schedule_check_seconds``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import psycopg2
import psycopg2.extensions

from ingest.batch import AccessRules
from ingest.recompute import recompute
from ingest.schedule import Run

log = logging.getLogger(__name__)


@dataclass
class ScheduleChanges:
    """What one comparison found and did."""

    baseline: bool = False  # the first call: runs recorded, nothing recomputed
    changed_runs: list[str] = field(default_factory=list)
    nights: list[date] = field(default_factory=list)
    examined: int = 0
    changed_rows: int = 0


def fingerprint(run: Run) -> str:
    """Everything of a run that ownership and release dates depend on."""
    text = "|".join((run.telescope.casefold(), run.first_night.isoformat(),
                     run.last_night.isoformat(),
                     run.release_date.isoformat() if run.release_date else "",
                     run.program or "", ",".join(str(o) for o in sorted(run.observer_ids))))
    return hashlib.sha256(text.encode()).hexdigest()


def apply_schedule_changes(conn: psycopg2.extensions.connection, rules: AccessRules,
                           runs: Sequence[Run]) -> ScheduleChanges:
    """Compare ``runs`` (the scheduling database's, read afresh) with those applied,
    recompute the affected nights on ``conn`` (``rules``: the caller's
    access rules) and record ``runs`` as applied."""
    result = ScheduleChanges()
    with conn.cursor() as cur:
        cur.execute("SELECT run_id, first_night, last_night, fingerprint"
                    " FROM ingest.schedule_runs")
        applied = {row[0]: (row[1], row[2], row[3]) for row in cur.fetchall()}
    conn.rollback()
    current = {run.run_id: run for run in runs}
    ranges: list[tuple[date, date]] = []
    if not applied:
        result.baseline = True
    else:
        for run_id in sorted(applied.keys() | current.keys()):
            old = applied.get(run_id)
            new = current.get(run_id)
            if old is not None and new is not None and old[2] == fingerprint(new):
                continue
            result.changed_runs.append(run_id)
            if old is not None:
                ranges.append((old[0], old[1]))
            if new is not None:
                ranges.append((new.first_night, new.last_night))
    if ranges:
        result.nights = _nights_with_files(conn, ranges)
    for night in result.nights:
        summary = recompute(conn, rules, night)
        result.examined += summary.examined
        result.changed_rows += summary.changed
    if result.baseline or result.changed_runs:
        _record(conn, runs)
    if result.changed_runs:
        log.info("schedule changed (runs %s): access re-applied to %d nights, %d of %d "
                 "rows changed", ", ".join(result.changed_runs), len(result.nights),
                 result.changed_rows, result.examined)
    return result


def _nights_with_files(conn: psycopg2.extensions.connection,
                       ranges: Sequence[tuple[date, date]]) -> list[date]:
    with conn.cursor() as cur:
        cur.execute("SELECT DISTINCT f.night FROM lick.files f JOIN unnest(%s::date[], "
                    "%s::date[]) AS r(first_night, last_night) ON f.night BETWEEN "
                    "r.first_night AND r.last_night ORDER BY 1",
                    ([r[0] for r in ranges], [r[1] for r in ranges]))
        nights = [row[0] for row in cur.fetchall()]
    conn.rollback()
    return nights


def _record(conn: psycopg2.extensions.connection, runs: Sequence[Run]) -> None:
    with conn.cursor() as cur:
        cur.execute("DELETE FROM ingest.schedule_runs WHERE NOT (run_id = ANY(%s))",
                    ([run.run_id for run in runs],))
        for run in runs:
            cur.execute(
                "INSERT INTO ingest.schedule_runs (run_id, telescope, first_night, last_night,"
                " fingerprint) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (run_id) DO UPDATE SET"
                " telescope = EXCLUDED.telescope, first_night = EXCLUDED.first_night,"
                " last_night = EXCLUDED.last_night, fingerprint = EXCLUDED.fingerprint,"
                " applied_at = now() WHERE ingest.schedule_runs.fingerprint IS DISTINCT FROM"
                " EXCLUDED.fingerprint",
                (run.run_id, run.telescope, run.first_night, run.last_night,
                 fingerprint(run)))
    conn.commit()

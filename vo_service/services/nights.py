"""An observer's nights: their runs from the scheduling database, with the archive's files.

The runs come from the observatory's scheduling database (the tables ingest reads
its ownership rules from: ``runs`` and ``run_observers``), on a small pool of its
own.  What the archive holds for each run is counted by one ADQL query run as the
observer through the TAP service (:func:`~vo_service.services.search.run_query`),
so the counts are exactly the files the observer may see — their own and the public
ones — never a row that row-level security hides.

Blocking: :func:`observer_runs` in a thread of the ``schedule`` pool,
:func:`summarise` in a thread of the TAP ``query`` pool.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg2

from auth.principals import Principal
from vo_service.database.errors import RETRY_AFTER_S
from vo_service.database.pool import Pool
from vo_service.errors import TransientFault
from vo_service.services.search import run_query
from vo_service.services.tap import TapService

log = logging.getLogger("lick_archive.nights")

#: runs listed at most (the newest)
MAX_RUNS = 500


@dataclass(frozen=True)
class ScheduledRun:
    run_id: str
    telescope: str
    first_night: date
    last_night: date
    release_date: date | None
    program: str | None


@dataclass
class RunSummary:
    """A run and the archive's files of its telescope and nights that the observer sees."""

    run: ScheduledRun
    files: int = 0
    proprietary: int = 0
    first_release: str | None = None
    last_release: str | None = None
    nights_with_files: set[str] = field(default_factory=set)


def observer_runs(pool: Pool, observer_id: int) -> list[ScheduledRun]:
    """The observer's runs, newest first (the scheduling database's own schema).

    The schedule is the observatory's database, not ours: when it cannot be reached
    (or lacks the tables), the page says so with a 503, and nothing else fails.
    """
    try:
        with pool.connection() as conn:
            try:
                with conn.cursor() as cur:
                    cur.execute(
                        "SELECT r.run_id, r.telescope, r.first_night, r.last_night, "
                        "r.release_date, r.program FROM runs AS r JOIN run_observers AS o "
                        "USING (run_id) WHERE o.obid = %s ORDER BY r.first_night DESC, "
                        "r.run_id LIMIT %s", (observer_id, MAX_RUNS))
                    return [ScheduledRun(str(r[0]), str(r[1]), r[2], r[3], r[4], r[5])
                            for r in cur.fetchall()]
            finally:
                conn.rollback()
    except (psycopg2.Error, TransientFault) as exc:  # the pool maps connection failures
        log.warning("scheduling database unavailable: %s", exc)
        raise TransientFault("the observatory's scheduling database cannot be read right "
                             "now; try again in a while", retry_after=RETRY_AFTER_S) from exc


def files_adql(runs: list[ScheduledRun]) -> str:
    """Counts per telescope, night and rights over the nights the runs span."""
    first = min(r.first_night for r in runs).isoformat()
    last = max(r.last_night for r in runs).isoformat()
    return ("SELECT telescope, night, data_rights, COUNT(*) AS n, MIN(release_date) AS first, "
            "MAX(release_date) AS last\nFROM lick.files JOIN ivoa.obscore USING "
            f"(obs_publisher_did)\nWHERE night BETWEEN '{first}' AND '{last}'\n"
            "GROUP BY telescope, night, data_rights")


def summarise(tap: TapService, principal: Principal, runs: list[ScheduledRun]
              ) -> list[RunSummary]:
    summaries = [RunSummary(run) for run in runs]
    if not runs:
        return summaries
    result = run_query(tap, principal, files_adql(runs), 1_000_000)
    for telescope, night, rights, count, first, last in result.rows:
        night_text = str(night)[:10]
        for summary in summaries:
            run = summary.run
            if (str(telescope or "").lower() != run.telescope.lower()
                    or not run.first_night.isoformat() <= night_text
                    <= run.last_night.isoformat()):
                continue
            summary.files += int(count)
            if rights != "public":
                summary.proprietary += int(count)
            summary.nights_with_files.add(night_text)
            summary.first_release = _earlier(summary.first_release, first)
            summary.last_release = _later(summary.last_release, last)
    return summaries


def _earlier(a: str | None, b: Any) -> str | None:
    b = None if b is None else str(b)[:10]
    return b if a is None else a if b is None else min(a, b)


def _later(a: str | None, b: Any) -> str | None:
    b = None if b is None else str(b)[:10]
    return b if a is None else a if b is None else max(a, b)

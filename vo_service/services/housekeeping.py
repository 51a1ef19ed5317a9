"""Periodic work that keeps the database true and bounded, in one background thread.

* ``ivoa.obscore.data_rights``: visibility never depends on this column (row-level
  security compares release dates with the current observing night on every query),
  but ObsCore clients read it: once a row's release date has passed it must say
  ``public``.  The update touches only rows whose state changed, through the
  release-date index.
* The identity tables: expired web sessions, login attempts older than the throttle
  needs and audit records beyond their retention are purged (in short batches, by
  :func:`auth.housekeeping.purge`), so they stay bounded however long it runs.

It runs at start-up and then every ``interval`` seconds on a pool of its own; a
database outage is logged and retried at the next round.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from auth import housekeeping
from vo_service.database.pool import Pool
from vo_service.settings import AuthSettings

log = logging.getLogger("lick_archive.housekeeping")

REFRESH_SQL = """
UPDATE ivoa.obscore SET data_rights = 'public'
WHERE data_rights IS DISTINCT FROM 'public'
  AND obs_release_date < auth.public_before()
"""


def refresh_data_rights(pool: Pool) -> int:
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute(REFRESH_SQL)
        changed = cur.rowcount
        conn.commit()
    if changed:
        log.info("%d datasets became public", changed)
    return changed


def purge_identity_records(pool: Pool, auth: AuthSettings) -> None:
    counts = housekeeping.purge(
        pool.connection,
        attempts_older_than=timedelta(days=auth.login_attempts_retention_days),
        audit_older_than=timedelta(days=auth.audit_retention_days),
        throttle_window=timedelta(seconds=auth.throttle_window_s))
    if counts.sessions or counts.login_attempts or counts.audit_events:
        log.info("purged %d expired sessions, %d old login attempts, %d old audit events",
                 counts.sessions, counts.login_attempts, counts.audit_events)


class Housekeeping:
    """A daemon thread running every task every ``interval`` seconds."""

    def __init__(self, pool: Pool, auth: AuthSettings, interval: float) -> None:
        self.pool = pool
        self.auth = auth
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="housekeeping", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def run_once(self) -> None:
        refresh_data_rights(self.pool)
        purge_identity_records(self.pool, self.auth)

    def _run(self) -> None:
        while True:
            try:
                self.run_once()
            except Exception:  # a database outage must not end the thread
                log.exception("housekeeping failed; will retry")
            if self._stop.wait(self.interval):
                return

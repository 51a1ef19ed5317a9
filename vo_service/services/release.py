"""Keeping ``ivoa.obscore.data_rights`` true as release dates pass.

Visibility never depends on this column (row-level security compares release dates
with the current observing night on every query), but ObsCore clients read
``data_rights``: once a row's release date has passed it must say ``public``.  The
service refreshes it at start-up and then every UWS sweep interval; the update
touches only rows whose state changed, through the release-date index.
"""

from __future__ import annotations

import logging
import threading

from vo_service.context import AppContext

log = logging.getLogger("lick_archive.release")

REFRESH_SQL = """
UPDATE ivoa.obscore SET data_rights = 'public'
WHERE data_rights IS DISTINCT FROM 'public'
  AND obs_release_date < auth.public_before()
"""


def refresh_data_rights(ctx: AppContext) -> int:
    with ctx.database.owner() as conn, conn.cursor() as cur:
        cur.execute(REFRESH_SQL)
        changed = cur.rowcount
        conn.commit()
    if changed:
        log.info("%d datasets became public", changed)
    return changed


class ReleaseRefresher:
    """A daemon thread calling :func:`refresh_data_rights` every ``interval`` seconds."""

    def __init__(self, ctx: AppContext, interval: float) -> None:
        self.ctx = ctx
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="release-refresh", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            try:
                refresh_data_rights(self.ctx)
            except Exception:  # a database outage must not end the thread
                log.exception("refreshing data_rights failed; will retry")
            if self._stop.wait(self.interval):
                return

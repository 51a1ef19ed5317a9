"""Is the service able to answer? (VOSI availability).

The check runs one trivial query on a pool of its own, so it answers within
milliseconds while every query slot is busy with slow queries; a success is reused
for a second, so a crowd of monitors costs the database almost nothing.  A failure is
never reused: the first check after the database is back reports it available.
"""

from __future__ import annotations

import time
from datetime import datetime

import psycopg2

from vo_service.database.pool import Pool
from vo_service.errors import ServiceError
from vo_service.serialize.vosi import availability

_REUSE_S = 1.0


class Health:
    def __init__(self, pool: Pool, started: datetime) -> None:
        self.pool = pool
        self.started = started
        self._last_ok = -_REUSE_S
        self._note = ""

    async def document(self) -> bytes:
        available, note = await self.check()
        return availability(available, note, self.started)

    async def check(self) -> tuple[bool, str]:
        if time.monotonic() - self._last_ok < _REUSE_S:
            return True, self._note
        try:
            count = await self.pool.run_with(_published_tables)
        except (ServiceError, psycopg2.Error) as exc:
            message = exc.message if isinstance(exc, ServiceError) else "unreachable"
            return False, f"the database is not answering: {message}"
        self._note = f"service is accepting queries; {count} tables published"
        self._last_ok = time.monotonic()
        return True, self._note


def _published_tables(conn: psycopg2.extensions.connection) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM tap_schema.tables")
        row = cur.fetchone()
    return int(row[0]) if row else 0

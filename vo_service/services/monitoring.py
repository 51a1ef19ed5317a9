"""What monitoring reads: the ``/metrics`` exposition and the readiness check.

The request, pool, query and job counters are kept as they happen
(:mod:`vo_service.metrics`); the figures that live in the database — async jobs by
phase, files by instrument, rejected files by reason, whoever ingested them — are read
here at scrape time, on a one-connection pool of their own (the owner role: the counts
cover every row), at most every ``ARCHIVE_REFRESH_S`` seconds.  A database that does
not answer keeps the last figures: the scrape itself still succeeds (``/readyz`` and
the pools' refusals say the database is away).

The figures are aggregates over proprietary rows too, so ``/metrics`` is served only
to the networks in ``[service] metrics_clients`` (loopback by default; a proxy's
clients arrive with their own forwarded address and are refused).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

import anyio
import anyio.to_thread
import psycopg2
import psycopg2.extensions

from vo_service.database.pool import Pool
from vo_service.errors import ServiceError
from vo_service.metrics import Metrics
from vo_service.settings import SettingsError

log = logging.getLogger("lick_archive.monitoring")

_FIGURES = (
    "SELECT phase, count(*) FROM uws.jobs GROUP BY phase",
    "SELECT instrument, count(*) FROM lick.files GROUP BY instrument",
    "SELECT reason, count(*) FROM ingest.rejected_files GROUP BY reason",
)


class Monitoring:
    def __init__(self, pool: Pool, metrics: Metrics, clients: Sequence[str]) -> None:
        self.pool = pool
        self.metrics = metrics
        #: one scrape rendered at a time (a thread of its own, no connection)
        self._exposition = anyio.CapacityLimiter(1)
        try:
            self.clients = tuple(ipaddress.ip_network(c, strict=False) for c in clients)
        except ValueError as exc:
            raise SettingsError(f"configuration key service.metrics_clients: {exc}") from exc

    def may_scrape(self, address: str) -> bool:
        try:
            client = ipaddress.ip_address(address)
        except ValueError:  # "unknown", a unix socket
            return False
        return any(client in network for network in self.clients)

    async def exposition(self) -> bytes:
        if self.metrics.archive_stale():
            try:
                jobs, files, rejected = await self.pool.run_with(_read_figures)
            except (ServiceError, psycopg2.Error) as exc:
                log.warning("metrics: the database figures could not be read (%s); "
                            "the last ones are reported", exc)
            else:
                self.metrics.set_archive(jobs, files, rejected)
        # In multiprocess mode this reads every worker's files: off the event loop.
        return await anyio.to_thread.run_sync(self.metrics.exposition,
                                              limiter=self._exposition)


def _read_figures(conn: psycopg2.extensions.connection
                  ) -> tuple[list[tuple[str, int]], ...]:
    figures = []
    with conn.cursor() as cur:
        for statement in _FIGURES:
            cur.execute(statement)
            figures.append([(str(key or "unknown"), int(n)) for key, n in cur.fetchall()])
    conn.rollback()
    return tuple(figures)

"""Hot standbys that user queries may read from, and whether each is fresh enough.

PostgreSQL streaming replication keeps standbys that answer read-only queries.  The
service sends user queries (TAP, SIA, DataLink lookups, pages' searches) to them and
everything that writes (jobs, sessions, audit, ingest) to the primary.  A standby is
used only while it keeps up: every ``check_s`` seconds the primary's WAL position is
read, and a standby whose replay has not reached the position read one check earlier
(it is more than about ``check_s`` behind) — or that cannot be reached — is skipped
until it catches up.  Comparing WAL positions, not replay timestamps, keeps an idle
primary from looking like lag.

Row-level security holds on a standby as on the primary: the policies, the users and
the identity secret are replicated, and the identity assertion only sets
transaction-local settings.  Uploads need temporary tables, which a standby cannot
create: those queries stay on the primary (services/tap.py).
"""

from __future__ import annotations

import logging
import random
import re
import threading

import psycopg2

log = logging.getLogger("lick_archive.replicas")

_LSN = "SELECT pg_current_wal_lsn()::text"
_REPLAY = "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text"


def _lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


class Replicas:
    """The standbys of one primary (``dsns``: query-role connection strings)."""

    def __init__(self, primary_dsn: str, dsns: tuple[str, ...], check_s: float) -> None:
        self.primary_dsn = primary_dsn
        self.dsns = dsns
        self.check_s = check_s
        self._healthy: frozenset[str] = frozenset()
        self._previous_primary: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="replica-check", daemon=True)

    # -- what the pools ask ------------------------------------------------------------

    def pick(self) -> str | None:
        """A standby fresh enough to read from, or None (read from the primary)."""
        with self._lock:
            healthy = list(self._healthy)
        return random.choice(healthy) if healthy else None

    def usable(self, dsn: str) -> bool:
        """Whether a connection made to ``dsn`` may keep serving reads: a standby's
        while it keeps up; the primary's only while no standby does (reads go back to
        the standbys once they caught up)."""
        with self._lock:
            return dsn in self._healthy if dsn in self.dsns else not self._healthy

    def failed(self, dsn: str) -> None:
        """A standby refused a connection: skip it until the next check finds it well."""
        with self._lock:
            self._healthy = self._healthy - {dsn}

    # -- the checks --------------------------------------------------------------------

    def start(self) -> None:
        self.check()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def check(self) -> frozenset[str]:
        """Read the primary's position and each standby's replay; update the healthy set."""
        try:
            primary = self._read(self.primary_dsn, _LSN)
            current = _lsn(str(primary[0]))
        except (psycopg2.Error, ValueError) as exc:
            log.warning("cannot read the primary's WAL position (%s); standbys unchecked",
                        exc)
            return self._healthy
        required = self._previous_primary if self._previous_primary is not None else current
        healthy = set()
        for dsn in self.dsns:
            try:
                in_recovery, replayed = self._read(dsn, _REPLAY)
            except psycopg2.Error as exc:
                log.info("standby %s unreachable: %s", _where(dsn), str(exc).strip())
                continue
            if in_recovery and replayed is not None and _lsn(str(replayed)) >= required:
                healthy.add(dsn)
            else:
                log.info("standby %s behind or not a standby; reading from the primary",
                         _where(dsn))
        with self._lock:
            self._healthy = frozenset(healthy)
        self._previous_primary = current
        return self._healthy

    @staticmethod
    def _read(dsn: str, sql: str) -> tuple[object, ...]:
        conn = psycopg2.connect(dsn, connect_timeout=3, application_name="lick-archive check")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql)
                row = cur.fetchone()
        finally:
            conn.close()
        assert row is not None
        return tuple(row)

    def _run(self) -> None:
        while not self._stop.wait(self.check_s):
            try:
                self.check()
            except Exception:  # never let the checker die
                log.exception("checking the standbys failed")


def _where(dsn: str) -> str:
    """A DSN (key=value or URL) for the log, without its password."""
    if "://" in dsn:
        return re.sub(r"://([^:@/]*):[^@]*@", r"://\1:***@", dsn)
    return " ".join(part for part in dsn.split() if not part.startswith("password"))

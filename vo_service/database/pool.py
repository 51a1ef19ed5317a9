"""Connection pools, one per purpose, each with its own admission and thread limiter.

psycopg2 blocks, so database work runs in worker threads.  The rule that keeps the
service from stalling (docs/architecture.md) is enforced here:

* every purpose (identity lookups, query start and streaming, UWS requests, pages,
  the availability probe) has a :class:`Pool` of its own: a SQLAlchemy ``QueuePool``
  of ``size`` connections (pre-ping: a connection left broken by a database restart is
  replaced on checkout instead of failing the request), an **admission** semaphore of
  ``size`` slots awaited on the event loop, and a thread limiter of ``size`` tokens;
* a request first waits, without holding a thread or a connection, for an admission
  slot (FIFO, at most ``admission_wait_s`` seconds, then 503 with Retry-After); only
  then does it take a thread and a connection, which are therefore always free;
* a streamed result keeps its slot and its connection until the stream ends, and
  pulls each chunk through the same limiter: there are never more holders of a slot
  than tokens, so a stream never waits for a token another request holds.

Background work (the UWS runner, housekeeping) uses pools of its own from its own
threads, with :meth:`Pool.connection` and no admission.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
import psycopg2
import psycopg2.extensions
import sqlalchemy
import sqlalchemy.event
import sqlalchemy.exc
from sqlalchemy.pool import PoolProxiedConnection

from vo_service.database.errors import RETRY_AFTER_S, database_fault
from vo_service.database.replicas import Replicas
from vo_service.errors import TransientFault

if TYPE_CHECKING:  # prometheus_client is imported by the app, after `serve` set it up
    from vo_service.metrics import Metrics

T = TypeVar("T")
log = logging.getLogger("lick_archive.database")

Connection = psycopg2.extensions.connection
#: Seconds a connection of a pool that reads from standbys lives before it is renewed.
RENEW_S = 300


class _Targeted(psycopg2.extensions.connection):
    """A connection that remembers which server (primary or standby) it went to."""

    target: str = ""


class Pool:
    """``size`` connections to one role for one purpose (see the module docstring).

    With ``replicas`` (read-only purposes only), each new connection goes to a standby
    fresh enough to read from, else to ``dsn`` (the primary); a connection whose standby
    fell behind or went away, or one to the primary once a standby caught up, is
    replaced at its next checkout, and connections are renewed every few minutes so
    that they spread over standbys.
    Nothing connects before the first use.
    """

    def __init__(self, name: str, dsn: str, size: int, *, admission_wait_s: float = 30.0,
                 replicas: Replicas | None = None, session_dsn: str | None = None,
                 metrics: Metrics | None = None) -> None:
        if size < 1:
            raise ValueError(f"pool {name} needs at least one connection")
        self.name = name
        self.size = size
        self.admission_wait_s = admission_wait_s
        self._dsn = dsn
        self._session_dsn = session_dsn or dsn
        self._replicas = replicas
        self._engine: sqlalchemy.Engine | None = None
        self._admission = anyio.Semaphore(size)
        self.limiter = anyio.CapacityLimiter(size)
        #: admissions, waits, refusals and slots in use (``/metrics``)
        self._metrics = metrics.pool(name, size) if metrics is not None else None

    @property
    def dsn(self) -> str:
        """For the sessions that cannot be pooled (LISTEN, a held advisory lock): the
        database itself, even when the pool goes through pgbouncer."""
        return self._session_dsn

    # -- lifecycle ---------------------------------------------------------------------

    def open(self) -> None:
        if self._engine is None:
            self._engine = sqlalchemy.create_engine(
                "postgresql+psycopg2://", creator=self._connect, pool_size=self.size,
                max_overflow=0, pool_timeout=self.admission_wait_s, pool_pre_ping=True,
                pool_reset_on_return="rollback",
                pool_recycle=RENEW_S if self._replicas is not None else -1)
            if self._replicas is not None:
                sqlalchemy.event.listen(self._engine, "checkout", self._still_fresh)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _connect(self) -> Connection:
        target = self._replicas.pick() if self._replicas is not None else None
        if target is not None:
            try:
                return self._connect_to(target)
            except psycopg2.OperationalError:
                assert self._replicas is not None
                self._replicas.failed(target)  # read from the primary meanwhile
        return self._connect_to(self._dsn)

    def _connect_to(self, dsn: str) -> Connection:
        name = f"lick-archive {self.name}"
        conn = psycopg2.connect(dsn, connection_factory=_Targeted, application_name=name)
        conn.target = dsn
        return conn

    def _still_fresh(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        """On checkout: a connection to a standby that fell behind, or to the primary
        while a standby could serve, is replaced."""
        assert self._replicas is not None
        if not self._replicas.usable(getattr(dbapi_connection, "target", self._dsn)):
            raise sqlalchemy.exc.DisconnectionError("reads belong elsewhere now")

    # -- blocking use (worker threads) ---------------------------------------------------

    def checkout(self) -> PoolProxiedConnection:
        """A pooled connection; give it back with :func:`release`.

        A database that cannot be reached is a :class:`TransientFault` (503).
        """
        if self._engine is None:
            raise RuntimeError(f"pool {self.name} is not open")
        try:
            return self._engine.raw_connection()
        except sqlalchemy.exc.TimeoutError as exc:
            raise TransientFault("all database connections are busy; try again shortly",
                                 retry_after=RETRY_AFTER_S) from exc
        except sqlalchemy.exc.DBAPIError as exc:
            raise database_fault(exc.orig if isinstance(exc.orig, Exception) else exc) \
                from exc
        except psycopg2.Error as exc:  # raised by the creator: no connection at all
            raise database_fault(exc) from exc

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection for one unit of work; the caller commits, anything else rolls back.

        A connection that failed (the database restarted, the network broke) is thrown
        away instead of going back to the pool, and the failure becomes a
        :class:`TransientFault`.
        """
        proxied = self.checkout()
        conn: Connection = proxied.dbapi_connection  # type: ignore[assignment]
        try:
            yield conn
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            release(proxied, broken=True)
            raise database_fault(exc) from exc
        except BaseException:
            release(proxied, broken=bool(conn.closed))
            raise
        else:
            release(proxied, broken=bool(conn.closed))

    # -- from the event loop -------------------------------------------------------------

    @asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        """Hold one admission slot (FIFO); 503 after ``admission_wait_s`` seconds."""
        await self.admit()
        try:
            yield
        finally:
            self.leave()

    async def admit(self) -> None:
        """Take a slot for work that outlives one call (a stream); :meth:`leave` ends it."""
        started = time.perf_counter()
        try:
            with anyio.fail_after(self.admission_wait_s):
                await self._admission.acquire()
        except TimeoutError:
            if self._metrics is not None:
                self._metrics.refused(time.perf_counter() - started)
            raise TransientFault(
                f"the service is busy ({self.name}: all {self.size} slots in use for "
                f"{self.admission_wait_s:.0f} s); try again shortly",
                retry_after=RETRY_AFTER_S) from None
        if self._metrics is not None:
            self._metrics.admitted(time.perf_counter() - started)

    def leave(self) -> None:
        self._admission.release()
        if self._metrics is not None:
            self._metrics.left()

    async def call(self, function: Callable[[], T]) -> T:
        """Run ``function`` in a worker thread; the caller holds an admission slot."""
        return await anyio.to_thread.run_sync(function, limiter=self.limiter)

    async def run(self, function: Callable[[], T]) -> T:
        """Admission, then ``function`` in a worker thread: blocking work of one request."""
        async with self.admitted():
            return await self.call(function)

    async def run_with(self, function: Callable[[Connection], T]) -> T:
        """Like :meth:`run`, with a connection of this pool handed to ``function``."""
        def work() -> T:
            with self.connection() as conn:
                return function(conn)
        return await self.run(work)

    @property
    def in_use(self) -> int:
        """Admission slots taken right now (for metrics and tests)."""
        return self.size - int(self._admission.value)


def release(proxied: PoolProxiedConnection, *, broken: bool) -> None:
    """Give a connection back to its pool (rolled back), or discard a broken one."""
    try:
        if broken:
            proxied.invalidate()
        proxied.close()
    except Exception:  # a connection that cannot even be closed is already gone
        log.debug("discarding a broken connection failed", exc_info=True)

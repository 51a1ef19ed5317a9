"""Connection pools for the owner and the query role, used from worker threads.

psycopg2 is blocking: handlers run database work through :meth:`Database.run` in a
thread pool whose size equals the pool's, so a request never waits on a connection
while holding a thread another request needs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

import anyio
import anyio.to_thread
import psycopg2
import psycopg2.extensions

from vo_service.database.setup import DatabaseTarget
from vo_service.errors import TransientFault

T = TypeVar("T")


class ConnectionPool:
    """At most ``size`` connections, opened on demand and kept for reuse.

    (psycopg2's own pools close every connection beyond ``minconn`` when it is
    returned, and a new backend costs ~10 ms plus cold catalogue caches that make the
    first plans of each connection several times slower.)  A caller waits up to
    ``wait`` seconds for a free connection.
    """

    def __init__(self, dsn: str, size: int, wait: float = 30.0) -> None:
        self.dsn = dsn
        self.wait = wait
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[psycopg2.extensions.connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def getconn(self) -> psycopg2.extensions.connection:
        if not self._slots.acquire(timeout=self.wait):
            raise TransientFault("all database connections are busy; try again shortly")
        try:
            with self._lock:
                while self._idle:
                    conn = self._idle.pop()
                    if not conn.closed:
                        return conn
            return psycopg2.connect(self.dsn)
        except BaseException:
            self._slots.release()
            raise

    def putconn(self, conn: psycopg2.extensions.connection, close: bool = False) -> None:
        try:
            with self._lock:
                if close or self._closed or conn.closed:
                    conn.close()
                else:
                    self._idle.append(conn)
        finally:
            self._slots.release()

    def closeall(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._idle:
                conn.close()
            self._idle.clear()


class Database:
    """Both pools plus the limiter that sizes the worker threads to them."""

    def __init__(self, target: DatabaseTarget, size: int) -> None:
        self.target = target
        self.size = size
        self._owner: ConnectionPool | None = None
        self._query: ConnectionPool | None = None
        self.limiter = anyio.CapacityLimiter(size)

    def open(self) -> None:
        self._owner = ConnectionPool(self.target.owner_dsn, self.size)
        self._query = ConnectionPool(self.target.query_dsn, self.size)

    def close(self) -> None:
        for pool in (self._owner, self._query):
            if pool is not None:
                pool.closeall()

    @contextmanager
    def _borrow(self, pool: ConnectionPool | None) -> Iterator[psycopg2.extensions.connection]:
        if pool is None:
            raise RuntimeError("Database.open() was not called")
        try:
            conn = pool.getconn()
        except psycopg2.OperationalError as exc:
            raise TransientFault("the database is not reachable right now; try again "
                                 "in a minute") from exc
        broken = False
        try:
            yield conn
        except psycopg2.OperationalError as exc:
            broken = True
            raise TransientFault("the database connection failed; try again") from exc
        except BaseException:
            broken = conn.closed != 0
            raise
        finally:
            if not conn.closed and not broken:
                try:
                    conn.rollback()
                except psycopg2.Error:
                    broken = True
            pool.putconn(conn, close=broken or conn.closed != 0)

    def owner(self) -> AbstractContextManager[psycopg2.extensions.connection]:
        """An owner-role connection; the caller commits, anything else rolls back."""
        return self._borrow(self._owner)

    def query(self) -> AbstractContextManager[psycopg2.extensions.connection]:
        """A query-role connection (read-only role; RLS applies)."""
        return self._borrow(self._query)

    async def run(self, function: Callable[[], T]) -> T:
        """Run blocking database work in a worker thread."""
        return await anyio.to_thread.run_sync(function, limiter=self.limiter)

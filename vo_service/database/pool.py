"""Connection pools for the owner and the query role, used from worker threads.

psycopg2 is blocking: handlers run database work through :meth:`Database.run` in a
thread pool whose size equals the pool's, so a request never waits on a connection
while holding a thread another request needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

import anyio
import anyio.to_thread
import psycopg2
import psycopg2.extensions
import psycopg2.pool

from vo_service.database.setup import DatabaseTarget
from vo_service.errors import TransientFault

T = TypeVar("T")


class Database:
    """Both pools plus the limiter that sizes the worker threads to them."""

    def __init__(self, target: DatabaseTarget, size: int) -> None:
        self.target = target
        self.size = size
        self._owner: psycopg2.pool.ThreadedConnectionPool | None = None
        self._query: psycopg2.pool.ThreadedConnectionPool | None = None
        self.limiter = anyio.CapacityLimiter(size)

    def open(self) -> None:
        self._owner = psycopg2.pool.ThreadedConnectionPool(0, self.size, self.target.owner_dsn)
        self._query = psycopg2.pool.ThreadedConnectionPool(0, self.size, self.target.query_dsn)

    def close(self) -> None:
        for pool in (self._owner, self._query):
            if pool is not None:
                pool.closeall()

    @contextmanager
    def _borrow(
        self, pool: psycopg2.pool.ThreadedConnectionPool | None
    ) -> Iterator[psycopg2.extensions.connection]:
        if pool is None:
            raise RuntimeError("Database.open() was not called")
        try:
            conn = pool.getconn()
        except (psycopg2.OperationalError, psycopg2.pool.PoolError) as exc:
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

"""Phase-change notifications: one LISTEN connection per process, many waiters.

The ``0004_uws`` trigger NOTIFYs ``uws_phase`` on every insert and phase change, from any
server instance.  A single background thread listens and wakes whoever waits for a given
job (UWS 1.1 WAIT: a coroutine on the event loop, which holds no thread while it waits)
or for any QUEUED job (idle runner threads).  Waiters always re-read the database after
waking and use bounded waits, so a missed notification (while the listener reconnects)
only delays them, never loses a change.
"""

from __future__ import annotations

import asyncio
import logging
import select
import threading
from collections import defaultdict
from collections.abc import Callable

import psycopg2
import psycopg2.extensions

log = logging.getLogger(__name__)

CHANNEL = "uws_phase"
APPLICATION_NAME = "lick-uws-events"


class PhaseEvents:
    """Listens on ``uws_phase`` and wakes waiters; :meth:`start` and :meth:`stop` it."""

    def __init__(self, dsn: str, *, reconnect_delay: float = 1.0) -> None:
        self._dsn = dsn
        self._reconnect_delay = reconnect_delay
        self._lock = threading.Lock()
        self._waiters: dict[str, list[Callable[[], None]]] = defaultdict(list)
        self._queued = threading.Condition(self._lock)
        self._queued_count = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._listening = threading.Event()
        self._sessions = 0

    def start(self, *, timeout: float = 10.0) -> None:
        """Start the listener thread and wait until it is LISTENing."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="uws-events", daemon=True)
        self._thread.start()
        self._listening.wait(timeout)

    def stop(self) -> None:
        """Stop listening and wake every waiter."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._wake_everyone()

    def wait_for_job(self, job_id: str, timeout: float) -> bool:
        """Block until a notification about ``job_id`` arrives or ``timeout`` passes."""
        event = threading.Event()
        self._add_waiter(job_id, event.set)
        try:
            return event.wait(timeout)
        finally:
            self._remove_waiter(job_id, event.set)

    async def job_changed(self, job_id: str, timeout: float) -> bool:
        """Wait on the event loop, holding no thread, for a notification about
        ``job_id``; False when ``timeout`` passed first."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def wake() -> None:  # called by the listener thread
            loop.call_soon_threadsafe(_resolve, future)

        self._add_waiter(job_id, wake)
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._remove_waiter(job_id, wake)

    def _add_waiter(self, job_id: str, wake: Callable[[], None]) -> None:
        with self._lock:
            self._waiters[job_id].append(wake)

    def _remove_waiter(self, job_id: str, wake: Callable[[], None]) -> None:
        with self._lock:
            waiting = self._waiters.get(job_id)
            if waiting is not None:
                if wake in waiting:
                    waiting.remove(wake)
                if not waiting:
                    del self._waiters[job_id]

    def wake_all(self) -> None:
        """Wake the threads in :meth:`wait_for_queued` (a runner is stopping)."""
        with self._lock:
            self._queued_count += 1
            self._queued.notify_all()

    def wait_for_queued(self, seen: int, timeout: float) -> int:
        """Block until a job was queued after ``seen`` (a value this returned before)."""
        with self._queued:
            self._queued.wait_for(
                lambda: self._queued_count != seen or self._stopping.is_set(), timeout
            )
            return self._queued_count

    @property
    def sessions(self) -> int:
        """How many times a LISTEN session was established (reconnections + 1)."""
        with self._lock:
            return self._sessions

    @property
    def queued_count(self) -> int:
        with self._lock:
            return self._queued_count

    def _wake_everyone(self) -> None:
        with self._lock:
            for wakes in self._waiters.values():
                for wake in wakes:
                    wake()
            self._queued_count += 1
            self._queued.notify_all()

    def _dispatch(self, payload: str) -> None:
        job_id, _, phase = payload.partition(" ")
        with self._lock:
            for wake in self._waiters.get(job_id, ()):
                wake()
            if phase == "QUEUED":
                self._queued_count += 1
                self._queued.notify_all()

    def _run(self) -> None:
        while not self._stopping.is_set():
            conn: psycopg2.extensions.connection | None = None
            try:
                conn = psycopg2.connect(self._dsn, application_name=APPLICATION_NAME)
                conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
                with conn.cursor() as cursor:
                    cursor.execute(f"LISTEN {CHANNEL}")
                with self._lock:
                    self._sessions += 1
                self._listening.set()
                # a change made while we were not listening is only seen by polling
                # waiters; wake everyone so they re-read now
                self._wake_everyone()
                while not self._stopping.is_set():
                    readable, _, _ = select.select([conn], [], [], 0.5)
                    if not readable:
                        continue
                    conn.poll()
                    while conn.notifies:
                        self._dispatch(conn.notifies.pop(0).payload)
            except psycopg2.Error as exc:
                log.warning("uws listener lost its connection (%s); reconnecting", exc)
                self._stopping.wait(self._reconnect_delay)
            finally:
                if conn is not None:
                    conn.close()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)

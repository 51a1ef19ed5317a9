"""The LISTEN/NOTIFY listener: wakes waiters, and survives losing its connection."""

from __future__ import annotations

import threading
import time

import psycopg2

from tests.uws.helpers import make_job
from vo_service.uws.events import APPLICATION_NAME, PhaseEvents
from vo_service.uws.model import Phase
from vo_service.uws.store import JobStore


def _change_later(store: JobStore, job_id: str, phase: Phase, delay: float) -> threading.Thread:
    def change() -> None:
        time.sleep(delay)
        store.set_phase(job_id, phase)

    thread = threading.Thread(target=change)
    thread.start()
    return thread


def test_waiters_wake_on_their_job_only(store: JobStore, events: PhaseEvents) -> None:
    mine = store.create(make_job(owner="a"))
    other = store.create(make_job(owner="b"))
    time.sleep(0.5)  # let the INSERTs' own notifications be delivered first
    thread = _change_later(store, other.job_id, Phase.QUEUED, 0.2)
    started = time.monotonic()
    assert events.wait_for_job(mine.job_id, 1.0) is False
    assert time.monotonic() - started >= 0.95
    thread.join()
    thread = _change_later(store, mine.job_id, Phase.QUEUED, 0.2)
    started = time.monotonic()
    assert events.wait_for_job(mine.job_id, 5.0) is True
    assert time.monotonic() - started < 1.5
    thread.join()


def test_queued_jobs_wake_idle_runners(store: JobStore, events: PhaseEvents) -> None:
    job = store.create(make_job())
    seen = events.queued_count
    thread = _change_later(store, job.job_id, Phase.QUEUED, 0.2)
    assert events.wait_for_queued(seen, 5.0) != seen
    thread.join()


def test_listener_reconnects_after_losing_its_session(store: JobStore) -> None:
    events = PhaseEvents(store.dsn, reconnect_delay=0.1)
    events.start()
    assert events.sessions == 1
    try:
        admin = psycopg2.connect(store.dsn)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s AND datname = current_database()",
                (APPLICATION_NAME,),
            )
            row = cursor.fetchone()
            assert row is not None and row[0] >= 1
        admin.close()
        deadline = time.monotonic() + 10
        while events.sessions < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert events.sessions == 2, "the listener did not reconnect"
        job = store.create(make_job())
        # The INSERT notifies too; let that notification be delivered first so the
        # wait below can only be ended by the phase change.
        time.sleep(0.5)
        thread = _change_later(store, job.job_id, Phase.QUEUED, 0.3)
        started = time.monotonic()
        assert events.wait_for_job(job.job_id, 5.0) is True
        assert 0.25 <= time.monotonic() - started < 2.0  # woken by the NOTIFY itself
        thread.join()
    finally:
        events.stop()

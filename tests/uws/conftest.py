"""Fixtures of the UWS tests: a store on a database of its own, emptied per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from vo_service.database.pool import Pool
from vo_service.settings import UwsSettings
from vo_service.uws.events import PhaseEvents
from vo_service.uws.service import UwsService
from vo_service.uws.store import JobStore


@pytest.fixture(scope="session")
def uws_db(database):
    """A database of its own: these tests empty the job tables freely."""
    return database.new_database("uws")


@pytest.fixture
def store(uws_db) -> Iterator[JobStore]:
    conn = psycopg2.connect(uws_db.owner_dsn)
    with conn, conn.cursor() as cursor:
        cursor.execute("TRUNCATE uws.jobs CASCADE")
    conn.close()
    pool = Pool("uws-test", uws_db.owner_dsn, 8)
    pool.open()
    yield JobStore(pool)
    pool.close()


@pytest.fixture
def events(uws_db) -> Iterator[PhaseEvents]:
    listener = PhaseEvents(uws_db.owner_dsn)
    listener.start()
    yield listener
    listener.stop()


@pytest.fixture
def config(tmp_path: Path) -> UwsSettings:
    return UwsSettings(
        max_active_jobs_per_owner=3,
        max_active_anonymous_jobs=4,
        default_execution_duration_s=600,
        hard_execution_duration_s=3600,
        default_destruction_days=7,
        hard_destruction_days=30,
        max_wait_s=10,
    )


@pytest.fixture
def service(store: JobStore, config: UwsSettings, tmp_path: Path) -> UwsService:
    return UwsService(store, config, tmp_path / "jobs")

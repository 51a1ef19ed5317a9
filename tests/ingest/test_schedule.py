"""The scheduling database: schema, schedule.json loading, runs per night, caching."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from ingest.access import decide_access
from ingest.schedule import (
    Observer,
    PostgresSchedule,
    create_schedule_schema,
    load_schedule_json,
)

SCHEDULE: dict[str, Any] = {
    "observers": [
        {"obid": 11, "first_name": "Vera", "last_name": "Rubin", "email": "vera@example.org",
         "password": "secret-1", "password_apr1": "$apr1$abcdefgh$0123456789abcdefghijkl"},
        {"obid": 12, "first_name": "Henrietta", "last_name": "Leavitt",
         "email": "henrietta@example.org", "password": "secret-2",
         "password_apr1": "$apr1$ijklmnop$0123456789abcdefghijkl"},
        {"obid": 13, "first_name": "Annie", "last_name": "Cannon", "email": "annie@example.org",
         "password": "secret-3", "password_apr1": "$apr1$qrstuvwx$0123456789abcdefghijkl"},
    ],
    "runs": [
        {"run_id": "2019A-1", "telescope": "Shane", "first_night": "2019-05-01",
         "last_night": "2019-05-03", "release_date": "2020-01-31", "program": "2019A_S1",
         "obids": [11, 12]},
        {"run_id": "2019A-2", "telescope": "Shane", "first_night": "2019-05-03",
         "last_night": "2019-05-04", "release_date": None, "program": "2019A_S2",
         "obids": [13]},
        {"run_id": 77, "telescope": "Nickel", "first_night": "2019-05-02",
         "last_night": "2019-05-02", "release_date": "2019-11-02", "program": "N1",
         "obids": [13]},
        {"run_id": "empty", "telescope": "Nickel", "first_night": "2019-06-01",
         "last_night": "2019-06-01", "release_date": None, "program": "N2", "obids": []},
    ],
}


@pytest.fixture
def schedule_dsn(database: Any, tmp_path: Path) -> str:
    """A fresh scheduling schema filled from a synthetic schedule.json."""
    db = database.new_database("schedule")
    conn = psycopg2.connect(db.owner_dsn)
    with conn.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS sched_test CASCADE")
    conn.commit()
    path = tmp_path / "schedule.json"
    path.write_text(json.dumps(SCHEDULE))
    assert load_schedule_json(conn, path, schema="sched_test") == (3, 4)
    conn.close()
    return str(db.owner_dsn)


def test_observers_and_runs_per_night(schedule_dsn: str) -> None:
    source = PostgresSchedule(schedule_dsn, schema="sched_test")
    try:
        observers = source.observers()
        assert [o.obid for o in observers] == [11, 12, 13]
        assert observers[0] == Observer(11, "Vera", "Rubin", "vera@example.org",
                                        "$apr1$abcdefgh$0123456789abcdefghijkl")
        runs = {r.run_id: r for r in source.runs_on(date(2019, 5, 3))}
        assert sorted(runs) == ["2019A-1", "2019A-2"]
        assert runs["2019A-1"].observer_ids == (11, 12)
        assert runs["2019A-1"].release_date == date(2020, 1, 31)
        assert runs["2019A-2"].release_date is None
        assert [r.run_id for r in source.runs_on(date(2019, 5, 2))] == ["2019A-1", "77"]
        assert source.runs_on(date(2019, 4, 30)) == ()
        assert source.runs_on(date(2019, 6, 1))[0].observer_ids == ()
    finally:
        source.close()


def test_plain_password_is_never_stored(schedule_dsn: str) -> None:
    conn = psycopg2.connect(schedule_dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM sched_test.observers")
        text = repr(cur.fetchall())
    conn.close()
    assert "secret-1" not in text and "$apr1$abcdefgh$" in text


def test_reload_replaces_run_observers_and_cache_invalidation(schedule_dsn: str,
                                                               tmp_path: Path) -> None:
    source = PostgresSchedule(schedule_dsn, schema="sched_test")
    night = date(2019, 5, 1)
    assert source.runs_on(night)[0].observer_ids == (11, 12)
    changed = json.loads(json.dumps(SCHEDULE))
    changed["runs"][0]["obids"] = [12]
    changed["runs"][0]["release_date"] = "2019-12-01"
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(changed))
    conn = psycopg2.connect(schedule_dsn)
    load_schedule_json(conn, path, schema="sched_test")
    conn.close()
    # cached per night until invalidated: one query per night during a bulk ingest
    assert source.runs_on(night)[0].observer_ids == (11, 12)
    source.invalidate()
    assert source.runs_on(night)[0].observer_ids == (12,)
    assert source.runs_on(night)[0].release_date == date(2019, 12, 1)
    source.close()


def test_rules_over_the_database_schedule(schedule_dsn: str) -> None:
    source = PostgresSchedule(schedule_dsn, schema="sched_test")
    night = date(2019, 5, 3)
    common: dict[str, Any] = {"night": night, "instrument_dir": "shane", "telescope": "Shane",
              "runs": source.runs_on(night), "observers": source.observers(),
              "release_period": "2 years"}
    arc = decide_access(filename="r650.fits", frame_type="arc", **common)
    assert arc.owner_ids == (11, 12, 13)
    assert arc.release_date == date(2020, 1, 31)  # earliest of 2020-01-31 and 2021-05-03
    science = decide_access(filename="r651.fits", frame_type="science", program="2019A_S2",
                            **common)
    assert science.owner_ids == (13,)
    assert science.release_date == date(2021, 5, 3)
    source.close()


def test_schema_creation_is_idempotent(database: Any) -> None:
    db = database.new_database("schedule")
    conn = psycopg2.connect(db.owner_dsn)
    create_schedule_schema(conn, "sched_idem")
    create_schedule_schema(conn, "sched_idem")
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM information_schema.tables"
                    " WHERE table_schema = 'sched_idem'")
        row = cur.fetchone()
        cur.execute("DROP SCHEMA sched_idem CASCADE")
    conn.commit()
    conn.close()
    assert row == (3,)

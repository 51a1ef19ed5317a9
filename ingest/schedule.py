"""The observatory's scheduling database, seen through a small interface.

Ownership rules need two things from the schedule: who the observers are and which
runs (telescope, first and last night, release date, observers) cover a night.
`ScheduleSource` is that interface; `PostgresSchedule` reads it from a PostgreSQL
database whose schema `create_schedule_schema` defines (the observatory's own
database, or a copy of it), and `StaticSchedule` holds it in memory.  Both cache per
night, because a bulk ingest asks the same question for every file of a night.
`load_schedule_json` fills the PostgreSQL schema from the synthetic ``schedule.json``
used by the demo and the tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import psycopg2
import psycopg2.extensions
from psycopg2 import sql


@dataclass(frozen=True)
class Observer:
    """A person who can own data; ``email`` is also the login of the web service."""

    obid: int
    first_name: str
    last_name: str
    email: str
    password_hash: str | None = None


@dataclass(frozen=True)
class Run:
    """A block of nights on one telescope assigned to some observers."""

    run_id: str
    telescope: str
    first_night: date
    last_night: date
    release_date: date | None
    program: str | None
    observer_ids: tuple[int, ...]

    def covers(self, night: date, telescope: str) -> bool:
        return (
            self.first_night <= night <= self.last_night
            and self.telescope.casefold() == telescope.casefold()
        )


class ScheduleSource(Protocol):
    """What ingest asks of a scheduling database."""

    def observers(self) -> Sequence[Observer]:
        """Every observer known to the schedule."""
        ...

    def runs_on(self, night: date) -> Sequence[Run]:
        """Every run (any telescope) whose nights include ``night``."""
        ...

    def all_runs(self) -> Sequence[Run]:
        """Every run (to notice changes: ``ingest.schedule_changes``)."""
        ...


class StaticSchedule:
    """A schedule held in memory: for dry runs, tools and pure tests."""

    def __init__(self, observers: Iterable[Observer], runs: Iterable[Run]) -> None:
        self._observers = tuple(observers)
        self._runs = tuple(runs)

    def observers(self) -> Sequence[Observer]:
        return self._observers

    def runs_on(self, night: date) -> Sequence[Run]:
        return tuple(r for r in self._runs if r.first_night <= night <= r.last_night)

    def all_runs(self) -> Sequence[Run]:
        return self._runs


_SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.observers (
    obid          integer PRIMARY KEY,
    first_name    text NOT NULL DEFAULT '',
    last_name     text NOT NULL DEFAULT '',
    email         text NOT NULL,
    password_hash text,
    active        boolean NOT NULL DEFAULT true,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS observers_email_idx ON {schema}.observers (lower(email));
CREATE TABLE IF NOT EXISTS {schema}.runs (
    run_id        text PRIMARY KEY,
    telescope     text NOT NULL,
    first_night   date NOT NULL,
    last_night    date NOT NULL,
    release_date  date,
    program       text,
    CHECK (first_night <= last_night)
);
CREATE INDEX IF NOT EXISTS runs_nights_idx ON {schema}.runs (first_night, last_night);
CREATE TABLE IF NOT EXISTS {schema}.run_observers (
    run_id text NOT NULL REFERENCES {schema}.runs ON DELETE CASCADE,
    obid   integer NOT NULL REFERENCES {schema}.observers ON DELETE CASCADE,
    PRIMARY KEY (run_id, obid)
);
"""


def create_schedule_schema(
    conn: psycopg2.extensions.connection, schema: str = "public"
) -> None:
    """Create the scheduling tables (idempotent) and commit."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL(_SCHEMA_SQL).format(schema=sql.Identifier(schema)))
    conn.commit()


def load_schedule_json(
    conn: psycopg2.extensions.connection, path: Path | str, schema: str = "public"
) -> tuple[int, int]:
    """Upsert the observers and runs of a ``schedule.json``; returns (observers, runs).

    Only the ``password_apr1`` hash is stored: the plain ``password`` of the synthetic
    file exists so that demo users can log in, never for the database.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    create_schedule_schema(conn, schema)
    s = sql.Identifier(schema)
    observers: list[dict[str, Any]] = list(data.get("observers", []))
    runs: list[dict[str, Any]] = list(data.get("runs", []))
    with conn.cursor() as cur:
        for o in observers:
            cur.execute(
                sql.SQL(
                    "INSERT INTO {}.observers (obid, first_name, last_name, email, password_hash)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (obid) DO UPDATE SET"
                    " first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,"
                    " email = EXCLUDED.email, password_hash = EXCLUDED.password_hash,"
                    " updated_at = now()"
                ).format(s),
                (int(o["obid"]), o.get("first_name") or "", o.get("last_name") or "",
                 o["email"], o.get("password_apr1")),
            )
        for r in runs:
            run_id = str(r["run_id"])
            cur.execute(
                sql.SQL(
                    "INSERT INTO {}.runs (run_id, telescope, first_night, last_night,"
                    " release_date, program) VALUES (%s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (run_id) DO UPDATE SET telescope = EXCLUDED.telescope,"
                    " first_night = EXCLUDED.first_night, last_night = EXCLUDED.last_night,"
                    " release_date = EXCLUDED.release_date, program = EXCLUDED.program"
                ).format(s),
                (run_id, r["telescope"], r["first_night"], r["last_night"],
                 r.get("release_date"), r.get("program")),
            )
            cur.execute(sql.SQL("DELETE FROM {}.run_observers WHERE run_id = %s").format(s),
                        (run_id,))
            for obid in r.get("obids", []):
                cur.execute(
                    sql.SQL("INSERT INTO {}.run_observers (run_id, obid) VALUES (%s, %s)"
                            " ON CONFLICT DO NOTHING").format(s),
                    (run_id, int(obid)),
                )
    conn.commit()
    return len(observers), len(runs)


class PostgresSchedule:
    """`ScheduleSource` over the PostgreSQL schema of `create_schedule_schema`.

    One connection, opened on first use and reopened after a failure; answers are
    cached per night until `invalidate` (the watcher and ``access recompute`` call
    it so that schedule changes are seen).
    """

    def __init__(self, dsn: str, schema: str = "public") -> None:
        self._dsn = dsn
        self._schema = schema
        self._conn: psycopg2.extensions.connection | None = None
        self._observers: tuple[Observer, ...] | None = None
        self._nights: dict[date, tuple[Run, ...]] = {}

    def _query(self, query: sql.Composable, args: Sequence[object]) -> list[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg2.connect(self._dsn, application_name="lick-archive-schedule")
            self._conn.set_session(readonly=True, autocommit=True)
        try:
            with self._conn.cursor() as cur:
                cur.execute(query, args)
                return list(cur.fetchall())
        except psycopg2.Error:
            self.close()
            raise

    def observers(self) -> Sequence[Observer]:
        if self._observers is None:
            rows = self._query(
                sql.SQL("SELECT obid, first_name, last_name, email, password_hash"
                        " FROM {}.observers ORDER BY obid").format(sql.Identifier(self._schema)),
                (),
            )
            self._observers = tuple(Observer(*row) for row in rows)
        return self._observers

    def _runs(self, where: str, args: Sequence[object]) -> tuple[Run, ...]:
        rows = self._query(
            sql.SQL(
                "SELECT r.run_id, r.telescope, r.first_night, r.last_night, r.release_date,"
                " r.program, coalesce(array_agg(o.obid ORDER BY o.obid)"
                " FILTER (WHERE o.obid IS NOT NULL), '{{}}')"
                " FROM {s}.runs r LEFT JOIN {s}.run_observers o USING (run_id)"
                f" {where} GROUP BY r.run_id ORDER BY r.run_id"
            ).format(s=sql.Identifier(self._schema)),
            args,
        )
        return tuple(
            Run(run_id=row[0], telescope=row[1], first_night=row[2], last_night=row[3],
                release_date=row[4], program=row[5], observer_ids=tuple(row[6]))
            for row in rows
        )

    def runs_on(self, night: date) -> Sequence[Run]:
        cached = self._nights.get(night)
        if cached is not None:
            return cached
        runs = self._runs("WHERE r.first_night <= %s AND %s <= r.last_night", (night, night))
        self._nights[night] = runs
        return runs

    def all_runs(self) -> Sequence[Run]:
        """Every run, read afresh (not cached: the watcher asks to see changes)."""
        return self._runs("", ())

    def invalidate(self) -> None:
        self._observers = None
        self._nights.clear()

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

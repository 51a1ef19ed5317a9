"""The published records and the stored coverage (schema ``registry``, owner role).

Publishing compares each record the service builds now with what was published
before, by the hash of its canonical XML without its dates: a new record gets
``created`` = ``updated`` = the OAI datestamp of now; a changed one a new datestamp
and ``updated``; one no longer built stays, marked deleted, with the datestamp of its
deletion (OAI-PMH ``deletedRecord=persistent``); a record that comes back is live
again.  Several server processes may publish at once: a transaction-level advisory
lock makes them take turns, and the second finds nothing to change.

Each method is one transaction on a pooled connection; blocking (worker threads).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from vo_service.database.pool import Pool
from vo_service.services.coverage import Coverage, read_coverages, write_coverages
from vo_service.services.registry_records import BuiltRecord

#: pg_advisory_xact_lock key of publishing ("registry" in ASCII).
PUBLISH_LOCK = 0x7265676973747279
DATESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

_COLUMNS = ("identifier, resource_type, set_specs, created, datestamp, deleted, title, "
            "record")


@dataclass(frozen=True)
class StoredRecord:
    identifier: str
    resource_type: str
    sets: tuple[str, ...]
    created: datetime
    datestamp: datetime
    deleted: bool
    title: str
    record: str  # the ri:Resource, with its dates


@dataclass(frozen=True)
class Selection:
    """Which records a list request wants (OAI-PMH from, until, set)."""

    start: datetime | None = None
    until: datetime | None = None
    set_spec: str | None = None


def content_hash(resource: etree._Element) -> str:
    return hashlib.sha256(etree.tostring(resource, method="c14n")).hexdigest()


def _stored(row: tuple[object, ...]) -> StoredRecord:
    (identifier, resource_type, sets, created, datestamp, deleted, title, record) = row
    assert isinstance(created, datetime) and isinstance(datestamp, datetime)
    assert isinstance(sets, list)
    return StoredRecord(str(identifier), str(resource_type), tuple(str(s) for s in sets),
                        created, datestamp, bool(deleted), str(title), str(record))


def _where(selection: Selection) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if selection.start is not None:
        clauses.append("datestamp >= %s")
        params.append(selection.start)
    if selection.until is not None:
        clauses.append("datestamp <= %s")
        params.append(selection.until)
    if selection.set_spec is not None:
        clauses.append("%s = ANY(set_specs)")
        params.append(selection.set_spec)
    return (" AND ".join(clauses) or "true"), params


class RegistryStore:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    # -- publishing --------------------------------------------------------------------

    def publish(self, built: Sequence[BuiltRecord]) -> list[str]:
        """Record what changed; the identifiers whose datestamp moved."""
        changed: list[str] = []
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s), date_trunc('second', now())",
                        (PUBLISH_LOCK,))
            row = cur.fetchone()
            assert row is not None
            now: datetime = row[1]
            cur.execute("SELECT identifier, content_hash, deleted, created "
                        "FROM registry.records")
            existing = {r[0]: (r[1], r[2], r[3]) for r in cur.fetchall()}
            wanted = set()
            for record in built:
                wanted.add(record.identifier)
                digest = content_hash(record.resource)
                before = existing.get(record.identifier)
                if before is not None and before[0] == digest and not before[1]:
                    continue
                created = before[2] if before is not None else now
                text = _dated(record.resource, created, now)
                cur.execute(
                    "INSERT INTO registry.records (identifier, resource_type, set_specs, "
                    "created, datestamp, deleted, content_hash, title, record) "
                    "VALUES (%s, %s, %s, %s, %s, false, %s, %s, %s) "
                    "ON CONFLICT (identifier) DO UPDATE SET resource_type = "
                    "EXCLUDED.resource_type, set_specs = EXCLUDED.set_specs, datestamp = "
                    "EXCLUDED.datestamp, deleted = false, content_hash = "
                    "EXCLUDED.content_hash, title = EXCLUDED.title, record = EXCLUDED.record",
                    (record.identifier, record.resource_type, list(record.sets), created,
                     now, digest, record.title, text))
                changed.append(record.identifier)
            for identifier, (_digest, deleted, _created) in existing.items():
                if identifier not in wanted and not deleted:
                    cur.execute("UPDATE registry.records SET deleted = true, datestamp = %s "
                                "WHERE identifier = %s", (now, identifier))
                    changed.append(identifier)
            conn.commit()
        return changed

    # -- reading (OAI-PMH) -------------------------------------------------------------

    def get(self, identifier: str) -> StoredRecord | None:
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM registry.records WHERE identifier = %s",
                        (identifier,))
            row = cur.fetchone()
            conn.rollback()
        return None if row is None else _stored(row)

    def page(self, selection: Selection, after: tuple[datetime, str] | None, limit: int
             ) -> tuple[list[StoredRecord], int]:
        """Up to ``limit`` records after ``after`` in (datestamp, identifier) order, and
        how many the whole selection holds."""
        where, params = _where(selection)
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM registry.records WHERE {where}", params)
            total_row = cur.fetchone()
            keyset, keyset_params = "", []
            if after is not None:
                keyset = " AND (datestamp, identifier) > (%s, %s)"
                keyset_params = [after[0], after[1]]
            cur.execute(
                f"SELECT {_COLUMNS} FROM registry.records WHERE {where}{keyset} "
                "ORDER BY datestamp, identifier LIMIT %s", [*params, *keyset_params, limit])
            rows = cur.fetchall()
            conn.rollback()
        return [_stored(r) for r in rows], int(total_row[0]) if total_row else 0

    def earliest(self) -> datetime | None:
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT min(datestamp) FROM registry.records")
            row = cur.fetchone()
            conn.rollback()
        return None if row is None else row[0]

    # -- coverage ----------------------------------------------------------------------

    def claim_stale(self) -> bool:
        """Take the job of recomputing the coverage if a change asked for it (one
        process wins); :meth:`mark_stale` gives it back after a failure."""
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute("UPDATE registry.state SET coverage_stale = false "
                        "WHERE coverage_stale RETURNING true")
            claimed = cur.fetchone() is not None
            conn.commit()
        return claimed

    def mark_stale(self) -> None:
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute("UPDATE registry.state SET coverage_stale = true")
            conn.commit()

    def save_coverages(self, coverages: Sequence[Coverage]) -> None:
        with self.pool.connection() as conn, conn.cursor() as cur:
            write_coverages(cur, coverages)
            cur.execute("UPDATE registry.state SET coverage_computed_at = clock_timestamp()")
            conn.commit()

    def computed_at(self) -> datetime | None:
        """When the stored coverage was computed (it changes with every computation)."""
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT coverage_computed_at FROM registry.state")
            row = cur.fetchone()
            conn.rollback()
        return None if row is None else row[0]

    def coverages(self) -> list[Coverage]:
        with self.pool.connection() as conn, conn.cursor() as cur:
            found = read_coverages(cur)
            conn.rollback()
        return found


def _dated(resource: etree._Element, created: datetime, updated: datetime) -> str:
    dated = etree.fromstring(etree.tostring(resource))
    dated.set("created", created.strftime(DATESTAMP_FORMAT))
    dated.set("updated", updated.strftime(DATESTAMP_FORMAT))
    return etree.tostring(dated, encoding="unicode")

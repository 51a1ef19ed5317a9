"""Datasets by identifier, as the requester may see them: the one door to the files.

Every path that serves data (DataLink, downloads, headers, previews, cutouts,
tarballs) starts here.  An identifier is looked up in a query transaction bound to
the requester, so PostgreSQL's row-level security decides: a dataset the requester
may not see is exactly as absent as one that does not exist.  A file's location on
disk comes only from the database row (the archive root it lies under, then its
stored relative path), never from client input; ``../``, absolute paths or anything
else in an identifier just match no row.

Blocking: call from a worker thread of the ``datasets`` pool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import psycopg2.extras

from auth.identity import begin_query_transaction
from auth.principals import Principal
from vo_service.database.pool import Pool
from vo_service.services.tap import IdentitySecret

T = TypeVar("T")

#: Identifiers looked up in one call at most (pyvo's iter_datalinks sends 50).
MAX_IDS = 1000

_COLUMNS = """
    f.obs_publisher_did AS did, f.path, f.filename, f.night, f.instrument_dir,
    f.instrument, f.frame_type, f.file_size, f.file_mtime, f.checksum, f.release_date,
    o.dataproduct_type, o.access_format, o.s_ra, o.s_dec, o.s_fov, o.em_min, o.em_max
"""


@dataclass(frozen=True)
class Dataset:
    """One archive file the requester may see, with what the data paths need."""

    did: str
    path: str  # below its archive root: YYYY-MM/DD/<instrument dir>/<file>
    filename: str
    night: date
    instrument_dir: str
    instrument: str | None
    frame_type: str | None
    file_size: int | None
    file_mtime: datetime | None
    checksum: str | None
    release_date: datetime | None
    dataproduct_type: str | None
    access_format: str | None
    s_ra: float | None
    s_dec: float | None
    s_fov: float | None
    em_min: float | None
    em_max: float | None


class DatasetLookup:
    """Identifiers to datasets and files, through row-level security."""

    def __init__(self, pool: Pool, secret: IdentitySecret, roots: Sequence[Path]) -> None:
        self.pool = pool
        self.secret = secret
        self.roots = tuple(root.resolve() for root in roots)

    def visible(self, principal: Principal, dids: Sequence[str]) -> dict[str, Dataset]:
        """The datasets among ``dids`` that exist and that ``principal`` may see."""
        wanted = list(dict.fromkeys(d for d in dids if d and "\x00" not in d))[:MAX_IDS]
        if not wanted:
            return {}
        rows = self._select(principal, f"SELECT {_COLUMNS} FROM lick.files AS f JOIN "
                            "ivoa.obscore AS o USING (obs_publisher_did) "
                            "WHERE f.obs_publisher_did = ANY(%s)", (wanted,))
        return {row.did: row for row in rows}

    def calibrations(self, principal: Principal, dataset: Dataset) -> list[Dataset]:
        """The non-science frames of the same instrument and night that ``principal``
        may see (the night's bias, dark, flat, arc... frames), in file order."""
        return self._select(
            principal,
            f"SELECT {_COLUMNS} FROM lick.files AS f JOIN ivoa.obscore AS o "
            "USING (obs_publisher_did) WHERE f.night = %s AND f.instrument_dir = %s "
            "AND f.instrument IS NOT DISTINCT FROM %s AND f.frame_type IS DISTINCT FROM "
            "'science' AND f.frame_type IS NOT NULL AND f.obs_publisher_did <> %s "
            "ORDER BY f.path",
            (dataset.night, dataset.instrument_dir, dataset.instrument, dataset.did))

    def header(self, principal: Principal, did: str) -> str | None:
        """The stored primary header of a dataset ``principal`` may see."""
        def read(cursor: psycopg2.extensions.cursor) -> str | None:
            cursor.execute("SELECT header FROM lick.files WHERE obs_publisher_did = %s",
                           (did,))
            row = cursor.fetchone()
            return None if row is None else str(row[0] or "")

        return self._in_transaction(principal, read)

    def file_of(self, dataset: Dataset) -> Path | None:
        """The file on disk, under the archive root that holds it; None when missing.

        The relative path comes from the database; it is checked to stay inside its
        root all the same (a symlink or an odd row must not lead elsewhere).
        """
        for root in self.roots:
            candidate = (root / dataset.path).resolve()
            if candidate.is_relative_to(root) and candidate.is_file():
                return candidate
        return None

    # -- one transaction as the requester -------------------------------------------

    def _select(self, principal: Principal, sql: str, params: tuple[object, ...]
                ) -> list[Dataset]:
        def read(cursor: psycopg2.extensions.cursor) -> list[Dataset]:
            cursor.execute(sql, params)
            return [Dataset(**row._asdict()) for row in cast(list[Any], cursor.fetchall())]

        return self._in_transaction(principal, read)

    def _in_transaction(self, principal: Principal,
                        work: Callable[[psycopg2.extensions.cursor], T]) -> T:
        secret = self.secret.get()
        with self.pool.connection() as conn, \
                conn.cursor(cursor_factory=psycopg2.extras.NamedTupleCursor) as cursor:
            begin_query_transaction(cursor, principal, secret)
            try:
                return work(cursor)
            finally:
                conn.rollback()

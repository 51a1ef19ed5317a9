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
    o.dataproduct_type, o.access_format, o.s_ra, o.s_dec, o.s_fov, o.em_min, o.em_max,
    (f.release_date IS NOT NULL AND f.release_date < auth.public_before()) AS public
"""
# What the stored header says about the pixels (a FITS card is "KEYWORD = value" with
# the keyword padded to 8 characters; the header is stored one card per line).  Only
# for the few datasets a request names: it reads the header, which is large.
_PIXELS = r"""
    coalesce(f.header ~ '(?n)^NAXIS {3}= +[2-9]( |$)'
             AND f.header ~ '(?n)^NAXIS1 {2}= +[1-9]'
             AND f.header ~ '(?n)^NAXIS2 {2}= +[1-9]', false) AS has_image,
    coalesce(o.dataproduct_type = 'image'
             AND f.header ~ '(?n)^CTYPE1S? *= +''(RA--|DEC-)'
             AND f.header ~ '(?n)^CTYPE2S? *= +''(RA--|DEC-)'
             AND f.header ~ '(?n)^CRVAL1S? *= ', false) AS celestial_wcs
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
    #: released: anyone may see it (else it is proprietary or undated)
    public: bool = False
    #: the primary header describes a 2-D (or more) array of pixels
    has_image: bool = False
    #: an image with a celestial WCS (cutouts by sky region are possible)
    celestial_wcs: bool = False


class DatasetLookup:
    """Identifiers to datasets and files, through row-level security."""

    def __init__(self, pool: Pool, secret: IdentitySecret, roots: Sequence[Path]) -> None:
        self.pool = pool
        self.secret = secret
        self.roots = tuple(root.resolve() for root in roots)

    def visible(self, principal: Principal, dids: Sequence[str]) -> dict[str, Dataset]:
        """The datasets among ``dids`` that exist and that ``principal`` may see.

        At most :data:`MAX_IDS` distinct identifiers are looked up; callers with more
        ask in several calls.
        """
        wanted = _wanted(dids)
        if not wanted:
            return {}
        return self._in_transaction(principal, lambda cursor: _by_did(cursor, wanted))

    def visible_with_calibrations(self, principal: Principal, dids: Sequence[str]
                                  ) -> tuple[dict[str, Dataset], dict[str, list[Dataset]]]:
        """:meth:`visible`, and for each dataset found its :meth:`calibrations`, in
        one transaction (DataLink answers many identifiers at once; one statement
        for all their nights instead of one transaction per dataset)."""
        wanted = _wanted(dids)
        if not wanted:
            return {}, {}

        def read(cursor: psycopg2.extensions.cursor
                 ) -> tuple[dict[str, Dataset], dict[str, list[Dataset]]]:
            found = _by_did(cursor, wanted)
            keys = sorted({(d.night, d.instrument_dir, d.instrument or "")
                           for d in found.values()})
            if not keys:
                return found, {}
            cursor.execute(
                f"SELECT k.n AS key, {_COLUMNS} FROM lick.files AS f JOIN ivoa.obscore AS o "
                "USING (obs_publisher_did) JOIN unnest(%s::date[], %s::text[], %s::text[]) "
                "WITH ORDINALITY AS k(night, dir, instrument, n) ON f.night = k.night "
                "AND f.instrument_dir = k.dir AND coalesce(f.instrument, '') = k.instrument "
                "WHERE f.frame_type IS DISTINCT FROM 'science' AND f.frame_type IS NOT NULL "
                "ORDER BY k.n, f.path",
                ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]))
            by_key: dict[int, list[Dataset]] = {}
            for row in cast(list[Any], cursor.fetchall()):
                values = row._asdict()
                by_key.setdefault(values.pop("key"), []).append(Dataset(**values))
            index = {key: number for number, key in enumerate(keys, start=1)}
            calibrations = {
                did: [c for c in by_key.get(index[(d.night, d.instrument_dir,
                                                   d.instrument or "")], [])
                      if c.did != did]
                for did, d in found.items()}
            return found, calibrations

        return self._in_transaction(principal, read)

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


def _wanted(dids: Sequence[str]) -> list[str]:
    """Distinct identifiers worth a lookup (NUL cannot be in a PostgreSQL text)."""
    return list(dict.fromkeys(d for d in dids if d and "\x00" not in d))[:MAX_IDS]


def _by_did(cursor: psycopg2.extensions.cursor, wanted: list[str]) -> dict[str, Dataset]:
    cursor.execute(f"SELECT {_COLUMNS}, {_PIXELS} FROM lick.files AS f JOIN ivoa.obscore "
                   "AS o USING (obs_publisher_did) WHERE f.obs_publisher_did = ANY(%s)",
                   (wanted,))
    rows = [Dataset(**row._asdict()) for row in cast(list[Any], cursor.fetchall())]
    return {row.did: row for row in rows}

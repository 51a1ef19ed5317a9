"""The coverage of the public data: a MOC of the footprints, the time and spectral spans.

The registry records and the ``/coverage`` endpoint say where on the sky, when and in
which wavelengths the archive has data.  They must never reveal a proprietary
dataset, so the footprints are read exactly as an anonymous TAP client reads them:
in a query transaction bound to the anonymous principal, where PostgreSQL's
row-level security leaves out every row that is not public.  Nothing here filters by
release date itself; one rule decides, the database's.

The footprints are ``s_region`` (the pixel grid of an image, a slit's extent...), or
the circle of diameter ``s_fov`` around the pointing when there is no region, or the
pointing alone.  They are read through a server-side cursor a batch at a time and
turned into MOCs with mocpy (cells overlapping each footprint at ``order``), so memory
stays flat whatever the size of the archive.

Blocking: call from a background thread, on a query-role pool.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
import psycopg2.extensions
from astropy.coordinates import Latitude, Longitude
from mocpy import MOC

from auth.identity import begin_query_transaction
from auth.principals import ANONYMOUS
from vo_service.database.pool import Pool
from vo_service.serialize.stcs import pgsphere_degrees

log = logging.getLogger("lick_archive.coverage")

#: Rows per fetch from the server-side cursor.
BATCH_ROWS = 5_000
#: Planck constant times the speed of light, J m: a wavelength in m to an energy in J.
HC = 6.62607015e-34 * 299_792_458.0

_SELECT = """
SELECT obs_collection, s_region::text, s_ra, s_dec, s_fov, t_min, t_max, em_min, em_max,
       instrument_name, facility_name, dataproduct_type
FROM ivoa.obscore
"""


@dataclass(frozen=True)
class Coverage:
    """The public data of one collection (``collection=""``: the whole archive)."""

    collection: str
    moc: str  # MOC 2.0 ASCII serialisation, at ``moc_order``
    moc_order: int
    t_min: float | None  # MJD
    t_max: float | None
    em_min: float | None  # metres
    em_max: float | None
    instruments: tuple[str, ...] = ()
    facilities: tuple[str, ...] = ()
    product_types: tuple[str, ...] = ()
    datasets: int = 0

    def moc_object(self) -> MOC:
        return MOC.from_string(self.moc) if self.moc.strip() else MOC.new_empty(self.moc_order)

    def moc_text(self, order: int) -> str:
        """The MOC at most at ``order`` (coarser cells cover the same sky)."""
        moc = self.moc_object()
        if order < moc.max_order:
            moc = moc.degrade_to_order(order)
        return str(moc.to_string(format="ascii"))

    def energy_span(self) -> tuple[float, float] | None:
        """The spectral span in Joules (VODataService's unit): (hc/em_max, hc/em_min)."""
        if self.em_min is None or self.em_max is None or self.em_min <= 0:
            return None
        return HC / self.em_max, HC / self.em_min


@dataclass
class _Accumulator:
    order: int
    moc: MOC
    t_min: float | None = None
    t_max: float | None = None
    em_min: float | None = None
    em_max: float | None = None
    instruments: set[str] = field(default_factory=set)
    facilities: set[str] = field(default_factory=set)
    product_types: set[str] = field(default_factory=set)
    datasets: int = 0
    polygons: list[np.ndarray] = field(default_factory=list)
    cones: list[tuple[float, float, float]] = field(default_factory=list)
    points: list[tuple[float, float]] = field(default_factory=list)

    def add(self, row: tuple[object, ...]) -> None:
        (_collection, region, s_ra, s_dec, s_fov, t_min, t_max, em_min, em_max,
         instrument, facility, product_type) = row
        self.datasets += 1
        self.t_min = _lower(self.t_min, t_min)
        self.t_max = _upper(self.t_max, t_max)
        self.em_min = _lower(self.em_min, em_min)
        self.em_max = _upper(self.em_max, em_max)
        for target, value in ((self.instruments, instrument), (self.facilities, facility),
                              (self.product_types, product_type)):
            if isinstance(value, str) and value:
                target.add(value)
        if isinstance(region, str) and region.strip():
            kind, numbers = pgsphere_degrees(region)
            if kind == "polygon" and len(numbers) >= 6:
                self.polygons.append(numbers)
                return
            if kind == "circle" and len(numbers) == 3:
                self.cones.append((numbers[0], numbers[1], numbers[2]))
                return
        if isinstance(s_ra, float) and isinstance(s_dec, float):
            if isinstance(s_fov, float) and s_fov > 0:
                self.cones.append((s_ra, s_dec, s_fov / 2))
            else:
                self.points.append((s_ra, s_dec))

    def flush(self) -> None:
        """The footprints gathered so far into the MOC (one mocpy call per kind)."""
        parts: list[MOC] = []
        # mocpy takes polygons as one array [lon1, lat1, lon2, lat2...]: one call per
        # vertex count
        by_size: dict[int, list[np.ndarray]] = {}
        for numbers in self.polygons:
            by_size.setdefault(len(numbers), []).extend(
                (np.mod(numbers[0::2], 360.0), numbers[1::2]))
        for flat in by_size.values():
            parts.extend(MOC.from_polygons(np.array(flat), max_depth=self.order,
                                           n_threads=1))
        if self.cones:
            ra, dec, radius = (np.array(v) for v in zip(*self.cones, strict=True))
            parts.append(MOC.from_cones(
                Longitude(ra * u.deg), Latitude(dec * u.deg), radius=radius * u.deg,
                max_depth=self.order, union_strategy="large_cones", n_threads=1))
        if self.points:
            ra, dec = (np.array(v) for v in zip(*self.points, strict=True))
            parts.append(MOC.from_lonlat(Longitude(ra * u.deg), Latitude(dec * u.deg),
                                         max_norder=self.order))
        self.moc = _union(self.moc, parts)
        self.polygons, self.cones, self.points = [], [], []

    def coverage(self, collection: str) -> Coverage:
        self.flush()
        return Coverage(
            collection=collection, moc=str(self.moc.to_string(format="ascii")),
            moc_order=self.order, t_min=self.t_min, t_max=self.t_max,
            em_min=self.em_min, em_max=self.em_max,
            instruments=tuple(sorted(self.instruments)),
            facilities=tuple(sorted(self.facilities)),
            product_types=tuple(sorted(self.product_types)), datasets=self.datasets)


def _union(first: MOC, others: Sequence[MOC]) -> MOC:
    """mocpy's union takes one or more others; none: ``first`` itself."""
    return first.union(*others) if others else first


def _lower(current: float | None, value: object) -> float | None:
    if not isinstance(value, float) or not np.isfinite(value):
        return current
    return value if current is None else min(current, value)


def _upper(current: float | None, value: object) -> float | None:
    if not isinstance(value, float) or not np.isfinite(value):
        return current
    return value if current is None else max(current, value)


def compute_coverages(pool: Pool, secret: bytes, order: int) -> list[Coverage]:
    """The coverage of each collection with public data, from what an anonymous
    client may see (row-level security decides); no collection for an empty archive."""
    accumulators: dict[str, _Accumulator] = {}
    with pool.connection() as conn:
        try:
            with conn.cursor() as cursor:
                begin_query_transaction(cursor, ANONYMOUS, secret)
            with conn.cursor(name="registry_coverage") as rows:
                rows.itersize = BATCH_ROWS
                rows.execute(_SELECT)
                while True:
                    batch = rows.fetchmany(BATCH_ROWS)
                    if not batch:
                        break
                    for row in batch:
                        collection = str(row[0] or "")
                        found = accumulators.get(collection)
                        if found is None:
                            found = accumulators[collection] = _Accumulator(
                                order, MOC.new_empty(order))
                        found.add(row)
                    for accumulator in accumulators.values():
                        accumulator.flush()
        finally:
            conn.rollback()
    coverages = [accumulators[name].coverage(name) for name in sorted(accumulators)]
    log.info("coverage computed: %d public datasets in %d collections",
             sum(c.datasets for c in coverages), len(coverages))
    return coverages


def union(coverages: Iterable[Coverage], order: int, name: str = "") -> Coverage:
    """The coverage of several collections together (the services' coverage)."""
    found = list(coverages)
    moc = _union(MOC.new_empty(order), [c.moc_object() for c in found])

    def values(attribute: str) -> list[float]:
        return [v for c in found if isinstance(v := getattr(c, attribute), float)]

    def names(attribute: str) -> tuple[str, ...]:
        return tuple(sorted({n for c in found for n in getattr(c, attribute)}))

    t_min, t_max, em_min, em_max = (values(a) for a in ("t_min", "t_max", "em_min", "em_max"))
    return Coverage(
        collection=name, moc=str(moc.to_string(format="ascii")), moc_order=order,
        t_min=min(t_min, default=None), t_max=max(t_max, default=None),
        em_min=min(em_min, default=None), em_max=max(em_max, default=None),
        instruments=names("instruments"), facilities=names("facilities"),
        product_types=names("product_types"), datasets=sum(c.datasets for c in found))


def read_coverages(cursor: psycopg2.extensions.cursor) -> list[Coverage]:
    """The stored coverages (``registry.coverage``), by collection."""
    cursor.execute(
        "SELECT collection, moc, moc_order, t_min, t_max, em_min, em_max, instruments, "
        "facilities, product_types, datasets FROM registry.coverage ORDER BY collection")
    return [Coverage(str(r[0]), str(r[1]), int(r[2]), r[3], r[4], r[5], r[6],
                     tuple(r[7]), tuple(r[8]), tuple(r[9]), int(r[10]))
            for r in cursor.fetchall()]


def write_coverages(cursor: psycopg2.extensions.cursor, coverages: Sequence[Coverage]) -> None:
    """Replace the stored coverages (in the caller's transaction)."""
    cursor.execute("DELETE FROM registry.coverage")
    for c in coverages:
        cursor.execute(
            "INSERT INTO registry.coverage (collection, moc, moc_order, t_min, t_max, "
            "em_min, em_max, instruments, facilities, product_types, datasets, computed_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())",
            (c.collection, c.moc, c.moc_order, c.t_min, c.t_max, c.em_min, c.em_max,
             list(c.instruments), list(c.facilities), list(c.product_types), c.datasets))

"""From a :class:`FileMetadata` to the rows of ``ivoa.obscore`` and ``lick.files``.

Pure functions: the keys of the returned dicts are exactly the insertable columns of
``tap_schema.declaration.OBSCORE`` and ``FILES`` (the tests check this), so the
loader can COPY them without knowing the columns.

Choices (documented for users in the column descriptions):

* ``dataproduct_type`` is ``image`` for the cameras and ``spectrum`` for the
  spectrographs; raw two-dimensional long-slit frames are typed ``spectrum`` because
  that is what they are taken for and what a spectral search should find.
* ``s_region``: for imagers with a celestial WCS, the footprint of the pixel grid;
  otherwise (spectrographs, imagers without WCS) a circle around the pointing of the
  instrument's configured field radius (half the slit length for Kast), as a
  hexagon that contains the circle.  Polygons are pgSphere ``spoly``
  literals in degrees, counter-clockwise as seen from inside the sphere (DALI).
* ``t_min``/``t_max`` span the exposure; when the start time is only known from the
  night directory (flag ``date_from_path``) they span the whole observing night.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import quote

from ingest.instruments.common import night_window
from ingest.records import FileMetadata

DATALINK_FORMAT = "application/x-votable+xml;content=datalink"
O_UCD = "phot.count"
CALIB_LEVEL = 1
_MJD_EPOCH = datetime(1858, 11, 17, tzinfo=UTC)
# A hexagon around a pointing circle covers 10% more sky than the circle; a 12-gon
# only 2%, but pgSphere's GiST insert of a polygon costs ~240 us with 6 vertices and
# ~860 us with 12 (measured on PostgreSQL 15), which dominated the ingest rate.
_CIRCLE_VERTICES = 6

Vertex = tuple[float, float]


def publisher_did(authority: str, path: str) -> str:
    """``ivo://<authority>/lick?<path>``: stable as long as the file keeps its path."""
    return f"ivo://{authority}/lick?{path}"


#: what follows the base URL in every access_url: the dataset's DataLink document
LINKS_PATH = "/datalink/links?ID="


def access_url(base_url: str, did: str) -> str:
    return f"{base_url.rstrip('/')}{LINKS_PATH}{quote(did, safe='')}"


def rebase_access_urls(cur: Any, base_url: str) -> int:
    """Point every ``access_url`` written under another base URL at ``base_url`` (the
    service moved, or went behind a proxy); how many rows changed."""
    prefix = base_url.rstrip("/") + LINKS_PATH
    cur.execute("UPDATE ivoa.obscore SET access_url = %s || split_part(access_url, %s, 2) "
                "WHERE strpos(access_url, %s) > 0 AND NOT starts_with(access_url, %s)",
                (prefix, LINKS_PATH, LINKS_PATH, prefix))
    return int(cur.rowcount)


def mjd(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _MJD_EPOCH).total_seconds() / 86400.0


def _naive_utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _timestamp(day: date | datetime | None) -> datetime | None:
    if day is None or isinstance(day, datetime):
        return _naive_utc(day)
    return datetime.combine(day, time())


# ---------------------------------------------------------------- geometry


def _unit(ra: float, dec: float) -> tuple[float, float, float]:
    a, d = math.radians(ra), math.radians(dec)
    return math.cos(d) * math.cos(a), math.cos(d) * math.sin(a), math.sin(d)


def separation(a: Vertex, b: Vertex) -> float:
    """Angular distance in degrees (haversine: exact for small angles too)."""
    ra1, dec1, ra2, dec2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (math.sin((dec2 - dec1) / 2) ** 2
         + math.cos(dec1) * math.cos(dec2) * math.sin((ra2 - ra1) / 2) ** 2)
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))


def tan_pixel_to_world(wcs: dict[str, float | str], p1: float, p2: float) -> Vertex:
    """Gnomonic (TAN, default LONPOLE) pixel to world, FITS 1-based pixels, degrees."""
    dx = p1 - float(wcs["CRPIX1"])
    dy = p2 - float(wcs["CRPIX2"])
    x = math.radians(float(wcs["CD1_1"]) * dx + float(wcs["CD1_2"]) * dy)
    y = math.radians(float(wcs["CD2_1"]) * dx + float(wcs["CD2_2"]) * dy)
    ra0, dec0 = float(wcs["CRVAL1"]), float(wcs["CRVAL2"])
    if str(wcs["CTYPE1"]).startswith("DEC-"):
        x, y = y, x
        ra0, dec0 = dec0, ra0
    d0 = math.radians(dec0)
    denominator = math.cos(d0) - y * math.sin(d0)
    ra = ra0 + math.degrees(math.atan2(x, denominator))
    dec = math.degrees(math.atan2(math.sin(d0) + y * math.cos(d0), math.hypot(x, denominator)))
    return ra % 360.0, dec


def _is_plain_tan(wcs: dict[str, float | str]) -> bool:
    types = {str(wcs["CTYPE1"]), str(wcs["CTYPE2"])}
    return types == {"RA---TAN", "DEC--TAN"} and "CD1_1" in wcs


def _astropy_pixel_to_world(wcs: dict[str, float | str], points: Sequence[Vertex]) -> list[Vertex]:
    """Other projections: let astropy.wcs (wcslib) do it; slower, so not the default."""
    import warnings

    from astropy.wcs import WCS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = WCS(dict(wcs, NAXIS=2))
        world = w.all_pix2world([[p1, p2] for p1, p2 in points], 1)
    return [(float(ra) % 360.0, float(dec)) for ra, dec in world]


def pixels_to_world(wcs: dict[str, float | str], points: Sequence[Vertex]) -> list[Vertex]:
    if _is_plain_tan(wcs):
        return [tan_pixel_to_world(wcs, p1, p2) for p1, p2 in points]
    return _astropy_pixel_to_world(wcs, points)


def orient_ccw(vertices: list[Vertex]) -> list[Vertex]:
    """Order vertices counter-clockwise as seen from inside the sphere (DALI)."""
    if len(vertices) < 3:
        return vertices
    cx, cy, cz = (sum(c) for c in zip(*(_unit(*v) for v in vertices), strict=True))
    ra_c = math.degrees(math.atan2(cy, cx))
    dec_c = math.degrees(math.atan2(cz, math.hypot(cx, cy)))
    d0 = math.radians(dec_c)
    area = 0.0
    projected = []
    for ra, dec in vertices:
        a = math.radians(ra - ra_c)
        d = math.radians(dec)
        cos_c = math.sin(d0) * math.sin(d) + math.cos(d0) * math.cos(d) * math.cos(a)
        if cos_c <= 1e-9 or not math.isfinite(cos_c):
            return vertices  # not a small region around its centre: leave it as given
        xi = math.cos(d) * math.sin(a) / cos_c
        eta = (math.cos(d0) * math.sin(d) - math.sin(d0) * math.cos(d) * math.cos(a)) / cos_c
        projected.append((xi, eta))
    for (x1, y1), (x2, y2) in zip(projected, projected[1:] + projected[:1], strict=True):
        area += x1 * y2 - x2 * y1
    # xi grows to the east, which is on the left for an observer inside the sphere:
    # a positive area in (xi, eta) is clockwise for that observer.
    return list(reversed(vertices)) if area > 0 else vertices


def circle_polygon(ra: float, dec: float, radius_deg: float,
                   n: int = _CIRCLE_VERTICES) -> list[Vertex]:
    """A regular n-gon that contains the circle (vertices at radius / cos(pi/n)).

    Bearings run from north through east: counter-clockwise as seen from inside the
    sphere, as DALI wants, with no need to check.
    """
    r = math.radians(radius_deg / math.cos(math.pi / n))
    d0 = math.radians(dec)
    vertices = []
    for k in range(n):
        bearing = 2 * math.pi * k / n  # from north through east
        d = math.asin(max(-1.0, min(1.0, math.sin(d0) * math.cos(r)
                                    + math.cos(d0) * math.sin(r) * math.cos(bearing))))
        a = math.atan2(math.sin(bearing) * math.sin(r) * math.cos(d0),
                       math.cos(r) - math.sin(d0) * math.sin(d))
        vertices.append(((ra + math.degrees(a)) % 360.0, math.degrees(d)))
    return vertices


def spoly(vertices: Sequence[Vertex]) -> str:
    """pgSphere polygon literal in degrees."""
    return "{" + ",".join(f"({ra:.9f}d,{dec:.9f}d)" for ra, dec in vertices) + "}"


def footprint(meta: FileMetadata) -> tuple[Vertex | None, list[Vertex] | None, float | None]:
    """(centre, polygon, diameter in degrees) of the region covered by the frame.

    The diameter (``s_fov``) is that of the smallest circle around the centre that
    holds every vertex; None where there is no polygon.
    """
    wcs = meta.wcs
    if (meta.dataproduct_type == "image" and wcs and "CD1_1" in wcs
            and len(meta.shape) >= 2 and meta.shape[0] > 0 and meta.shape[1] > 0):
        n1, n2 = meta.shape[0], meta.shape[1]
        corners = [(0.5, 0.5), (n1 + 0.5, 0.5), (n1 + 0.5, n2 + 0.5), (0.5, n2 + 0.5)]
        points = pixels_to_world(wcs, [*corners, ((n1 + 1) / 2.0, (n2 + 1) / 2.0)])
        polygon = orient_ccw(points[:4])
        if all(math.isfinite(v) for p in points for v in p):
            centre = points[4]
            return centre, polygon, 2.0 * max(separation(centre, v) for v in polygon)
    if meta.ra is None or meta.dec is None:
        return None, None, None
    centre = (meta.ra, meta.dec)
    if not meta.field_radius:
        return centre, None, None
    radius = meta.field_radius / 3600.0
    polygon = circle_polygon(meta.ra, meta.dec, radius)
    return centre, polygon, 2.0 * radius / math.cos(math.pi / len(polygon))


# ---------------------------------------------------------------- rows


def obscore_row(
    meta: FileMetadata,
    *,
    authority: str,
    base_url: str,
    release_date: date | datetime | None,
    data_rights: str,
    owner_ids: Sequence[int],
) -> dict[str, object]:
    """The ``ivoa.obscore`` row of a file (keys: every column of OBSCORE)."""
    did = publisher_did(authority, meta.path)
    centre, polygon, s_fov = footprint(meta)
    if meta.date_obs is None or meta.date_from_path:
        start, end = night_window(meta.night)
        t_min, t_max = mjd(start), mjd(end)
    else:
        t_min = mjd(meta.date_obs)
        t_max = t_min + (meta.exptime or 0.0) / 86400.0
    spectral = meta.dataproduct_type == "spectrum"
    xel1 = xel2 = em_xel = None
    if len(meta.shape) >= 2:
        if spectral:
            # Raw long-slit frame: dispersion along the longer axis, the slit along
            # the shorter one.
            xel1, xel2, em_xel = min(meta.shape[:2]), 1, max(meta.shape[:2])
        else:
            xel1, xel2, em_xel = meta.shape[0], meta.shape[1], 1
    return {
        "dataproduct_type": meta.dataproduct_type,
        "calib_level": CALIB_LEVEL,
        "obs_collection": meta.collection or f"Lick/{meta.instrument_dir}",
        "obs_id": f"{meta.night.isoformat()}/{meta.instrument_dir}/{meta.filename}",
        "obs_publisher_did": did,
        "access_url": access_url(base_url, did),
        "access_format": DATALINK_FORMAT,
        "access_estsize": -(-meta.file_size // 1024),
        "target_name": meta.object,
        "s_ra": centre[0] if centre else None,
        "s_dec": centre[1] if centre else None,
        "s_fov": s_fov,
        "s_region": spoly(polygon) if polygon else None,
        "s_resolution": meta.s_resolution,
        "s_xel1": xel1,
        "s_xel2": xel2,
        "t_min": t_min,
        "t_max": t_max,
        "t_exptime": meta.exptime,
        "t_resolution": meta.exptime,
        "t_xel": 1,
        "em_min": meta.em_min,
        "em_max": meta.em_max,
        "em_res_power": meta.em_res_power,
        "em_xel": em_xel,
        "o_ucd": O_UCD,
        "pol_states": None,
        "pol_xel": None,
        "facility_name": meta.facility_name,
        "instrument_name": meta.instrument,
        "obs_release_date": _timestamp(release_date),
        "data_rights": data_rights,
        "owner_ids": list(owner_ids),
    }


# lick.files columns the database fills itself.
FILES_GENERATED_COLUMNS = frozenset({"file_id", "ingested_at"})


def files_row(
    meta: FileMetadata,
    *,
    authority: str,
    release_date: date | datetime | None,
    owner_ids: Sequence[int],
    base_url: str | None = None,
    data_rights: str | None = None,
) -> dict[str, object]:
    """The ``lick.files`` row (keys: every column except file_id and ingested_at).

    Takes the same keyword arguments as :func:`obscore_row` so that callers can pass
    one set to both; ``base_url`` and ``data_rights`` have no lick.files column.
    """
    return {
        "obs_publisher_did": publisher_did(authority, meta.path),
        "path": meta.path,
        "filename": meta.filename,
        "night": meta.night,
        "instrument_dir": meta.instrument_dir,
        "instrument": meta.instrument,
        "telescope": meta.telescope,
        "frame_type": meta.frame_type,
        "object": meta.object,
        "observer": meta.observer,
        "program": meta.program,
        "date_obs": _naive_utc(meta.date_obs),
        "exptime": meta.exptime,
        "airmass": meta.airmass,
        "ra": meta.ra,
        "dec": meta.dec,
        "filter1": meta.filter1,
        "filter2": meta.filter2,
        "science_filter": meta.science_filter,
        "slit": meta.slit,
        "grism": meta.grism,
        "grating": meta.grating,
        "grating_tilt": meta.grating_tilt,
        "beam_splitter": meta.beam_splitter,
        "ingest_flags": meta.ingest_flags,
        "file_size": meta.file_size,
        "file_mtime": _naive_utc(meta.file_mtime),
        "checksum": meta.checksum,
        "header": meta.header.replace("\x00", " "),
        "release_date": _timestamp(release_date),
        "owner_ids": list(owner_ids),
    }

"""Sky regions and wavelength intervals of SODA parameters, tested on the sphere.

SODA 1.0 sect. 3.3 takes POS from SIA 2.0 ("for consistency with the SIA-2.0 query
parameter of the same name") and adds CIRCLE and POLYGON, DALI's circle and polygon,
which are the bodies of POS's CIRCLE and POLYGON forms; BAND is a DALI interval of
wavelengths in metres, as in SIA.  So the text is read by SIA's parser
(:mod:`vo_service.services.sia_params`: strict ASCII numbers, ranges of longitudes,
latitudes and radii, open RANGE sides, vertex limit), one reading for both services.
What SODA adds is evaluation: the cutout service tests regions against an image's
pixel grid in Python (ADQL and SIA geometry is pgSphere's), so each region here can
say which sky positions it contains and trace its boundary as curves on the unit
sphere (:func:`trace`).  All positions are ICRS degrees (SODA sect. 3.3.2).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from vo_service.adql.geometry import check_polygon
from vo_service.errors import UsageFault
from vo_service.services import sia_params as sia
from vo_service.services.sia_params import Interval

Floats = NDArray[np.float64]
Vectors = NDArray[np.float64]  # shape (n, 3): unit vectors
Curve = Callable[[Floats], Vectors]  # t in [0, 1] -> points on the sphere


# ---------------------------------------------------------------- numbers


def _format(value: float) -> str:
    """A number for messages and FITS HISTORY cards (ASCII, round-trips)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.12g}"


# ---------------------------------------------------------------- the sphere


def unit_vectors(lon: Floats, lat: Floats) -> Vectors:
    """Unit vectors of (lon, lat) in degrees."""
    a, d = np.radians(lon), np.radians(lat)
    return np.stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)], axis=-1)


def lon_lat(vectors: Vectors) -> tuple[Floats, Floats]:
    """(lon in [0, 360), lat) in degrees of (not necessarily unit) vectors."""
    x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    lon = np.degrees(np.arctan2(y, x)) % 360.0
    lat = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return lon, lat


def _vector(lon: float, lat: float) -> Vectors:
    return unit_vectors(np.array([lon]), np.array([lat]))[0]


def _frame(centre: Vectors) -> tuple[Vectors, Vectors]:
    """Two unit vectors completing ``centre`` to a right-handed orthonormal frame
    (east, north at the centre; any pair at the poles)."""
    east = np.cross([0.0, 0.0, 1.0], centre)
    if np.linalg.norm(east) < 1e-12:
        east = np.array([0.0, 1.0, 0.0])
    east = east / np.linalg.norm(east)
    return east, np.cross(centre, east)


def _great_circle(start: Vectors, end: Vectors) -> Curve:
    """The shorter great-circle arc from ``start`` to ``end`` (slerp)."""
    omega = float(np.arccos(np.clip(np.dot(start, end), -1.0, 1.0)))

    def at(t: Floats) -> Vectors:
        if omega < 1e-12:
            return np.repeat(start[None, :], len(t), axis=0)
        s = math.sin(omega)
        return (np.sin((1 - t) * omega)[:, None] * start
                + np.sin(t * omega)[:, None] * end) / s
    return at


# ---------------------------------------------------------------- regions


class Region(ABC):
    """A region of the sky: what it contains and where its boundary runs."""

    @abstractmethod
    def contains(self, lon: Floats, lat: Floats) -> NDArray[np.bool_]:
        """Which of the positions (ICRS degrees) lie inside or on the boundary."""

    @abstractmethod
    def curves(self) -> list[Curve]:
        """The boundary as curves over t in [0, 1]."""

    @abstractmethod
    def text(self) -> str:
        """The region in SODA POS syntax, numbers normalised (for HISTORY cards)."""


@dataclass(frozen=True)
class Circle(Region):
    lon: float
    lat: float
    radius: float

    def contains(self, lon: Floats, lat: Floats) -> NDArray[np.bool_]:
        cosine = unit_vectors(lon, lat) @ _vector(self.lon, self.lat)
        return np.asarray(cosine >= math.cos(math.radians(self.radius)))

    def curves(self) -> list[Curve]:
        centre = _vector(self.lon, self.lat)
        east, north = _frame(centre)
        r = math.radians(self.radius)

        def at(t: Floats) -> Vectors:
            bearing = 2 * math.pi * t
            across = np.cos(bearing)[:, None] * north + np.sin(bearing)[:, None] * east
            return math.cos(r) * centre + math.sin(r) * across
        return [at]

    def text(self) -> str:
        return f"CIRCLE {_format(self.lon)} {_format(self.lat)} {_format(self.radius)}"


@dataclass(frozen=True)
class Polygon(Region):
    """A spherical polygon with great-circle edges, taken as the smaller of the two
    regions its edges bound whatever the winding (as pgSphere does): the winding
    DALI prescribes is often reversed by clients, and a cutout wants the small
    side."""

    vertices: tuple[tuple[float, float], ...]

    def _plane(self) -> tuple[Vectors, Vectors, Vectors]:
        """The projection's centre: that of the vertices' bounding box, around which
        :func:`~vo_service.adql.geometry.check_polygon` requires the hemisphere."""
        corners = unit_vectors(np.array([v[0] for v in self.vertices]),
                               np.array([v[1] for v in self.vertices]))
        middle = (corners.min(axis=0) + corners.max(axis=0)) / 2
        centre = middle / np.linalg.norm(middle)
        east, north = _frame(centre)
        return centre, east, north

    def contains(self, lon: Floats, lat: Floats) -> NDArray[np.bool_]:
        # The gnomonic projection about the centroid maps great circles to straight
        # lines, so the planar even-odd test is exact on the centroid's hemisphere.
        centre, east, north = self._plane()
        points = unit_vectors(lon, lat)
        depth = points @ centre
        front = depth > 1e-9
        safe = np.where(front, depth, 1.0)
        x, y = (points @ east) / safe, (points @ north) / safe
        corners = unit_vectors(np.array([v[0] for v in self.vertices]),
                               np.array([v[1] for v in self.vertices]))
        cx, cy = (corners @ east) / (corners @ centre), (corners @ north) / (corners @ centre)
        nx, ny = np.roll(cx, -1), np.roll(cy, -1)
        inside = np.zeros(len(points), dtype=bool)
        for x1, y1, x2, y2 in zip(cx, cy, nx, ny, strict=True):
            if y1 == y2:
                continue
            crosses = (y1 > y) != (y2 > y)
            inside ^= crosses & (x < (x2 - x1) * (y - y1) / (y2 - y1) + x1)
        return np.asarray(inside & front)

    def curves(self) -> list[Curve]:
        corners = [_vector(lon, lat) for lon, lat in self.vertices]
        return [_great_circle(a, b) for a, b in zip(corners, [*corners[1:], corners[0]],
                                                    strict=True)]

    def text(self) -> str:
        return "POLYGON " + " ".join(f"{_format(a)} {_format(b)}" for a, b in self.vertices)


@dataclass(frozen=True)
class Range(Region):
    """Longitudes ``lon1..lon2`` (all of them when ``lon2 - lon1 >= 360``), latitudes
    ``lat1..lat2``; the sides are parallels and meridians (SODA's RANGE, not a
    great-circle box).  SIA's reading refuses ``lon1 > lon2`` (a range across 0 is two
    POS values); the test below would take one all the same."""

    lon1: float
    lon2: float
    lat1: float
    lat2: float

    @property
    def span(self) -> float:
        raw = self.lon2 - self.lon1
        if raw >= 360.0:
            return 360.0
        return raw if raw >= 0 else raw + 360.0

    def contains(self, lon: Floats, lat: Floats) -> NDArray[np.bool_]:
        in_lat = (lat >= self.lat1) & (lat <= self.lat2)
        if self.span >= 360.0:
            return np.asarray(in_lat)
        return np.asarray(in_lat & (((lon - self.lon1) % 360.0) <= self.span))

    def curves(self) -> list[Curve]:
        span = self.span

        def parallel(lat: float) -> Curve:
            return lambda t: unit_vectors(self.lon1 + span * t, np.full(len(t), lat))

        def meridian(lon: float) -> Curve:
            return lambda t: unit_vectors(np.full(len(t), lon),
                                          self.lat1 + (self.lat2 - self.lat1) * t)
        sides = [parallel(self.lat1), parallel(self.lat2)]
        if span < 360.0:
            sides += [meridian(self.lon1), meridian(self.lon1 + span)]
        return sides

    def text(self) -> str:
        return (f"RANGE {_format(self.lon1)} {_format(self.lon2)} {_format(self.lat1)} "
                f"{_format(self.lat2)}")


# ---------------------------------------------------------------- reading


def region_of(name: str, text: str) -> Region:
    """The region of a SODA spatial parameter: ``POS`` as SIA reads it, ``CIRCLE`` and
    ``POLYGON`` as the bodies of POS's forms of the same name.

    A polygon must also be one pgSphere would take (ADQL's test: distinct vertices,
    edges under 180 degrees, no crossing edges, within one hemisphere, which
    :meth:`Polygon.contains` needs too).
    """
    try:
        shape = sia.parse_pos(text if name == "POS" else f"{name} {text}")
    except UsageFault as exc:
        if name != "POS":
            exc.message = f"{name} (read as POS={name} ...): {exc.message}"
        raise
    if isinstance(shape, sia.Circle):
        return Circle(shape.lon, shape.lat, shape.radius)
    if isinstance(shape, sia.Range):
        return Range(shape.lon_min, shape.lon_max, shape.lat_min, shape.lat_max)
    problem = check_polygon(shape.vertices)
    if problem is not None:
        raise UsageFault(f"{name}: {problem}")
    return Polygon(shape.vertices)


def band_of(text: str) -> Interval:
    """BAND: a wavelength in metres or a DALI interval ``low high`` (SIA's reading)."""
    return sia.parse_interval("BAND", text)


def overlaps(band: Interval, low: float, high: float) -> bool:
    """Whether ``band`` and [low, high] share a wavelength (bounds inclusive)."""
    return band.low <= high and band.high >= low


def band_text(band: Interval) -> str:
    return f"{_format(band.low)} {_format(band.high)}"


# ---------------------------------------------------------------- tracing


def trace(region: Region, centre: Vectors, reach: float, step: float,
          coarse: int = 256) -> tuple[Floats, Floats]:
    """Positions (lon, lat degrees) on the boundary of ``region`` within ``reach``
    radians of ``centre``, at most ``step`` radians apart.

    Each curve is sampled coarsely, then densely only between coarse samples that
    may come within ``reach``: a boundary of many degrees costs a few hundred points
    plus the part near the image, instead of millions at pixel spacing.
    """
    near_cos = math.cos(min(math.pi, reach))
    chunks: list[Vectors] = []
    coarse_t = np.linspace(0.0, 1.0, coarse + 1)
    for curve in region.curves():
        points = curve(coarse_t)
        gaps = np.arccos(np.clip(np.sum(points[:-1] * points[1:], axis=1), -1.0, 1.0))
        distance = np.arccos(np.clip(points @ centre, -1.0, 1.0))
        close = np.minimum(distance[:-1], distance[1:]) <= reach + gaps
        for index in np.flatnonzero(close):
            count = min(100_000, max(2, math.ceil(float(gaps[index]) / step) + 1))
            t = np.linspace(coarse_t[index], coarse_t[index + 1], count)
            chunks.append(curve(t))
    if not chunks:
        return np.empty(0), np.empty(0)
    samples = np.concatenate(chunks)
    samples = samples[samples @ centre >= near_cos]
    return lon_lat(samples)

"""Sky regions and intervals of SODA parameters: read from DALI text, tested on the sphere.

SODA 1.0 sect. 3.3 names the shapes (CIRCLE and POLYGON with DALI 1.1's ``circle``
and ``polygon`` xtypes; POS with its CIRCLE, RANGE and POLYGON forms) and BAND (a
DALI ``interval`` of wavelengths in metres).  The cutout service evaluates them in
Python against an image's pixel grid, unlike ADQL geometry, which pgSphere
evaluates; so each region here can say which sky positions it contains and trace
its boundary as curves on the unit sphere (:func:`trace`).

Numbers are read strictly (ASCII decimal, as VOTable writes them): Python's
``float`` would also take ``1_000``, ``nan`` or Arabic-Indic digits, which no VO
client sends and which would make two services disagree on the same request.
All positions are ICRS degrees (SODA sect. 3.3.2).
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from vo_service.adql.geometry import check_polygon, vertex_centroid
from vo_service.errors import UsageFault

Floats = NDArray[np.float64]
Vectors = NDArray[np.float64]  # shape (n, 3): unit vectors
Curve = Callable[[Floats], Vectors]  # t in [0, 1] -> points on the sphere

#: Vertices of a POLYGON at most: the containment test costs points x vertices.
MAX_VERTICES = 1000

_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INFINITY = re.compile(r"([+-]?)inf(?:inity)?", re.IGNORECASE)


# ---------------------------------------------------------------- numbers


def numbers(text: str, name: str, *, infinite: bool = False) -> list[float]:
    """The blank-separated numbers of a parameter value; ``infinite`` admits
    ``-Inf``/``+Inf`` (DALI open intervals), never NaN."""
    values = []
    for word in text.split():
        if _NUMBER.fullmatch(word):
            value = float(word)
            if not math.isfinite(value):
                raise UsageFault(f"{name}: {word[:40]!r} is too large a number")
        elif infinite and (match := _INFINITY.fullmatch(word)):
            value = -math.inf if match.group(1) == "-" else math.inf
        else:
            allowed = " (or -Inf/+Inf)" if infinite else ""
            raise UsageFault(f"{name}: {word[:40]!r} is not a decimal number{allowed}")
        values.append(value)
    return values


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
    side.  Edges may cross (even-odd rule)."""

    vertices: tuple[tuple[float, float], ...]

    def _plane(self) -> tuple[Vectors, Vectors, Vectors]:
        lon, lat = vertex_centroid(self.vertices)
        centre = _vector(lon, lat)
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
    """Longitudes from ``lon1`` eastwards to ``lon2`` (across 0 when ``lon1 > lon2``;
    all of them when ``lon2 - lon1 >= 360``), latitudes ``lat1..lat2``; the sides are
    a parallel and a meridian each (SODA's RANGE, not a great-circle box)."""

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


# ---------------------------------------------------------------- parsing


def _check_position(name: str, lon: float, lat: float) -> None:
    if not 0.0 <= lon <= 360.0:
        raise UsageFault(f"{name}: a longitude must lie between 0 and 360 degrees, not "
                         f"{_format(lon)}")
    if not -90.0 <= lat <= 90.0:
        raise UsageFault(f"{name}: a latitude must lie between -90 and 90 degrees, not "
                         f"{_format(lat)}")


def parse_circle(text: str, name: str = "CIRCLE") -> Circle:
    """DALI circle: ``lon lat radius`` in degrees, radius in (0, 180]."""
    values = numbers(text, name)
    if len(values) != 3:
        raise UsageFault(f"{name} needs three numbers, longitude latitude radius in "
                         f"degrees (ICRS), e.g. {name}=12 34 0.5; got {len(values)}")
    lon, lat, radius = values
    _check_position(name, lon, lat)
    if not 0.0 < radius <= 180.0:
        raise UsageFault(f"{name}: the radius must be above 0 and at most 180 degrees, "
                         f"not {_format(radius)}")
    return Circle(lon, lat, radius)


def parse_polygon(text: str, name: str = "POLYGON") -> Polygon:
    """DALI polygon: at least three ``lon lat`` vertices in degrees, within one
    hemisphere (the test in :meth:`Polygon.contains` needs it)."""
    values = numbers(text, name)
    if len(values) < 6 or len(values) % 2:
        raise UsageFault(f"{name} needs at least three vertices as longitude latitude "
                         f"pairs in degrees (ICRS), e.g. {name}=12 34 14 34 14 36; got "
                         f"{len(values)} numbers")
    if len(values) > 2 * MAX_VERTICES:
        raise UsageFault(f"{name}: at most {MAX_VERTICES} vertices, not {len(values) // 2}")
    vertices = tuple(zip(values[::2], values[1::2], strict=True))
    for lon, lat in vertices:
        _check_position(name, lon, lat)
    problem = check_polygon(vertices)
    if problem is not None:
        raise UsageFault(f"{name}: {problem}")
    centre = _vector(*vertex_centroid(vertices))
    corners = unit_vectors(np.array(values[::2]), np.array(values[1::2]))
    if float(np.min(corners @ centre)) <= 1e-6:
        raise UsageFault(f"{name}: the polygon must fit in one hemisphere (every vertex "
                         "less than 90 degrees from the vertices' centre)")
    return Polygon(vertices)


def parse_range(values: Sequence[float], name: str = "POS") -> Range:
    """SODA POS RANGE ``lon1 lon2 lat1 lat2``; ``-Inf``/``+Inf`` open a side."""
    lon1, lon2, lat1, lat2 = (
        max(0.0, values[0]), min(360.0, values[1]), max(-90.0, values[2]),
        min(90.0, values[3]))
    for lon, lat in ((lon1, lat1), (lon2, lat2)):
        _check_position(name, lon, lat)
    if lat1 > lat2:
        raise UsageFault(f"{name}: RANGE latitudes go from the lower to the upper, not "
                         f"{_format(lat1)} to {_format(lat2)}")
    return Range(lon1, lon2, lat1, lat2)


def parse_pos(text: str) -> Region:
    """SODA POS: ``CIRCLE lon lat r``, ``RANGE lon1 lon2 lat1 lat2`` or
    ``POLYGON lon lat ...`` (shape keyword case-insensitive)."""
    shape, _, rest = text.strip().partition(" ")
    keyword = shape.upper()
    if keyword == "CIRCLE":
        return parse_circle(rest, "POS CIRCLE")
    if keyword == "POLYGON":
        return parse_polygon(rest, "POS POLYGON")
    if keyword == "RANGE":
        values = numbers(rest, "POS RANGE", infinite=True)
        if len(values) != 4:
            raise UsageFault("POS RANGE needs four numbers, lon1 lon2 lat1 lat2 in degrees "
                             f"(ICRS), e.g. POS=RANGE 12 14 34 36; got {len(values)}")
        return parse_range(values, "POS RANGE")
    raise UsageFault(f"POS must start with CIRCLE, RANGE or POLYGON, not {shape[:20]!r} "
                     "(e.g. POS=CIRCLE 12 34 0.5)")


@dataclass(frozen=True)
class Interval:
    """A closed interval; infinite ends make it open (DALI 1.1 sect. 3.3.4)."""

    low: float
    high: float

    def overlaps(self, low: float, high: float) -> bool:
        return self.low <= high and self.high >= low

    def text(self) -> str:
        return f"{_format(self.low)} {_format(self.high)}"


def parse_interval(text: str, name: str = "BAND") -> Interval:
    """DALI interval: two numbers, low then high, ``-Inf``/``+Inf`` allowed."""
    values = numbers(text, name, infinite=True)
    if len(values) != 2:
        raise UsageFault(f"{name} needs two numbers, the low and high end (e.g. "
                         f"{name}=5e-7 6e-7, or -Inf/+Inf for an open end); got {len(values)}")
    low, high = values
    if low > high:
        raise UsageFault(f"{name}: the low end {_format(low)} is above the high end "
                         f"{_format(high)}")
    return Interval(low, high)


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

"""What an SIA query must return, computed independently of the service and of pgSphere.

Rows are read with the owner role (no row-level security); who may see a row is
decided here from the release rules (MISSION §1: released rows for everyone, the
owners' rows for them, everything for staff), and which rows match a query from
SIA 2.0's definitions, in plain Python: interval tests on the ObsCore columns, and
spherical geometry with unit vectors for POS (the footprints are small polygons
with great-circle edges; a point lies inside one when it does in the gnomonic
projection about the polygon's centre, where those edges are straight).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg2
import psycopg2.extras

NIGHT = "((now() AT TIME ZONE 'UTC') - interval '20 hours')::date"
IMAGE_TYPES = ("image", "cube")
Vec = tuple[float, float, float]

COLUMNS = ("obs_publisher_did", "dataproduct_type", "calib_level", "obs_collection",
           "facility_name", "instrument_name", "target_name", "access_format", "s_fov",
           "s_resolution", "t_min", "t_max", "t_exptime", "t_resolution", "em_min",
           "em_max", "em_res_power", "pol_states", "owner_ids")


@dataclass
class Row:
    values: dict[str, Any]
    region: list[Vec] | None
    released: bool
    dated: bool  # the release date is known

    @property
    def did(self) -> str:
        return str(self.values["obs_publisher_did"])


def read_rows(owner_dsn: str, where: str = "true") -> list[Row]:
    """Every ObsCore row (owner role), with its footprint and whether it is public."""
    conn = psycopg2.connect(owner_dsn)
    try:
        with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(f"SELECT {', '.join(COLUMNS)}, s_region::text AS region, "
                        f"(obs_release_date IS NOT NULL AND obs_release_date::date <= {NIGHT})"
                        " AS released, obs_release_date IS NOT NULL AS dated "
                        f"FROM ivoa.obscore WHERE {where}")
            rows = cur.fetchall()
    finally:
        conn.close()
    return [Row({c: r[c] for c in COLUMNS}, _vertices(r["region"]), bool(r["released"]),
                bool(r["dated"])) for r in rows]


def _vertices(text: str | None) -> list[Vec] | None:
    """pgSphere's default polygon output: radians, '{(lon , lat),...}'."""
    if text is None:
        return None
    pairs = re.findall(r"\(\s*([-0-9.eE+]+)\s*,\s*([-0-9.eE+]+)\s*\)", text)
    return [_unit_rad(float(a), float(b)) for a, b in pairs]


def visible(row: Row, obid: int | None, staff: bool = False) -> bool:
    """MISSION §1: released rows for all, an owner's rows (with a known release date)
    for the owner, every row for staff."""
    if staff or row.released:
        return True
    return obid is not None and obid in (row.values["owner_ids"] or []) and row.dated


# ---------------------------------------------------------------- SIA semantics


def matches(row: Row, query: dict[str, list[str]]) -> bool:
    """SIA 2.0: every parameter given (AND) has a value (OR) the row satisfies; a NULL
    never satisfies anything; only images and cubes are served."""
    v = row.values
    if v["dataproduct_type"] not in IMAGE_TYPES:
        return False
    return all(any(_one(name, text, row) for text in texts) for name, texts in query.items())


def _interval(text: str) -> tuple[float, float]:
    words = text.split()
    low = float(words[0].replace("Inf", "inf"))
    high = float(words[-1].replace("Inf", "inf"))
    return low, high


def _within(value: Any, text: str) -> bool:
    if value is None:
        return False
    low, high = _interval(text)
    return low <= float(value) <= high


def _overlap(low_value: Any, high_value: Any, text: str) -> bool:
    if low_value is None or high_value is None:
        return False
    low, high = _interval(text)
    return float(low_value) <= high and float(high_value) >= low


_WITHIN = {"FOV": "s_fov", "SPATRES": "s_resolution", "EXPTIME": "t_exptime",
           "TIMERES": "t_resolution", "SPECRP": "em_res_power"}
_TEXT = {"COLLECTION": "obs_collection", "FACILITY": "facility_name",
         "INSTRUMENT": "instrument_name", "DPTYPE": "dataproduct_type", "TARGET": "target_name",
         "FORMAT": "access_format"}


def _one(name: str, text: str, row: Row) -> bool:
    v = row.values
    if name in _WITHIN:
        return _within(v[_WITHIN[name]], text)
    if name == "BAND":
        return _overlap(v["em_min"], v["em_max"], text)
    if name == "TIME":
        return _overlap(v["t_min"], v["t_max"], text)
    if name in _TEXT:
        return v[_TEXT[name]] == text
    if name == "CALIB":
        return v["calib_level"] == int(text)
    if name == "POL":
        return v["pol_states"] is not None and f"/{text}/" in v["pol_states"]
    if name == "ID":
        return _same_ivoid(str(v["obs_publisher_did"]), text)
    if name == "POS":
        return row.region is not None and intersects(row.region, text)
    raise AssertionError(name)


def _same_ivoid(stored: str, given: str) -> bool:
    """Registry part (before '?') case-insensitive, the local part (a path) exact."""
    a, _, x = stored.partition("?")
    b, _, y = given.partition("?")
    return a.lower() == b.lower() and x == y and ("?" in stored) == ("?" in given)


# ---------------------------------------------------------------- geometry


def _unit_rad(lon: float, lat: float) -> Vec:
    return (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))


def unit(lon: float, lat: float) -> Vec:
    return _unit_rad(math.radians(lon), math.radians(lat))


def _dot(a: Vec, b: Vec) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _cross(a: Vec, b: Vec) -> Vec:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _norm(a: Vec) -> Vec:
    n = math.sqrt(_dot(a, a))
    return (a[0] / n, a[1] / n, a[2] / n)


def angle(a: Vec, b: Vec) -> float:
    return math.atan2(math.sqrt(_dot(_cross(a, b), _cross(a, b))), _dot(a, b))


def _on_arc(p: Vec, a: Vec, b: Vec) -> bool:
    """p (on the great circle through a and b) lies between them."""
    n = _cross(a, b)
    return _dot(_cross(a, p), n) >= 0 and _dot(_cross(p, b), n) >= 0


def point_arc_distance(p: Vec, a: Vec, b: Vec) -> float:
    n = _norm(_cross(a, b))
    h = _dot(p, n)
    foot = (p[0] - h * n[0], p[1] - h * n[1], p[2] - h * n[2])
    if _dot(foot, foot) > 1e-30 and _on_arc(_norm(foot), a, b):
        return math.asin(min(1.0, abs(h)))
    return min(angle(p, a), angle(p, b))


def arcs_cross(a: Vec, b: Vec, c: Vec, d: Vec) -> bool:
    line = _cross(_cross(a, b), _cross(c, d))
    if _dot(line, line) < 1e-30:
        return min(point_arc_distance(c, a, b), point_arc_distance(d, a, b),
                   point_arc_distance(a, c, d), point_arc_distance(b, c, d)) < 1e-12
    x = _norm(line)
    for s in (1.0, -1.0):
        p = (s * x[0], s * x[1], s * x[2])
        if _on_arc(p, a, b) and _on_arc(p, c, d):
            return True
    return False


def _edges(polygon: Sequence[Vec]) -> list[tuple[Vec, Vec]]:
    return list(zip(polygon, [*polygon[1:], polygon[0]], strict=True))


def inside(p: Vec, polygon: Sequence[Vec]) -> bool:
    """Point in a polygon smaller than a hemisphere: gnomonic projection about its
    centre maps the great-circle edges to straight lines; then a ray-crossing test."""
    centre = _norm(tuple(sum(v[i] for v in polygon) for i in range(3)))  # type: ignore[arg-type]
    if _dot(p, centre) <= 0:
        return False
    east = _cross((0.0, 0.0, 1.0), centre)
    east = _norm(east) if _dot(east, east) > 1e-20 else (1.0, 0.0, 0.0)
    north = _cross(centre, east)

    def plane(v: Vec) -> tuple[float, float]:
        z = _dot(v, centre)
        assert z > 0, "the polygon is not within a hemisphere of its centre"
        return _dot(v, east) / z, _dot(v, north) / z

    x, y = plane(p)
    result = False
    for (x1, y1), (x2, y2) in _edges([plane(v) for v in polygon]):  # type: ignore[arg-type]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            result = not result
    return result


def _polygon_circle(polygon: Sequence[Vec], centre: Vec, radius: float) -> bool:
    if inside(centre, polygon):
        return True
    return min(point_arc_distance(centre, a, b) for a, b in _edges(polygon)) <= radius


def _polygon_polygon(p: Sequence[Vec], q: Sequence[Vec]) -> bool:
    if any(arcs_cross(a, b, c, d) for a, b in _edges(p) for c, d in _edges(q)):
        return True
    return inside(p[0], q) or inside(q[0], p)


def _lon_lat(v: Vec) -> tuple[float, float]:
    return (math.degrees(math.atan2(v[1], v[0])) % 360.0,
            math.degrees(math.asin(max(-1.0, min(1.0, v[2])))))


def _in_range(v: Vec, lon1: float, lon2: float, lat1: float, lat2: float) -> bool:
    lon, lat = _lon_lat(v)
    in_lon = lon1 <= lon <= lon2 or (lon2 >= 360 and lon == 0.0) or abs(lat) >= 90 - 1e-12
    return in_lon and lat1 <= lat <= lat2


def _arc_meets_parallel(a: Vec, b: Vec, lat: float, lon1: float, lon2: float) -> bool:
    """Whether arc a→b reaches latitude ``lat`` at a longitude in [lon1, lon2]."""
    theta = angle(a, b)
    w = _norm(_cross(_cross(a, b), a))  # a cos t + w sin t runs from a to b
    r = math.hypot(a[2], w[2])
    z = math.sin(math.radians(lat))
    if r < 1e-15 or abs(z) > r:
        return False
    phi = math.atan2(w[2], a[2])
    for t in (phi + math.acos(z / r), phi - math.acos(z / r)):
        t %= 2 * math.pi
        if t <= theta + 1e-15:
            p = tuple(a[i] * math.cos(t) + w[i] * math.sin(t) for i in range(3))
            lon, _ = _lon_lat(p)  # type: ignore[arg-type]
            if lon1 <= lon <= lon2 or (lon2 >= 360 and lon == 0.0):
                return True
    return False


def _polygon_range(polygon: Sequence[Vec], lon1: float, lon2: float, lat1: float,
                   lat2: float) -> bool:
    if any(_in_range(v, lon1, lon2, lat1, lat2) for v in polygon):
        return True
    corners = [unit(a, b) for a in (lon1, lon2) for b in (lat1, lat2)]
    if any(inside(c, polygon) for c in corners):
        return True
    for a, b in _edges(polygon):
        for lon in (lon1, lon2):  # meridian sides: great-circle arcs
            if lat1 < lat2 and arcs_cross(a, b, unit(lon, lat1), unit(lon, lat2)):
                return True
        for lat in (lat1, lat2):  # parallel sides
            if _arc_meets_parallel(a, b, lat, lon1, lon2):
                return True
    return False


def _bound(text: str, low: float, high: float) -> float:
    word = text.lower()
    if word in ("-inf", "+inf", "inf"):
        return low if word.startswith("-") else high
    return float(text)


def intersects(polygon: Sequence[Vec], pos: str) -> bool:
    words = pos.split()
    shape, numbers = words[0].upper(), words[1:]
    if shape == "CIRCLE":
        lon, lat, radius = map(float, numbers)
        return _polygon_circle(polygon, unit(lon, lat), math.radians(radius))
    if shape == "POLYGON":
        values = list(map(float, numbers))
        return _polygon_polygon(polygon, [unit(a, b) for a, b in
                                          zip(values[::2], values[1::2], strict=True)])
    if shape == "RANGE":
        return _polygon_range(polygon, _bound(numbers[0], 0, 360), _bound(numbers[1], 0, 360),
                              _bound(numbers[2], -90, 90), _bound(numbers[3], -90, 90))
    raise AssertionError(shape)


def expected(rows: Sequence[Row], query: dict[str, list[str]], obid: int | None = None,
             staff: bool = False) -> set[str]:
    return {r.did for r in rows if visible(r, obid, staff) and matches(r, query)}

"""ADQL geometry → pgSphere: constructors, predicates and the shapes computed in Python.

pgSphere works in radians; ADQL in degrees.  Shapes whose arguments are all
literals are computed here and bound as one pgSphere text value (``{(10d,20d),…}``),
so the database sees a constant; shapes over column expressions are built in SQL
from stock pgSphere functions only.  BOX follows ADQL 2.1 sect. 4.2.3: its sides
are great circles through the ends of the two arms, i.e. a polygon, not an sbox.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

# A rotation taking the local frame (0, 0) to (lon, lat): p + strans(0, -lat, lon, 'ZYZ').
ROTATE_TO = "strans(0, -({lat}), {lon}, 'ZYZ')"
# scircle for non-constant circles: never fails, LEAKPROOF (auth.policy.SAFE_CIRCLE; a
# test keeps the two names equal: the translator imports nothing of auth)
SAFE_CIRCLE = "public.lick_scircle"


def _fmt(value: float) -> str:
    # + 0.0 turns -0.0 into 0.0: pgSphere's parser takes no sign on a circle's radius.
    return repr(float(value) + 0.0)


def spoly_text(vertices: Sequence[tuple[float, float]]) -> str:
    """pgSphere input text of a polygon from (lon, lat) vertices in degrees."""
    return "{" + ",".join(f"({_fmt(a)}d,{_fmt(b)}d)" for a, b in vertices) + "}"


def spoint_text(lon: float, lat: float) -> str:
    return f"({_fmt(lon)}d,{_fmt(lat)}d)"


def scircle_text(lon: float, lat: float, radius: float) -> str:
    return f"<({_fmt(lon)}d,{_fmt(lat)}d),{_fmt(radius)}d>"


def box_half_height(width: float, height: float) -> float:
    """Latitude (radians, local frame) of the box corners: the top side is the great
    circle through the top of the vertical arm perpendicular to it."""
    return math.atan(math.tan(height / 2) * math.cos(width / 2))


def box_vertices(lon: float, lat: float, width: float, height: float) -> list[tuple[float, float]]:
    """Corners (degrees) of an ADQL BOX centred on (lon, lat) with sides in degrees."""
    w = math.radians(width)
    b = box_half_height(w, math.radians(height))
    a0, d0 = math.radians(lon), math.radians(lat)
    corners = []
    for x, y in ((-w / 2, -b), (w / 2, -b), (w / 2, b), (-w / 2, b)):
        # Rotate the local unit vector: first about y by -lat, then about z by lon.
        vx, vy, vz = math.cos(y) * math.cos(x), math.cos(y) * math.sin(x), math.sin(y)
        rx = vx * math.cos(d0) - vz * math.sin(d0)
        rz = vx * math.sin(d0) + vz * math.cos(d0)
        gx = rx * math.cos(a0) - vy * math.sin(a0)
        gy = rx * math.sin(a0) + vy * math.cos(a0)
        ra = math.degrees(math.atan2(gy, gx)) % 360.0
        dec = math.degrees(math.asin(max(-1.0, min(1.0, rz))))
        corners.append((ra, dec))
    return corners


def box_sql(lon_rad: str, lat_rad: str, width_deg: str, height_deg: str) -> str:
    """SQL for a BOX over expressions (radian centre, degree sizes)."""
    w = f"radians({width_deg})"
    b = f"atan(tan(radians({height_deg}) / 2) * cos({w} / 2))"
    rot = ROTATE_TO.format(lat=lat_rad, lon=lon_rad)
    corners = [(f"-{w} / 2", f"-{b}"), (f"{w} / 2", f"-{b}"), (f"{w} / 2", b), (f"-{w} / 2", b)]
    values = ", ".join(f"({i}, spoint({x}, {y}) + {rot})" for i, (x, y) in enumerate(corners))
    return _guarded((lon_rad, lat_rad, width_deg, height_deg),
                    f"(SELECT spoly(v.p ORDER BY v.n) FROM (VALUES {values}) AS v(n, p))")


def polygon_sql(points: Sequence[str]) -> str:
    """SQL for a polygon from spoint expressions, in order."""
    values = ", ".join(f"({i}, {p})" for i, p in enumerate(points))
    return _guarded(points, f"(SELECT spoly(v.p ORDER BY v.n) FROM (VALUES {values}) AS v(n, p))")


def _guarded(inputs: Sequence[str], aggregate_sql: str) -> str:
    """NULL unless every input is known.  pgSphere 1.2's spoly aggregate crashes the
    server process when all its inputs are NULL (and drops single NULL vertices);
    CASE evaluates the sub-select only when the test passes."""
    test = " AND ".join(f"({x}) IS NOT NULL" for x in inputs)
    return f"CASE WHEN {test} THEN {aggregate_sql} END"


def vertex_centroid(vertices: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Centroid (degrees) of the unit vectors of the vertices, projected to the sphere."""
    x = y = z = 0.0
    for lon, lat in vertices:
        a, d = math.radians(lon), math.radians(lat)
        x += math.cos(d) * math.cos(a)
        y += math.cos(d) * math.sin(a)
        z += math.sin(d)
    return (math.degrees(math.atan2(y, x)) % 360.0,
            math.degrees(math.atan2(z, math.hypot(x, y))))


def polygon_centroid_sql(poly: str) -> str:
    """Vertex centroid of an spoly expression, from its (radian) text output."""
    return (
        "(SELECT spoint(atan2(avg(cos(v.b) * sin(v.l)), avg(cos(v.b) * cos(v.l))), "
        "atan2(avg(sin(v.b)), sqrt(power(avg(cos(v.b) * cos(v.l)), 2) "
        "+ power(avg(cos(v.b) * sin(v.l)), 2)))) "
        "FROM (SELECT CAST(m[1] AS double precision) AS l, CAST(m[2] AS double precision) AS b "
        f"FROM regexp_matches(CAST({poly} AS text), "
        "'\\(([^ ,()]+) *, *([^ ,()]+)\\)', 'g') AS m) AS v)"
    )


def check_latitude(lat: float) -> str | None:
    """None for a latitude pgSphere takes as it is (it folds others over the pole)."""
    if -90 <= lat <= 90:
        return None
    return f"a latitude must lie between -90 and 90 degrees, not {lat:g}"


def check_radius(radius: float) -> str | None:
    """None for a circle radius pgSphere accepts (it fails on others, as an internal error)."""
    if 0 <= radius <= 90:
        return None
    return f"a circle radius must lie between 0 and 90 degrees, not {radius:g}"


def check_box_size(width: float, height: float) -> str | None:
    if 0 < width < 180 and 0 < height < 180:
        return None
    return "BOX width and height must lie between 0 and 180 degrees (exclusive)"


def check_shape(shape: str, values: Sequence[float]) -> str | None:
    """None when pgSphere can take this literal shape, else why not.

    ``shape`` is POINT (lon, lat), CIRCLE (lon, lat, radius), BOX (lon, lat, width,
    height) or POLYGON (lon, lat pairs), all in degrees, with the right number of
    values.  Numbers read from text (STC-S, DALI) may be NaN or infinite, which
    pgSphere's input functions reject as internal errors.
    """
    if not all(math.isfinite(v) for v in values):
        return "coordinates and sizes must be finite numbers, not NaN or infinite"
    if shape == "POLYGON":
        return check_polygon(list(zip(values[::2], values[1::2], strict=True)))
    problem = check_latitude(values[1])
    if problem is not None or shape == "POINT":
        return problem
    if shape == "CIRCLE":
        return check_radius(values[2])
    problem = check_box_size(values[2], values[3])
    if problem is not None:
        return problem
    return check_polygon(box_vertices(*values))


#: Literal polygons have at most this many vertices: the validity test (like
#: pgSphere's own, which cannot be interrupted) compares every pair of edges.
MAX_POLYGON_VERTICES = 1000
#: Radians (0.02 mas).  pgSphere compares with a tolerance of 1e-9; a polygon this
#: close to being invalid (an edge touching another, a vertex on the rim of the
#: hemisphere) is refused, so that every polygon accepted here is accepted there.
_MARGIN = 1e-7
_SAME_POINT = 1e-10  # radians: consecutive vertices this close are one (pgSphere too)


def check_polygon(vertices: Sequence[tuple[float, float]]) -> str | None:
    """None when pgSphere can make a polygon of these literal vertices, else why not.

    pgSphere's ``spherepoly_check`` (polygon.c) refuses, with an internal error that
    would reach the client as a 500, a polygon with an edge of 180 degrees, edges
    that cross or touch (a "bow tie": vertices not in order around the polygon), or
    one not within the hemisphere around the centre of its vertices' bounding box.
    The same tests are made here with a margin (:data:`_MARGIN`).  Consecutive
    repeated vertices (a ring closed by repeating the first) are dropped, as
    pgSphere drops them.
    """
    if not all(math.isfinite(a) and math.isfinite(b) for a, b in vertices):
        return "coordinates must be finite numbers, not NaN or infinite"
    if any(abs(b) > 90 for _, b in vertices):
        return "a latitude must lie between -90 and 90 degrees"
    if len(vertices) > MAX_POLYGON_VERTICES:
        return f"a polygon may have at most {MAX_POLYGON_VERTICES} vertices"
    ring = _ring(vertices)
    if len(ring) < 3:
        return "a polygon needs at least three distinct vertices"
    a = ring
    b = np.roll(ring, -1, axis=0)
    lengths = _angles(a, b)
    if bool((lengths > math.pi - _MARGIN).any()):
        return "a polygon edge must be shorter than 180 degrees"
    if bool((lengths < _MARGIN).any()):
        return "two consecutive polygon vertices are too close together to tell apart"
    centre = (ring.min(axis=0) + ring.max(axis=0)) / 2
    size = float(np.linalg.norm(centre))
    if size < _MARGIN or bool((ring @ (centre / size) < _MARGIN).any()):
        return "a polygon must lie within a hemisphere; split a larger one"
    crossing = _touching_edges(a, b)
    if crossing is not None:
        i, k = crossing
        return (f"polygon edges {i + 1} and {k + 1} cross or touch; give the vertices in "
                "order around the polygon")
    return None


def _ring(vertices: Sequence[tuple[float, float]]) -> npt.NDArray[np.float64]:
    """Unit vectors of the vertices, without consecutive repeats (first = last too)."""
    lon = np.radians(np.array([v[0] for v in vertices], dtype=np.float64))
    lat = np.radians(np.array([v[1] for v in vertices], dtype=np.float64))
    points = np.column_stack((np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon),
                              np.sin(lat)))
    kept: list[npt.NDArray[np.float64]] = []
    for point in points:
        if not kept or _angle(kept[-1], point) >= _SAME_POINT:
            kept.append(point)
    while len(kept) > 1 and _angle(kept[0], kept[-1]) < _SAME_POINT:
        kept.pop()
    return np.array(kept, dtype=np.float64).reshape(-1, 3)


def _angle(u: npt.NDArray[np.float64], v: npt.NDArray[np.float64]) -> float:
    return math.atan2(float(np.linalg.norm(np.cross(u, v))), float(u @ v))


def _angles(u: npt.NDArray[np.float64], v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Angular distances of row vectors (atan2: exact for small and large angles)."""
    result: npt.NDArray[np.float64] = np.arctan2(
        np.linalg.norm(np.cross(u, v), axis=-1), np.einsum("ij,ij->i", u, v))
    return result


def _touching_edges(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]
                    ) -> tuple[int, int] | None:
    """The first pair of non-adjacent edges (a→b rows) closer than the margin."""
    count = len(a)
    normals = np.cross(a, b)
    normals /= np.linalg.norm(normals, axis=1)[:, None]
    first, second = np.triu_indices(count, 2)
    keep = ~((first == 0) & (second == count - 1))  # the last edge meets the first
    first, second = first[keep], second[keep]
    for start in range(0, len(first), 50_000):  # bounded memory for large polygons
        i, k = first[start:start + 50_000], second[start:start + 50_000]
        gaps = _arc_gaps(a[i], b[i], normals[i], a[k], b[k], normals[k])
        close = np.flatnonzero(gaps < _MARGIN)
        if len(close):
            return int(i[close[0]]), int(k[close[0]])
    return None


def _arc_gaps(a1: npt.NDArray[np.float64], b1: npt.NDArray[np.float64],
              n1: npt.NDArray[np.float64], a2: npt.NDArray[np.float64],
              b2: npt.NDArray[np.float64], n2: npt.NDArray[np.float64]
              ) -> npt.NDArray[np.float64]:
    """Smallest angular distance between arcs a1→b1 and a2→b2 (0 where they cross).

    Two arcs shorter than 180 degrees that do not cross are closest at an end of one
    of them; two that cross meet at ±(n1 × n2), which then lies on both.
    """
    gaps = np.minimum(np.minimum(_point_arc(a2, a1, b1, n1), _point_arc(b2, a1, b1, n1)),
                      np.minimum(_point_arc(a1, a2, b2, n2), _point_arc(b1, a2, b2, n2)))
    line = np.cross(n1, n2)
    norm = np.linalg.norm(line, axis=1)
    ok = norm > 1e-15
    line[ok] /= norm[ok][:, None]
    for sign in (1.0, -1.0):
        x = sign * line
        crosses = ok & _on_arc(x, a1, b1, n1) & _on_arc(x, a2, b2, n2)
        gaps[crosses] = 0.0
    return gaps


def _on_arc(p: npt.NDArray[np.float64], a: npt.NDArray[np.float64],
            b: npt.NDArray[np.float64], n: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Whether points of the arcs' great circles lie between a and b."""
    return ((np.einsum("ij,ij->i", np.cross(a, p), n) >= 0)
            & (np.einsum("ij,ij->i", np.cross(p, b), n) >= 0))


def _point_arc(p: npt.NDArray[np.float64], a: npt.NDArray[np.float64],
               b: npt.NDArray[np.float64], n: npt.NDArray[np.float64]
               ) -> npt.NDArray[np.float64]:
    """Angular distance from points p to the arcs a→b (unit normals n)."""
    height = np.einsum("ij,ij->i", p, n)
    foot = p - height[:, None] * n
    inside = _on_arc(foot, a, b, n)
    ends = np.minimum(_angles(p, a), _angles(p, b))
    result: npt.NDArray[np.float64] = np.where(
        inside, np.arcsin(np.clip(np.abs(height), 0.0, 1.0)), ends)
    return result


def check_coordsys(value: str | None) -> str | None:
    """None when the coordinate-system literal is acceptable, else the message."""
    if value is None:
        return None
    word = value.strip().upper()
    if word in ("", "ICRS") or word.startswith("ICRS "):
        return None
    return (f"coordinate system {value!r} is not supported: this service has ICRS data "
            "only; use 'ICRS' or '' (or leave the argument out)")


_STCS_ARITY = {"POSITION": 2, "CIRCLE": 3, "BOX": 4}
_STCS_FLAVOURS = {"SPHERICAL2", "UNITSPHERE", "GEOCENTER", "BARYCENTER", "HELIOCENTER",
                  "TOPOCENTER", "UNKNOWNREFPOS"}


def parse_stcs(text: str) -> tuple[str, list[float]]:
    """The shape and numbers of a simple STC-S region (TAP 1.0 STC-S appendix subset):
    ``Position``, ``Circle``, ``Box`` and ``Polygon`` in ICRS (or no frame).

    Raises ValueError with a message for anything else (unions, other frames...).
    """
    words = text.split()
    if not words:
        raise ValueError("REGION needs an STC-S string such as 'Circle ICRS 10 20 1'")
    shape = words[0].upper()
    if shape not in (*_STCS_ARITY, "POLYGON"):
        raise ValueError(f"REGION supports Position, Circle, Box and Polygon, not {words[0]!r}")
    numbers: list[float] = []
    for word in words[1:]:
        try:
            numbers.append(float(word))
            continue
        except ValueError:
            pass
        if numbers:
            raise ValueError(f"unexpected {word!r} in the STC-S region") from None
        upper = word.upper()
        if upper not in _STCS_FLAVOURS and check_coordsys(word) is not None:
            raise ValueError(f"STC-S frame {word!r} is not supported; use ICRS") from None
    want = _STCS_ARITY.get(shape)
    if (want is not None and len(numbers) != want) or (
            shape == "POLYGON" and (len(numbers) < 6 or len(numbers) % 2)):
        raise ValueError(f"wrong number of coordinates for an STC-S {words[0]}")
    return shape, numbers

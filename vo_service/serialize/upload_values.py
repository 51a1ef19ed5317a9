"""The values of an uploaded table, checked so that PostgreSQL takes every one of them.

An upload becomes a temporary table (``services/tap.py``) by one INSERT; a value the
column cannot hold there (a short of 70000, a real of 1e39, a timestamp in year 0, a
latitude of 95 degrees, a circle of radius -1) would make that INSERT fail as a
database error after the request was accepted.  So every value is checked here, when
the VOTable is read, and a bad one raises ValueError saying which value is wrong —
the caller answers 400 (UsageFault) with that message.

The checks are the storage type's own limits: integer ranges, the float32 range of
``real`` (an underflow becomes the float32 value, 0 or a subnormal, as a reader of
the VOTable float would get), timestamps that Python and PostgreSQL both hold (years
1 to 9999), and the domain pgSphere accepts for its input literals (finite numbers,
latitudes within ±90°, radii from 0 to 90°, polygons of three or more distinct
vertices whose edges are shorter than 180°).  pgSphere refuses self-crossing
polygons as well; that test stays pgSphere's own (see docs/tap.md).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np

from vo_service.adql.geometry import check_polygon

INT_RANGES: dict[str, tuple[int, int]] = {
    "unsignedByte": (0, 255), "short": (-(2**15), 2**15 - 1), "int": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}
GEOMETRY_SIZES: dict[str, int | None] = {"point": 2, "circle": 3, "polygon": None}
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_MAX_RADIUS = 90.0  # pgSphere: "radius must be not greater than 90 degrees"


def integer(datatype: str, value: int) -> int:
    """``value`` if the column type holds it (PostgreSQL would refuse it otherwise)."""
    low, high = INT_RANGES[datatype]
    if not low <= value <= high:
        shown = str(value) if abs(value) < 10**30 else f"{str(value)[:30]}..."
        raise ValueError(f"{shown} is out of range for a column of type {datatype} "
                         f"({low} to {high})")
    return value


def real(value: float) -> float:
    """The float32 value of ``value`` (what PostgreSQL's ``real`` stores); an overflow
    is refused, as PostgreSQL would refuse it."""
    if math.isfinite(value) and abs(value) > _FLOAT32_MAX:
        raise ValueError(f"{value!r} is out of range for a float column (single precision)")
    return float(np.float32(value))


def number(datatype: str, value: Any) -> Any:
    """One scalar or array element of a numeric or boolean column, checked."""
    if datatype in INT_RANGES:
        return integer(datatype, value)
    if datatype == "float" and isinstance(value, float):
        return real(value)
    return value


def timestamp(text: str) -> datetime:
    """A DALI timestamp (ISO 8601, optionally with 'Z' or an offset) as a naive UTC
    datetime; ValueError for anything else, including years outside 1 to 9999."""
    stripped = text.strip()
    try:
        parsed = datetime.fromisoformat(stripped)
    except ValueError as exc:
        raise ValueError(f"{stripped[:40]!r} is not an ISO 8601 timestamp "
                         f"(YYYY-MM-DDThh:mm:ss, years 1 to 9999): {exc}") from None
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            raise ValueError(f"{stripped[:40]!r} lies outside the years 1 to 9999") from None
    return parsed


def geometry_literal(xtype: str, values: list[float]) -> str:
    """The pgSphere input literal (degrees) of a DALI point, circle or polygon."""
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"a {xtype} needs finite numbers, not {_short(values)}")
    want = GEOMETRY_SIZES[xtype]
    if want is not None and len(values) != want:
        raise ValueError(f"a {xtype} needs {want} numbers, not {len(values)}")
    if want is None and (len(values) < 6 or len(values) % 2):
        raise ValueError(f"a polygon needs an even number of at least 6 numbers (3 vertices), "
                         f"not {len(values)}")
    coordinates = values[:2] if want is not None else values
    vertices = [_vertex(xtype, lon, lat)
                for lon, lat in zip(coordinates[::2], coordinates[1::2], strict=True)]
    if xtype == "point":
        return _point(*vertices[0])
    if xtype == "circle":
        radius = values[2]
        if not 0.0 <= radius <= _MAX_RADIUS:
            raise ValueError(f"a circle radius must lie between 0 and {_MAX_RADIUS:g} "
                             f"degrees, not {radius!r}")
        return f"<{_point(*vertices[0])},{_angle(radius)}>"
    problem = check_polygon(vertices)
    if problem is not None:
        raise ValueError(f"{problem}: {_short(values)}")
    return "{" + ",".join(_point(lon, lat) for lon, lat in vertices) + "}"


def _vertex(xtype: str, lon: float, lat: float) -> tuple[float, float]:
    """(longitude in [0, 360), latitude), checked; a pole's longitude is 0, so that two
    vertices on one pole are the same vertex for the polygon checks, as for pgSphere."""
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"a {xtype} has latitude {lat!r}, outside -90 to 90 degrees")
    return (0.0 if abs(lat) == 90.0 else lon % 360.0), lat


def _point(lon: float, lat: float) -> str:
    return f"({_angle(lon)},{_angle(lat)})"


def _angle(degrees: float) -> str:
    """Fixed-point degrees: pgSphere's parser takes no exponent (``1e-05d`` is a syntax
    error), and 12 decimals are far below the 1e-10 degree results are given in."""
    text = f"{degrees:.12f}".rstrip("0").rstrip(".")
    return ("0" if text in ("", "-0") else text) + "d"


def _short(values: list[float]) -> str:
    shown = " ".join(repr(v) for v in values[:8])
    return shown + (" ..." if len(values) > 8 else "")

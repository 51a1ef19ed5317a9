"""Literal shapes: every polygon check_polygon accepts is one pgSphere accepts.

pgSphere refuses self-crossing polygons, edges of 180 degrees and polygons beyond a
hemisphere with an internal error (SQLSTATE XX000), which would reach a client as a
500.  Hypothesis draws polygons — ordered and shuffled vertices, tiny and huge ones,
vertices at the poles and on the equator, repeated vertices — and each one the check
lets through must be taken by ``CAST(... AS spoly)``.  The check is stricter than
pgSphere by a margin; it must still accept ordinary polygons.  A coordinate or
radius of -0.0 is written as 0 (pgSphere's parser takes no sign on a radius).
"""

from __future__ import annotations

import math

import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vo_service.adql import AdqlError, Metadata, translate
from vo_service.adql.geometry import MAX_POLYGON_VERTICES, check_polygon, spoly_text


def _accepted_by_pgsphere(cur, vertices) -> bool:
    try:
        cur.execute("SELECT CAST(%s AS spoly)", (spoly_text(vertices),))
        return True
    except psycopg2.Error as exc:
        assert exc.pgcode == "XX000", exc
        return False


@pytest.fixture(scope="module")
def cur(adql_db):
    conn = psycopg2.connect(adql_db.query_dsn)
    conn.autocommit = True
    with conn.cursor() as cursor:
        yield cursor
    conn.close()


def _around(lon: float, lat: float, size: float, count: int, shuffle: list[int] | None):
    """A regular polygon around (lon, lat), its vertices optionally shuffled."""
    d = math.radians(size)
    points = []
    for k in range(count):
        bearing = 2 * math.pi * k / count
        b = math.asin(max(-1.0, min(1.0, math.sin(math.radians(lat)) * math.cos(d)
                                    + math.cos(math.radians(lat)) * math.sin(d)
                                    * math.cos(bearing))))
        a = math.atan2(math.sin(bearing) * math.sin(d) * math.cos(math.radians(lat)),
                       math.cos(d) - math.sin(math.radians(lat)) * math.sin(b))
        points.append(((lon + math.degrees(a)) % 360, math.degrees(b)))
    if shuffle is not None:
        points = [points[i % count] for i in shuffle]
    return points


coordinates = st.tuples(
    st.one_of(st.floats(0, 360), st.sampled_from([0.0, 90.0, 180.0, 270.0, 360.0])),
    st.one_of(st.floats(-90, 90), st.sampled_from([-90.0, 0.0, 90.0])))
polygons = st.one_of(
    st.lists(coordinates, min_size=3, max_size=8),
    st.builds(_around, st.floats(0, 360), st.floats(-89, 89),
              st.sampled_from([1e-6, 1e-4, 0.01, 1.0, 30.0, 89.0, 91.0, 120.0]),
              st.integers(3, 12),
              st.one_of(st.none(), st.lists(st.integers(0, 20), min_size=3, max_size=12))),
)


@settings(max_examples=1500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(vertices=polygons)
def test_accepted_polygons_are_accepted_by_pgsphere(cur, vertices) -> None:
    if check_polygon(vertices) is None:
        assert _accepted_by_pgsphere(cur, vertices), vertices


@pytest.mark.parametrize("vertices", [
    [(10, 20), (11, 20), (11, 21), (10, 21)],
    [(10, 20), (11, 20), (11, 21), (10, 21), (10, 20)],  # closed ring
    [(359.5, -1), (0.5, -1), (0.5, 1), (359.5, 1)],  # across RA 0
    [(0, 89), (120, 89), (240, 89)],  # around the pole
    _around(200, -45, 60, 7, None),
    _around(10, 20, 1e-3, 5, None),
])
def test_ordinary_polygons_are_accepted(cur, vertices) -> None:
    assert check_polygon(vertices) is None
    assert _accepted_by_pgsphere(cur, vertices)


@pytest.mark.parametrize("vertices,message", [
    ([(0, 0), (10, 10), (10, 0), (0, 10)], "cross or touch"),
    ([(0, 0), (120, 0), (240, 0)], "hemisphere"),
    ([(0, 0), (0, 0), (1, 1)], "three distinct"),
    ([(0, 0), (180, 0), (90, 10)], "180 degrees"),
    ([(0, 0)] * (MAX_POLYGON_VERTICES + 1), "at most"),
])
def test_refusals_say_why(cur, vertices, message) -> None:
    problem = check_polygon(vertices)
    assert problem is not None and message in problem


def test_adql_refuses_a_bow_tie_with_its_position() -> None:
    """Was a 500: the translator bound the polygon and pgSphere failed (XX000)."""
    with pytest.raises(AdqlError, match="cross or touch") as raised:
        translate("SELECT obs_id FROM ivoa.obscore WHERE 1 = INTERSECTS(s_region, "
                  "POLYGON('ICRS', 0, 0, 10, 10, 10, 0, 0, 10))", Metadata.from_declaration())
    assert raised.value.line == 1


@pytest.mark.parametrize("shape", ["CIRCLE('ICRS', 10, 20, -0.0)", "CAST('10 20 -0' AS CIRCLE)",
                                   "CIRCLE('ICRS', -0.0, -0.0, 1)",
                                   "POLYGON('ICRS', -0.0, -0.0, 1, 0, 1, 1)"])
def test_negative_zero_is_zero(cur, shape) -> None:
    """pgSphere's parser refuses '-0.0d' as a radius (a 500 before)."""
    statement = translate(f"SELECT {shape} AS s FROM ivoa.obscore",
                          Metadata.from_declaration())
    cur.execute(statement.sql, statement.params)

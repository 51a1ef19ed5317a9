"""Geometry against independent computations: astropy cones and cross-matches, a
numpy ADQL BOX, mocpy HEALPix indexes, and the spatial index being used."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from vo_service.adql import translate


def _run(conn, metadata, adql: str) -> list[tuple]:
    t = translate(adql, metadata)
    with conn.cursor() as cur:
        cur.execute(t.sql, t.params)
        return cur.fetchall()


def _coords(rows) -> SkyCoord:
    return SkyCoord([r["s_ra"] for r in rows] * u.deg, [r["s_dec"] for r in rows] * u.deg)


@pytest.mark.parametrize("ra,dec,radius", [(10, 20, 1), (10.3, 19.2, 0.4), (0, 0, 3),
                                           (359.5, 1, 2.5), (200, 84, 6)])
@pytest.mark.parametrize("form", [
    "DISTANCE(POINT(s_ra, s_dec), POINT({ra}, {dec})) < {r}",
    "DISTANCE({ra}, {dec}, s_ra, s_dec) <= {r}",
    "1 = CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {ra}, {dec}, {r}))",
    "INTERSECTS(CIRCLE({ra}, {dec}, {r}), POINT(s_ra, s_dec)) = 1",
])
def test_cone(adql_db, query_conn, metadata, form, ra, dec, radius) -> None:
    where = form.format(ra=ra, dec=dec, r=radius)
    got = {r[0] for r in _run(query_conn, metadata,
                              f"SELECT obs_id FROM ivoa.obscore WHERE {where}")}
    sep = _coords(adql_db.rows).separation(SkyCoord(ra * u.deg, dec * u.deg)).deg
    want = {r["obs_id"] for r, s in zip(adql_db.rows, sep, strict=True) if s < radius}
    assert got == want


def test_distance_values(adql_db, query_conn, metadata) -> None:
    rows = _run(query_conn, metadata, "SELECT obs_id, DISTANCE(POINT(s_ra, s_dec), "
                "POINT(10, 20)) AS d FROM ivoa.obscore")
    sep = dict(zip([r["obs_id"] for r in adql_db.rows],
                   _coords(adql_db.rows).separation(SkyCoord(10 * u.deg, 20 * u.deg)).deg,
                   strict=True))
    assert len(rows) == len(sep)
    for obs_id, d in rows:
        assert d == pytest.approx(sep[obs_id], abs=1e-9)


def test_crossmatch(adql_db, query_conn, metadata) -> None:
    got = {tuple(r) for r in _run(
        query_conn, metadata,
        "SELECT a.obs_id, b.obs_id FROM ivoa.obscore AS a JOIN ivoa.obscore AS b "
        "ON DISTANCE(a.s_ra, a.s_dec, b.s_ra, b.s_dec) < 0.25 WHERE a.obs_id <> b.obs_id")}
    coords = _coords(adql_db.rows)
    ids = [r["obs_id"] for r in adql_db.rows]
    want = set()
    for a, c in enumerate(coords):
        for b in np.flatnonzero(coords.separation(c).deg < 0.25):
            if a != b:
                want.add((ids[a], ids[b]))
    assert got == want and want


@pytest.mark.parametrize("ra,dec,w,h", [(10, 20, 2, 1), (0, 0, 4, 6), (10, 20, 1.5, 3.5)])
def test_box(adql_db, query_conn, metadata, ra, dec, w, h) -> None:
    """A point is in an ADQL BOX when, in the frame centred on the box, it lies between
    the two side meridians and the two great circles through the arm ends."""
    got = {r[0] for r in _run(
        query_conn, metadata, f"SELECT obs_id FROM ivoa.obscore WHERE CONTAINS(POINT(s_ra, "
        f"s_dec), BOX({ra}, {dec}, {w}, {h})) = 1")}
    a, d = np.radians([r["s_ra"] for r in adql_db.rows]), np.radians(
        [r["s_dec"] for r in adql_db.rows])
    v = np.stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)])
    a0, d0 = math.radians(ra), math.radians(dec)
    rz = np.array([[math.cos(a0), math.sin(a0), 0], [-math.sin(a0), math.cos(a0), 0], [0, 0, 1]])
    ry = np.array([[math.cos(d0), 0, math.sin(d0)], [0, 1, 0], [-math.sin(d0), 0, math.cos(d0)]])
    x, y, z = ry @ rz @ v
    inside = (x > 0) & (np.abs(np.arctan2(y, x)) <= math.radians(w) / 2) & (
        np.abs(z) <= x * math.tan(math.radians(h) / 2))
    want = {r["obs_id"] for r, ok in zip(adql_db.rows, inside, strict=True) if ok}
    assert got == want and want


def test_healpix_index_matches_mocpy(adql_db, query_conn, metadata) -> None:
    from astropy.coordinates import Latitude, Longitude
    from mocpy import MOC

    for order in (0, 3, 8, 14):
        rows = _run(query_conn, metadata, f"SELECT obs_id, ivo_healpix_index({order}, s_ra, "
                    "s_dec) FROM ivoa.obscore")
        got = dict(rows)
        for r in adql_db.rows[:60]:
            moc = MOC.from_lonlat(lon=Longitude([r["s_ra"]] * u.deg),
                                  lat=Latitude([r["s_dec"]] * u.deg), max_norder=order)
            assert got[r["obs_id"]] == int(moc.flatten()[0]), (order, r["s_ra"], r["s_dec"])


def test_cone_uses_the_spatial_index(adql_db, metadata) -> None:
    """As the table owner (under row-level security, tests/auth/test_leak_matrix.py)."""
    t = translate("SELECT obs_id FROM ivoa.obscore WHERE DISTANCE(POINT(s_ra, s_dec), "
                  "POINT(10, 20)) < 0.1", metadata)
    assert "spoint(radians(t0.s_ra), radians(t0.s_dec)) @ scircle(" in t.sql
    assert "obscore_s_point_idx" in _owner_plan(adql_db, t)


def _owner_plan(adql_db, t) -> str:
    """EXPLAIN of a translation as the table owner, sequential scans discouraged."""
    import psycopg2

    conn = psycopg2.connect(adql_db.owner_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SET enable_seqscan = off")
            cur.execute("EXPLAIN " + t.sql, t.params)
            return "\n".join(r[0] for r in cur.fetchall())
    finally:
        conn.close()


def test_geometry_values_and_fields(query_conn, metadata) -> None:
    t = translate("SELECT POINT(10, 20) AS p, CIRCLE(10, 20, 1) AS c, s_region, "
                  "POLYGON(1, 2, 3, 4, 5, 7) AS poly, CAST('2021-01-01' AS TIMESTAMP) AS ts "
                  "FROM ivoa.obscore WHERE obs_id = '2018-01/0001'", metadata)
    assert [(c.name, c.datatype, c.arraysize, c.xtype) for c in t.columns] == [
        ("p", "double", "*", "point"), ("c", "double", "*", "circle"),
        ("s_region", "char", "*", "adql:REGION"), ("poly", "double", "*", "polygon"),
        ("ts", "char", "*", "timestamp")]
    with query_conn.cursor() as cur:
        cur.execute(t.sql, t.params)
        (p, c, region, poly, ts), = cur.fetchall()
    lon, lat = (float(x) for x in p.strip("()").split(","))
    assert (math.degrees(lon), math.degrees(lat)) == pytest.approx((10, 20))
    assert c.startswith("<(") and region.startswith("{(") and poly.count("(") == 3
    assert str(ts) == "2021-01-01 00:00:00"


REGION_FORMS = [
    ("INTERSECTS(s_region, CIRCLE(10, 20, 0.5))",
     "s_region && scircle(spoint(radians(10), radians(20)), radians(0.5))"),
    ("INTERSECTS(CIRCLE(10, 20, 0.5), s_region)",
     "s_region && scircle(spoint(radians(10), radians(20)), radians(0.5))"),
    # {ra}, {dec}: the centre of a row's region.
    ("CONTAINS(POINT({ra}, {dec}), s_region)",
     "spoint(radians({ra}), radians({dec})) @ s_region"),
    ("INTERSECTS(s_region, POINT({ra}, {dec}))",
     "spoint(radians({ra}), radians({dec})) @ s_region"),
    ("CONTAINS(s_region, CIRCLE(10, 20, 1.2))",
     "s_region @ scircle(spoint(radians(10), radians(20)), radians(1.2))"),
    ("CONTAINS(CIRCLE(10.1, 20.1, 0.001), s_region)",
     "scircle(spoint(radians(10.1), radians(20.1)), radians(0.001)) @ s_region"),
    ("INTERSECTS(s_region, POLYGON(9, 19, 11, 19, 11, 21, 9, 21))",
     "s_region && spoly '{(9d,19d),(11d,19d),(11d,21d),(9d,21d)}'"),
]


@pytest.mark.parametrize("adql,exact", REGION_FORMS)
def test_region_predicates_equal_pgsphere_in_three_valued_logic(
        adql_db, query_conn, metadata, adql, exact) -> None:
    """s_region tests go through its bounding circle (tap_schema.declaration): the
    results, NULL included (rows without a region), must be pgSphere's plain test's."""
    centre = next(r for r in adql_db.rows if r["s_region"] is not None)
    adql, exact = (s.replace("{ra}", repr(centre["s_ra"])).replace("{dec}", repr(centre["s_dec"]))
                   for s in (adql, exact))
    with query_conn.cursor() as cur:
        cur.execute(f"SELECT obs_id, ({exact})::integer FROM ivoa.obscore")
        want = dict(cur.fetchall())
    assert None in want.values() and 1 in want.values() and 0 in want.values()
    values = dict(_run(query_conn, metadata, f"SELECT obs_id, {adql} FROM ivoa.obscore"))
    assert values == want
    for where, expected in ((f"{adql} = 1", 1), (f"{adql} = 0", 0),
                            (f"NOT ({adql} = 1)", 0), (f"{adql} IS NULL", None)):
        rows = _run(query_conn, metadata, f"SELECT obs_id FROM ivoa.obscore WHERE {where}")
        assert {r[0] for r in rows} == {k for k, v in want.items() if v == expected}, where


@pytest.mark.parametrize("adql", [f for f, _ in REGION_FORMS])
def test_region_predicates_use_the_bounding_circle_index(adql_db, metadata, adql) -> None:
    adql = adql.replace("{ra}", "10").replace("{dec}", "20")
    t = translate(f"SELECT obs_id FROM ivoa.obscore WHERE {adql} = 1", metadata)
    plan = _owner_plan(adql_db, t)
    assert "obscore_s_region_bound_idx" in plan, plan


def test_a_region_outside_its_bounding_circle_is_refused(adql_db) -> None:
    """The CHECK that makes the index exact: s_fov must hold s_region."""
    import psycopg2

    conn = psycopg2.connect(adql_db.owner_dsn)
    try:
        with conn.cursor() as cur, pytest.raises(psycopg2.errors.CheckViolation):
            cur.execute(
                "INSERT INTO ivoa.obscore (calib_level, obs_collection, obs_id,"
                " obs_publisher_did, s_ra, s_dec, s_fov, s_region) VALUES (1, 'x', 'x',"
                " 'ivo://lick.test/adql?bad', 10, 20, 0.01,"
                " spoly '{(9d,19d),(11d,19d),(11d,21d),(9d,21d)}')")
    finally:
        conn.rollback()
        conn.close()

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
    """As the table owner (no row-level security: pgSphere operators are not
    LEAKPROOF, so under RLS the planner keeps user predicates behind the policy)."""
    import psycopg2

    t = translate("SELECT obs_id FROM ivoa.obscore WHERE DISTANCE(POINT(s_ra, s_dec), "
                  "POINT(10, 20)) < 0.1", metadata)
    assert "spoint(radians(t0.s_ra), radians(t0.s_dec)) @ scircle(" in t.sql
    conn = psycopg2.connect(adql_db.owner_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SET enable_seqscan = off")
            cur.execute("EXPLAIN " + t.sql, t.params)
            plan = "\n".join(r[0] for r in cur.fetchall())
    finally:
        conn.close()
    assert "obscore_s_point_idx" in plan


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

"""The SQL of SIA queries, run on a database of its own with footprints placed on purpose.

Footprints all over the sky — across RA 0, at the poles, just beyond a parallel that
a great-circle side would include — and rows with NULL metadata; hundreds of random
circles, ranges and polygons.  Each statement from :func:`compile_query` must return
exactly the rows :mod:`tests.sia.reference` computes, and the spatial ones must be
able to use the GiST index of s_region's bounding circle under row-level security.
"""

from __future__ import annotations

import math
import random

import psycopg2
import pytest

from auth.identity import begin_query_transaction, load_secret
from auth.principals import ANONYMOUS
from tap_schema.declaration import T_INTERVAL
from tests.sia import reference
from vo_service.params import Params
from vo_service.services.sia import compile_query, range_circle
from vo_service.services.sia_params import Range, parse_sia_request
from vo_service.settings import TapSettings

PREFIX = "ivo://lick.test/sia?"


def _footprint(lon: float, lat: float, size: float, sides: int = 4) -> list[tuple[float, float]]:
    """A small polygon around (lon, lat) (vertices on a circle of radius ``size``)."""
    d0 = math.radians(lat)
    r = math.radians(size)
    vertices = []
    for k in range(sides):
        bearing = 2 * math.pi * (k + 0.5) / sides
        b = math.asin(math.sin(d0) * math.cos(r) + math.cos(d0) * math.sin(r) * math.cos(bearing))
        a = math.atan2(math.sin(bearing) * math.sin(r) * math.cos(d0),
                       math.cos(r) - math.sin(d0) * math.sin(b))
        vertices.append(((lon + math.degrees(a)) % 360, math.degrees(b)))
    return vertices


PLACED = {  # name -> (centre, size in degrees)
    "across_ra0": ((0.0, 10.0), 0.3),
    "near_north_pole": ((123.0, 89.8), 0.3),
    "covers_north_pole": ((0.0, 89.95), 0.2),
    "near_south_pole": ((300.0, -89.7), 0.2),
    "above_parallel": ((30.0, 51.5), 0.2),  # outside RANGE 0 60 40 50, inside its BOX
    "in_range": ((30.0, 45.0), 0.2),
    "equator": ((180.0, 0.0), 0.5),
}


def _rows() -> list[dict[str, object]]:
    rng = random.Random(20240611)
    rows = []
    for name, ((lon, lat), size) in PLACED.items():
        rows.append({"name": name, "centre": (lon, lat), "size": size,
                     "vertices": _footprint(lon, lat, size)})
    for i in range(200):
        lon, lat = rng.uniform(0, 360), math.degrees(math.asin(rng.uniform(-1, 1)))
        size = rng.choice([0.01, 0.1, 0.5])
        rows.append({"name": f"random{i}", "centre": (lon, lat), "size": size,
                     "vertices": _footprint(lon, lat, size, rng.choice([4, 6]))})
    rows.append({"name": "no_region", "centre": (None, None), "size": None, "vertices": None})
    for i, row in enumerate(rows):
        row["t_min"] = None if i % 17 == 0 else 58000.0 + i
        row["t_max"] = None if i % 17 == 0 else 58000.0 + i + 0.01 * (i % 5)
        row["em_min"] = None if i % 13 == 0 else 4e-7 + 1e-8 * (i % 30)
        row["em_max"] = None if i % 13 == 0 else 6e-7 + 1e-8 * (i % 30)
        row["t_exptime"] = None if i % 11 == 0 else float(i % 40) * 30
    return rows


@pytest.fixture(scope="module")
def sia_db(database):
    db = database.new_database("sia_statement")
    conn = psycopg2.connect(db.owner_dsn)
    with conn, conn.cursor() as cur:
        cur.execute("TRUNCATE lick.files, ivoa.obscore CASCADE")
        for row in _rows():
            vertices = row["vertices"]
            region = None if vertices is None else (
                "{" + ",".join(f"({a!r}d,{b!r}d)" for a, b in vertices) + "}")  # type: ignore[union-attr]
            centre = row["centre"]
            fov = None if row["size"] is None else 2.2 * row["size"]  # type: ignore[operator]
            cur.execute(
                "INSERT INTO ivoa.obscore (dataproduct_type, calib_level, obs_collection, "
                "obs_id, obs_publisher_did, s_ra, s_dec, s_fov, s_region, t_min, t_max, "
                "t_exptime, em_min, em_max, obs_release_date, data_rights, owner_ids) "
                "VALUES ('image', 1, 'test', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                "'2001-01-01', 'public', '{}')",
                (row["name"], PREFIX + str(row["name"]), centre[0], centre[1],  # type: ignore[index]
                 fov, region, row["t_min"], row["t_max"],
                 row["t_exptime"], row["em_min"], row["em_max"]))
        cur.execute("ANALYZE ivoa.obscore")
    conn.close()
    return db


@pytest.fixture(scope="module")
def rows(sia_db):
    return reference.read_rows(sia_db.owner_dsn)


def _run(dsn: str, query: dict[str, list[str]]) -> set[str]:
    request = parse_sia_request(Params((n, v) for n, vs in query.items() for v in vs),
                                TapSettings())
    statement = compile_query(request)
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement.sql, statement.params)
            index = [c.name for c in statement.columns].index("obs_publisher_did")
            return {str(r[index]) for r in cur.fetchall()}
    finally:
        conn.close()


def _did(name: str) -> str:
    return PREFIX + name


@pytest.mark.parametrize("pos,inside,outside", [
    ("RANGE 0 60 40 50", {"in_range"}, {"above_parallel"}),  # parallels, not great circles
    ("RANGE 0 60 40 52", {"in_range", "above_parallel"}, set()),
    ("RANGE 0 360 89 +Inf", {"near_north_pole", "covers_north_pole"}, {"near_south_pole"}),
    ("RANGE -Inf +Inf -Inf -89", {"near_south_pole"}, {"covers_north_pole"}),
    ("RANGE 350 360 0 20", {"across_ra0"}, set()),
    ("RANGE 0 5 0 20", {"across_ra0"}, set()),
    ("RANGE 10 20 -90 90", set(), {"across_ra0", "equator"}),
    ("CIRCLE 359.9 10 0.1", {"across_ra0"}, {"equator"}),
    ("CIRCLE 0 90 0.5", {"near_north_pole", "covers_north_pole"}, set()),
    ("POLYGON 0 88 120 88 240 88", {"near_north_pole", "covers_north_pole"}, {"in_range"}),
    ("POLYGON 179 -1 181 -1 181 1 179 1", {"equator"}, {"across_ra0"}),
    ("RANGE -Inf +Inf -Inf +Inf", {"equator", "across_ra0"}, {"no_region"}),
])
def test_placed_footprints(sia_db, rows, pos, inside, outside) -> None:
    query = {"POS": [pos]}
    got = _run(sia_db.owner_dsn, query)
    assert got == reference.expected(rows, query)
    assert {_did(n) for n in inside} <= got
    assert not {_did(n) for n in outside} & got


def test_random_shapes_match_the_reference(sia_db, rows) -> None:
    rng = random.Random(7)
    nonempty = 0
    for _ in range(300):
        lon, lat = rng.uniform(0, 360), math.degrees(math.asin(rng.uniform(-1, 1)))
        size = rng.choice([0.5, 5.0, 30.0, 80.0])
        kind = rng.choice(["CIRCLE", "RANGE", "POLYGON"])
        if kind == "CIRCLE":
            pos = f"CIRCLE {lon!r} {lat!r} {size!r}"
        elif kind == "RANGE":
            lon1, lon2 = sorted((lon, min(360.0, lon + rng.uniform(0, 2 * size))))
            lat1 = max(-90.0, lat - rng.uniform(0, size))
            lat2 = min(90.0, lat + rng.uniform(0, size))
            pos = f"RANGE {lon1!r} {lon2!r} {lat1!r} {lat2!r}"
        else:
            vertices = _footprint(lon, lat, min(size, 60.0), rng.choice([3, 5, 8]))
            pos = "POLYGON " + " ".join(f"{a!r} {b!r}" for a, b in vertices)
        query = {"POS": [pos]}
        expected = reference.expected(rows, query)
        assert _run(sia_db.owner_dsn, query) == expected, pos
        nonempty += bool(expected)
    assert nonempty > 30, nonempty


@pytest.mark.parametrize("query", [
    {"TIME": ["-Inf +Inf"]}, {"TIME": ["58010 58020"]}, {"TIME": ["58010.005"]},
    {"BAND": ["-Inf +Inf"]}, {"BAND": ["5.5e-7"]}, {"BAND": ["6.2e-7 +Inf"]},
    {"EXPTIME": ["-Inf +Inf"]}, {"EXPTIME": ["0"]}, {"EXPTIME": ["300 600", "900"]},
    {"POS": ["RANGE -Inf +Inf -Inf +Inf"], "TIME": ["-Inf +Inf"], "BAND": ["-Inf +Inf"]},
])
def test_null_metadata_never_matches(sia_db, rows, query) -> None:
    got = _run(sia_db.owner_dsn, query)
    assert got == reference.expected(rows, query)
    everything = {r.did for r in rows}
    assert got < everything  # the rows with NULLs (at least) are left out


def test_range_circles_hold_their_ranges() -> None:
    """The index circle of a range holds every point of it (checked on a grid)."""
    rng = random.Random(3)
    for _ in range(500):
        lon1 = rng.uniform(0, 360)
        lon2 = min(360.0, lon1 + rng.uniform(0, 200))
        lat1 = rng.uniform(-90, 90)
        lat2 = rng.uniform(lat1, 90)
        circle = range_circle(Range(lon1, lon2, lat1, lat2))
        if circle is None:
            continue
        centre = reference.unit(circle[0], circle[1])
        for i in range(11):
            for j in range(11):
                point = reference.unit(lon1 + (lon2 - lon1) * i / 10,
                                       lat1 + (lat2 - lat1) * j / 10)
                assert math.degrees(reference.angle(centre, point)) <= circle[2] + 1e-9


@pytest.fixture(scope="module")
def leakproof(sia_db) -> None:
    """The embedded set-up makes pgSphere's tests LEAKPROOF in every database it
    creates; a database given from outside may lack it (no superuser here)."""
    if sia_db.target.admin_dsn is None:
        pytest.skip("no superuser DSN: the geometry functions may not be LEAKPROOF")


@pytest.mark.parametrize("name,value,index", [
    ("POS", "CIRCLE 10 20 1", "obscore_s_region_bound_idx"),
    ("POS", "POLYGON 10 20 11 20 11 21", "obscore_s_region_bound_idx"),
    ("POS", "RANGE 10 12 20 22", "obscore_s_region_bound_idx"),
])
def test_queries_use_the_index_under_row_level_security(sia_db, leakproof, name, value,
                                                        index):
    owner = psycopg2.connect(sia_db.owner_dsn)
    with owner, owner.cursor() as cur:
        secret = load_secret(cur)
    owner.close()
    statement = compile_query(parse_sia_request(Params([(name, value)]), TapSettings()))
    conn = psycopg2.connect(sia_db.query_dsn)
    try:
        with conn.cursor() as cur:
            begin_query_transaction(cur, ANONYMOUS, secret)
            cur.execute("SET LOCAL enable_seqscan = off")
            cur.execute("EXPLAIN " + statement.sql, statement.params)
            plan = "\n".join(r[0] for r in cur.fetchall())
    finally:
        conn.rollback()
        conn.close()
    assert index in plan, plan


@pytest.mark.parametrize("time", ["58000.1 58000.5", "-Inf 58000.5", "58000.1 +Inf"])
def test_time_overlap_can_use_its_index_under_row_level_security(sia_db, leakproof, time):
    """TIME tests [t_min, t_max] as a box first (tap_schema.declaration.T_INTERVAL), whose
    GiST index serves under row-level security (LEAKPROOF box functions, auth.policy).
    On this small table the planner may prefer a btree, so the box term is explained
    alone: it must be an index condition, not a filter after the policy."""
    owner = psycopg2.connect(sia_db.owner_dsn)
    with owner, owner.cursor() as cur:
        secret = load_secret(cur)
    owner.close()
    statement = compile_query(parse_sia_request(Params([("TIME", time)]), TapSettings()))
    box = T_INTERVAL.format(t="t0.")
    assert f"{box} && box(point(" in statement.sql
    start = statement.sql.index(box)
    term = statement.sql[start:statement.sql.index(" AND ", start)]
    conn = psycopg2.connect(sia_db.query_dsn)
    try:
        with conn.cursor() as cur:
            begin_query_transaction(cur, ANONYMOUS, secret)
            cur.execute("SET LOCAL enable_seqscan = off")
            cur.execute(f"EXPLAIN SELECT 1 FROM ivoa.obscore AS t0 WHERE {term}",
                        statement.params)
            plan = "\n".join(r[0] for r in cur.fetchall())
    finally:
        conn.rollback()
        conn.close()
    assert "obscore_t_interval_idx" in plan, plan

"""Fixtures of the ADQL tests: a database of their own with synthetic public rows.

Rows are written as the owner role (all public: released in 2020, no owners) and
queries run as the read-only query role, as the service will run them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg2
import psycopg2.extensions
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from vo_service.adql import Metadata

N_ROWS = 240
TARGETS = ["M31", "m31 core", "NGC 1275", "Vega", None, "O'Brien's star", "sn 2011fe",
           "HD 1234", "M 31", "Feige 34"]
INSTRUMENTS = [("Kast Blue", "Shane 3-m", "spectrum"), ("Kast Red", "Shane 3-m", "spectrum"),
               ("ShARCS", "Shane 3-m", "image"), ("Nickel Direct", "Nickel 1-m", "image")]


def _box(ra: float, dec: float, half: float) -> tuple[str, float]:
    """A small quadrilateral around (ra, dec) as an spoly literal, and its s_fov: the
    diameter of the circle around (ra, dec) through its farthest corner."""
    d = half / max(math.cos(math.radians(dec)), 0.1)
    corners = [(ra - d, dec - half), (ra + d, dec - half), (ra + d, dec + half),
               (ra - d, dec + half)]
    centre = SkyCoord(ra * u.deg, dec * u.deg)
    fov = 2 * max(float(centre.separation(SkyCoord(a * u.deg, b * u.deg)).deg)
                  for a, b in corners)
    return "{" + ",".join(f"({a % 360!r}d,{b!r}d)" for a, b in corners) + "}", fov


def _rows() -> list[dict[str, object]]:
    rng = random.Random(20261126)
    rows = []
    for i in range(N_ROWS):
        if i % 3 == 0:  # a cluster around (10, 20) for cones and cross-matches
            ra, dec = 10 + rng.uniform(-1.5, 1.5), 20 + rng.uniform(-1.5, 1.5)
        elif i % 7 == 0:  # near RA 0/360
            ra, dec = rng.uniform(-2, 2) % 360, rng.uniform(-5, 5)
        else:
            ra, dec = rng.uniform(0, 360), rng.uniform(-30, 85)
        instrument, facility, product = INSTRUMENTS[i % 4]
        exptime = None if i % 11 == 0 else round(rng.uniform(1, 1200), 3)
        t_min = 58000 + i * 0.37
        region: str | None
        fov: float | None
        region, fov = _box(ra, dec, 0.05 + (i % 4) * 0.02)
        if i % 5 == 0:  # some rows without a region (NULL geometry in predicates)
            region, fov = None, None
        rows.append({
            "obs_publisher_did": f"ivo://lick.test/adql?{i:04d}",
            "obs_id": f"2018-01/{i:04d}",
            "calib_level": 1,
            "obs_collection": f"Lick {instrument}",
            "dataproduct_type": product,
            "target_name": TARGETS[i % len(TARGETS)],
            "s_ra": ra,
            "s_dec": dec,
            "s_fov": fov,
            "s_region": region,
            "s_resolution": None if i % 6 == 0 else 0.5 + (i % 9) * 0.1,
            "t_min": t_min,
            "t_max": t_min + (exptime or 0) / 86400,
            "t_exptime": exptime,
            "em_min": 3.5e-7 + (i % 5) * 1e-8,
            "em_max": 5.5e-7 + (i % 7) * 1e-8,
            "instrument_name": instrument,
            "facility_name": facility,
            "access_estsize": 1000 + i * 17,
            "obs_release_date": "2020-01-01",
            "data_rights": "public",
        })
    return rows


@dataclass
class AdqlDatabase:
    """The ADQL test database: DSNs and the rows inserted (for numpy references)."""

    owner_dsn: str
    query_dsn: str
    rows: list[dict[str, object]]


@pytest.fixture(scope="session")
def adql_db(database) -> AdqlDatabase:
    db = database.new_database("adql")
    rows = _rows()
    conn = psycopg2.connect(db.owner_dsn)
    with conn, conn.cursor() as cur:
        cur.execute("TRUNCATE lick.files, ivoa.obscore CASCADE")
        columns = list(rows[0])
        placeholders = ", ".join(f"%({c})s" for c in columns)
        cur.executemany(
            f"INSERT INTO ivoa.obscore ({', '.join(columns)}, owner_ids) "
            f"VALUES ({placeholders}, '{{}}')", rows)
        for i, row in enumerate(rows[::2]):
            night = f"2018-01-{(i % 28) + 1:02d}"
            cur.execute(
                "INSERT INTO lick.files (obs_publisher_did, path, filename, night, "
                "instrument_dir, instrument, telescope, frame_type, object, observer, "
                "program, date_obs, exptime, airmass, ra, dec, release_date, owner_ids) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                "'2020-01-01', '{}')",
                (row["obs_publisher_did"], f"{night[:7]}/{night[8:]}/shane/b{i:04d}.fits",
                 f"b{i:04d}.fits", night, "shane" if i % 3 else "nickel",
                 row["instrument_name"], row["facility_name"],
                 ["science", "bias", "flat", "arc"][i % 4], row["target_name"],
                 ["Smith", "Jones", None][i % 3], f"2018A_{i % 5}",
                 f"{night} 0{i % 10}:15:00", row["t_exptime"],
                 None if i % 8 == 0 else 1.0 + (i % 10) / 10, row["s_ra"], row["s_dec"]))
    conn.close()
    return AdqlDatabase(db.owner_dsn, db.query_dsn, rows)


@pytest.fixture(scope="session")
def query_conn(adql_db) -> Iterator[psycopg2.extensions.connection]:
    """A read-only connection of the query role (autocommit, short statement timeout)."""
    conn = psycopg2.connect(adql_db.query_dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET statement_timeout = '20s'")
        cur.execute("SET default_transaction_read_only = on")
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def readonly_conn(adql_db) -> Iterator[psycopg2.extensions.connection]:
    """The query role in read-only transactions (tests roll back after each statement)."""
    conn = psycopg2.connect(adql_db.query_dsn)
    conn.set_session(readonly=True)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def metadata() -> Metadata:
    return Metadata.from_declaration()

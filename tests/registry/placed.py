"""Databases of their own for the registry tests, with datasets placed on purpose.

Each server publishes records with its own base URL; servers on one database with
different base URLs would take turns re-publishing them.  So each module that looks
at datestamps gets a database of its own, holding a few ObsCore rows whose positions,
times, bands and release dates the tests choose: public images and spectra near
(10, 20) and (50, 20), and proprietary ones far away (near (200, -30)).
"""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import dataclass

import psycopg2

from tests.conftest import PROJECT, TestDatabase, cli_env, database_env

FUTURE = "2200-01-01"
PAST = "2001-01-01"


@dataclass(frozen=True)
class Placed:
    did: str
    collection: str
    ra: float
    dec: float
    half: float  # half the side of the square footprint, degrees
    t_min: float
    em_min: float
    em_max: float
    release: str | None  # None: undetermined (staff only)
    product: str = "image"
    instrument: str = "Nickel Direct"


PUBLIC = [
    Placed("ivo://test/r?nickel-1", "Lick/Nickel", 10.0, 20.0, 0.05, 55000.0, 4e-7, 5e-7, PAST),
    Placed("ivo://test/r?nickel-2", "Lick/Nickel", 50.0, 20.0, 0.05, 56000.0, 5e-7, 6e-7, PAST),
    Placed("ivo://test/r?kast-1", "Lick/Kast", 10.2, 20.1, 0.001, 57000.0, 3.5e-7, 1e-6, PAST,
           "spectrum", "Kast Red"),
]
#: Far from every public footprint, earlier and bluer than any public dataset.
PROPRIETARY = [
    Placed("ivo://test/r?nickel-secret", "Lick/Nickel", 200.0, -30.0, 0.05, 40000.0, 1e-7,
           2e-7, FUTURE),
    Placed("ivo://test/r?hidden-1", "Lick/Hidden", 250.0, -40.0, 0.05, 41000.0, 1e-7, 2e-7,
           FUTURE, "image", "Hidden Camera"),
    Placed("ivo://test/r?undated", "Lick/Nickel", 300.0, 60.0, 0.05, 42000.0, 1e-7, 2e-7, None),
]


def insert(dsn: str, rows: list[Placed]) -> None:
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        for r in rows:
            dra = r.half / math.cos(math.radians(r.dec))
            corners = [(r.ra - dra, r.dec - r.half), (r.ra + dra, r.dec - r.half),
                       (r.ra + dra, r.dec + r.half), (r.ra - dra, r.dec + r.half)]
            polygon = "{" + ",".join(f"({a}d,{b}d)" for a, b in corners) + "}"
            cur.execute(
                "INSERT INTO ivoa.obscore (calib_level, obs_collection, obs_id, "
                "obs_publisher_did, dataproduct_type, s_ra, s_dec, s_fov, s_region, t_min, "
                "t_max, em_min, em_max, obs_release_date, data_rights, owner_ids, "
                "instrument_name, facility_name) VALUES (1, %s, %s, %s, %s, %s, %s, %s, "
                "spoly(%s), %s, %s, %s, %s, %s, %s, %s, %s, 'Lick Observatory')",
                (r.collection, r.did, r.did, r.product, r.ra, r.dec, r.half * 3.0, polygon,
                 r.t_min, r.t_min + 0.01, r.em_min, r.em_max, r.release,
                 "public" if r.release == PAST else "proprietary", [999], r.instrument))
    conn.close()


def execute(dsn: str, sql: str, params: tuple[object, ...] = ()) -> None:
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute(sql, params)
    conn.close()


def prepared(database: TestDatabase, name: str) -> tuple[TestDatabase, dict[str, str]]:
    """A database of its own with :data:`PUBLIC` and :data:`PROPRIETARY`, the registry
    emptied; and the environment that points a server or the CLI at it."""
    own = database.new_database(name)
    execute(own.owner_dsn, "TRUNCATE lick.files, ivoa.obscore, registry.records, "
            "registry.coverage CASCADE")
    execute(own.owner_dsn, "UPDATE registry.state SET coverage_stale = true")
    insert(own.owner_dsn, PUBLIC + PROPRIETARY)
    return own, database_env(database, own)


def registry_refresh(database: TestDatabase, env: dict[str, str]) -> str:
    """``lick-archive registry refresh`` on the database ``env`` points at."""
    full = {**cli_env(database), **env}
    result = subprocess.run([sys.executable, "-m", "vo_service.cli", "registry", "refresh"],
                            env=full, cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def server_env(env: dict[str, str], **registry: str) -> dict[str, str]:
    out = dict(env)
    for key, value in registry.items():
        out[f"LICK_ARCHIVE_REGISTRY_{key.upper()}"] = value
    return out


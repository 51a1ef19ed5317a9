"""Cost of the row-level security policies: 100k ObsCore rows, per principal.

    python -m bench.auth_rls [--rows N] [OWNER_DSN QUERY_DSN]

Without DSNs a throwaway embedded cluster is created (and removed); with them, the
database must be a throwaway one migrated to head (the rows of ivoa.obscore and
lick.files are replaced).  Prints median timings of the same queries run by the owner
(no policies: the baseline) and by the query role as anonymous, an observer, a user
with a program grant, and staff.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from auth import grants, users
from auth.identity import begin_query_transaction, load_secret
from auth.principals import Principal
from bench.report import record

QUERIES = {
    "count(*)": "SELECT count(*) FROM ivoa.obscore",
    "cone 1deg": "SELECT count(*) FROM ivoa.obscore WHERE spoint(radians(s_ra), radians(s_dec))"
                 " @ scircle(spoint(radians(180.0), radians(10.0)), radians(1.0))",
    "t_min range": "SELECT count(*) FROM ivoa.obscore WHERE t_min BETWEEN 60000 AND 60010",
    "by did": "SELECT count(*) FROM ivoa.obscore WHERE obs_publisher_did = 'ivo://b?77777'",
    "join files": "SELECT count(*) FROM ivoa.obscore o JOIN lick.files f USING (obs_publisher_did)",
}


def fill(owner_dsn: str, n: int) -> dict[str, Principal]:
    rng = random.Random(1)
    conn = psycopg2.connect(owner_dsn)
    with conn, conn.cursor() as cur:
        cur.execute("TRUNCATE ivoa.obscore CASCADE; DELETE FROM auth.users")
        rows, files = [], []
        for i in range(n):
            night = date(2015, 1, 1) + timedelta(days=rng.randrange(3650))
            release = None if i % 97 == 0 else datetime(night.year + 2, 1, 1) + timedelta(
                days=rng.randrange(2000))
            owners = [rng.randrange(1, 400)]
            did = f"ivo://b?{i}"
            rows.append((1, "c", did, did, rng.uniform(0, 360), rng.uniform(-30, 70),
                         59000 + rng.uniform(0, 3650), release, owners))
            files.append((did, f"p{i}", f"f{i}", night, "shane", f"P{i % 200}", release, owners))
        psycopg2.extras.execute_values(
            cur, "INSERT INTO ivoa.obscore (calib_level, obs_collection, obs_id,"
            " obs_publisher_did, s_ra, s_dec, t_min, obs_release_date, owner_ids) VALUES %s",
            rows, page_size=5000)
        psycopg2.extras.execute_values(
            cur, "INSERT INTO lick.files (obs_publisher_did, path, filename, night,"
            " instrument_dir, program, release_date, owner_ids) VALUES %s", files,
            page_size=5000)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE ivoa.obscore")
        cur.execute("VACUUM ANALYZE lick.files")
    conn.autocommit = False
    users.apply_schedule(conn, [users.ScheduleObserver(7, "O", "B", "obs@x", None)])
    users.add_user(conn, "granted@x", None)
    users.add_user(conn, "staff@x", None, is_staff=True)
    grants.create_grant(conn, user_login="granted@x", program="P7")
    out = {"anonymous": Principal(None, "", "anonymous")}
    for name, login in (("observer", "obs@x"), ("program grant", "granted@x"),
                        ("staff", "staff@x")):
        user = users.get_user(conn, login=login)
        assert user is not None
        p = users.principal_for(conn, user.user_id)
        assert p is not None
        out[name] = p
    conn.close()
    return out


def timed(conn: psycopg2.extensions.connection, sql: str,
          prepare: Callable[[psycopg2.extensions.cursor], None] | None = None,
          repeat: int = 7) -> tuple[float, object]:
    samples: list[float] = []
    result: object = None
    for _ in range(repeat):
        with conn.cursor() as cur:
            if prepare:
                prepare(cur)
            start = time.perf_counter()
            cur.execute(sql)
            row = cur.fetchone()
            assert row is not None
            result = row[0]
            samples.append(time.perf_counter() - start)
        conn.rollback()
    return statistics.median(samples) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("dsns", nargs="*", metavar="DSN", help="OWNER_DSN QUERY_DSN")
    args = parser.parse_args()
    if args.dsns:
        if len(args.dsns) != 2:
            parser.error("give both OWNER_DSN and QUERY_DSN, or neither")
        run(args.dsns[0], args.dsns[1], args.rows)
        return
    from pathlib import Path

    from vo_service.database import setup
    from vo_service.settings import load_settings

    work = Path(tempfile.mkdtemp(prefix="bench-rls-"))
    work.chmod(0o755)
    project = Path(__file__).resolve().parent.parent
    settings = load_settings(project / "conf" / "lick-archive.toml", environ={}).replace(
        service={"data_dir": work}, database={"url": ""})
    try:
        print("starting a throwaway PostgreSQL ...", flush=True)
        target = setup.initialize(settings)
        try:
            run(target.owner_dsn, target.query_dsn, args.rows)
        finally:
            setup.embedded_cluster(settings).destroy()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(owner_dsn: str, query_dsn: str, n: int) -> None:
    principals = fill(owner_dsn, n)
    owner = psycopg2.connect(owner_dsn)
    with owner.cursor() as cur:
        secret = load_secret(cur)
    owner.rollback()
    query = psycopg2.connect(query_dsn)
    print(f"{n} rows; median ms (rows counted)")
    header = ["query", "owner (no RLS)", *principals]
    print(" | ".join(header))
    figures: dict[str, tuple[float, dict[str, float]]] = {}
    for label, sql in QUERIES.items():
        cells = [label]
        base, res = timed(owner, sql)
        cells.append(f"{base:.1f} ({res})")
        under_rls = {}
        for name, p in principals.items():
            def prep(cur: psycopg2.extensions.cursor, p: Principal = p) -> None:
                begin_query_transaction(cur, p, secret)
            ms, res = timed(query, sql, prep)
            under_rls[name] = ms
            cells.append(f"{ms:.1f} ({res})")
        figures[label] = (base, under_rls)
        print(" | ".join(cells))
    for label in ("cone 1deg", "t_min range"):
        base, under_rls = figures[label]
        for name in ("anonymous", "observer", "program grant"):
            record("auth_rls", f"{label} on {n:,} rows, {name}, median", under_rls[name],
                   "ms", baseline=base, baseline_name="owner, no RLS")
    with query.cursor() as cur:
        begin_query_transaction(cur, principals["observer"], secret)
        cur.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + QUERIES["cone 1deg"])
        print("\n".join(r[0] for r in cur.fetchall()))
    query.rollback()


if __name__ == "__main__":
    main()

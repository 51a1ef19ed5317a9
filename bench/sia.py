"""SIA benchmark: cone queries through /sia/query against the same cones through /tap/sync.

    .venv/bin/python -m bench.sia [--rows 1000000] [--requests 300]

Uses bench.tap's database (var/bench-tap: ``--rows`` synthetic public images in
ivoa.obscore, built once) and server.  Measures, over HTTP, SIA cones
(``POS=CIRCLE ra dec 0.1`` centred on rows, MAXREC=100: tens of rows each) and, as
the baseline in the same run, the equivalent ADQL through /tap/sync (every ObsCore
column, images only, ``INTERSECTS(s_region, CIRCLE(...))``), alternating the two so
that both see the same machine; prints p50/p99 of each and the ratio (target: SIA
p50 <= 10 ms), the latency of MAXREC=0 (first call: it reads the visible parameter
values; then: reused), and ``EXPLAIN (ANALYZE, BUFFERS)`` of one generated
statement, run as an anonymous requester, so that the index use is visible.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import httpx
import psycopg2

from auth.identity import begin_query_transaction, load_secret
from auth.principals import ANONYMOUS
from bench.tap import PROJECT, build_database, start_server
from vo_service.params import Params
from vo_service.services.sia import compile_query
from vo_service.services.sia_params import parse_sia_request
from vo_service.settings import TapSettings

RADIUS = 0.1
ADQL = ("SELECT * FROM ivoa.obscore WHERE 1 = INTERSECTS(s_region, CIRCLE('ICRS', {ra}, "
        "{dec}, {radius})) AND dataproduct_type IN ('image', 'cube')")


def _cone(i: int, rows: int) -> tuple[float, float]:
    """A cone centre on a row of bench.tap's table (its positions, in the same
    formula), so that every cone finds rows (20 to 40 at this radius)."""
    n = 1 + (i * 7919) % rows
    return round((n * 0.0137) % 360, 6), round((n * 0.0071) % 170 - 85, 6)


def _timed(client: httpx.Client, url: str, params: dict[str, str]) -> float:
    start = time.perf_counter()
    reply = client.get(url, params=params)
    elapsed = time.perf_counter() - start
    reply.raise_for_status()
    return elapsed


def cones(base: str, requests: int, rows: int) -> tuple[list[float], list[float]]:
    """(SIA, TAP) latencies of the same cones, alternating; ten of each to warm up."""
    sia, tap = [], []
    with httpx.Client(timeout=60) as client:
        for i in range(requests + 10):
            ra, dec = _cone(i, rows)
            sia_params = {"POS": f"CIRCLE {ra} {dec} {RADIUS}", "MAXREC": "100"}
            tap_params = {"LANG": "ADQL", "MAXREC": "100",
                          "QUERY": ADQL.format(ra=ra, dec=dec, radius=RADIUS)}
            pair = [(sia, f"{base}/sia/query", sia_params),
                    (tap, f"{base}/tap/sync", tap_params)]
            for times, url, params in pair if i % 2 else reversed(pair):
                elapsed = _timed(client, url, params)
                if i >= 10:
                    times.append(elapsed)
    return sia, tap


def rows_found(base: str, requests: int, rows: int) -> list[int]:
    """How many rows the cones find (through TAP COUNT, outside the timings)."""
    counts = []
    with httpx.Client(timeout=60) as client:
        for i in range(0, requests, max(1, requests // 30)):
            ra, dec = _cone(i, rows)
            query = ADQL.format(ra=ra, dec=dec, radius=RADIUS).replace("*", "COUNT(*) AS n", 1)
            reply = client.get(f"{base}/tap/sync", params={"LANG": "ADQL", "QUERY": query,
                                                           "RESPONSEFORMAT": "csv"})
            reply.raise_for_status()
            counts.append(int(reply.text.split()[-1]))
    return counts


def describe_latencies(base: str, requests: int) -> tuple[float, list[float]]:
    """MAXREC=0: the first call (reads the values: a scan of every row), then calls
    that reuse them (sia.VALUES_TTL_S)."""
    with httpx.Client(timeout=60) as client:
        first = _timed(client, f"{base}/sia/query", {"MAXREC": "0"})
        return first, [_timed(client, f"{base}/sia/query", {"MAXREC": "0"})
                       for _ in range(requests)]


def explain(owner_dsn: str, query_dsn: str, rows: int) -> str:
    ra, dec = _cone(17, rows)
    request = parse_sia_request(Params([("POS", f"CIRCLE {ra} {dec} {RADIUS}"),
                                        ("MAXREC", "100")]), TapSettings())
    statement = compile_query(request)
    with psycopg2.connect(owner_dsn) as owner, owner.cursor() as cur:
        secret = load_secret(cur)
    conn = psycopg2.connect(query_dsn)
    try:
        with conn.cursor() as cur:
            begin_query_transaction(cur, ANONYMOUS, secret)
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement.sql, statement.params)
            return "\n".join(row[0] for row in cur.fetchall())
    finally:
        conn.rollback()
        conn.close()


def _p99(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[max(0, int(len(ordered) * 0.99) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()
    data_dir: Path = PROJECT / "var" / "bench-tap"
    target = build_database(data_dir, args.rows)
    process = start_server(data_dir, args.port)
    base = f"http://127.0.0.1:{args.port}"
    try:
        sia, tap = cones(base, args.requests, args.rows)
        found = rows_found(base, args.requests, args.rows)
        sia_p50, tap_p50 = statistics.median(sia) * 1000, statistics.median(tap) * 1000
        print(f"SIA cone (POS=CIRCLE, r={RADIUS} deg, MAXREC=100) over HTTP, {len(sia)} "
              f"requests, {min(found)} to {max(found)} rows each: p50 {sia_p50:.1f} ms, "
              f"p99 {_p99(sia) * 1000:.1f} ms (target p50 <= 10 ms)")
        print(f"baseline, the same cones as ADQL through /tap/sync: p50 {tap_p50:.1f} ms, "
              f"p99 {_p99(tap) * 1000:.1f} ms")
        print(f"ratio SIA/TAP: p50 {sia_p50 / tap_p50:.2f}, "
              f"p99 {_p99(sia) / _p99(tap):.2f}")
        first, again = describe_latencies(base, 50)
        print(f"MAXREC=0 self-description: first {first * 1000:.0f} ms (reads the values of "
              f"{args.rows:,} rows as the requester), then p50 "
              f"{statistics.median(again) * 1000:.1f} ms (values reused for a minute)")
        print("\nEXPLAIN (ANALYZE, BUFFERS) of an SIA cone as an anonymous requester:")
        print(explain(target.owner_dsn, target.query_dsn, args.rows))
    finally:
        process.terminate()
        process.wait(timeout=20)


if __name__ == "__main__":
    main()

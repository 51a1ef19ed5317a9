"""SIA benchmark: cone, night range and instrument+filter through /sia/query against the
same queries as ADQL through /tap/sync, as anonymous and as an observer.

    .venv/bin/python -m bench.sia [--rows 1000000] [--requests 100]

Uses bench.tap's database (var/bench-tap: the synthetic archive of bench/archive.py,
``--rows`` frames, about 30 % proprietary, built once) and server.  For each query
kind of bench/queries.py (``POS=CIRCLE``, ``TIME``, ``INSTRUMENT`` + ``BAND``;
MAXREC=100) and each identity (anonymous; an observer with 50 programs, by bearer
token) it measures, over HTTP, the SIA query and, as the baseline in the same run,
the equivalent ADQL through /tap/sync (every ObsCore column, images only),
alternating the two so that both see the same machine; prints p50/p99 of each and
the ratio (target: SIA p50 <= 10 ms), the latency of MAXREC=0 (first call: it reads
the visible parameter values; then: reused), and ``EXPLAIN (ANALYZE, BUFFERS)`` of
each generated statement, run as the same requester, so that the index use is
visible.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import httpx

from bench import queries
from bench.report import record
from bench.tap import PROJECT, build_database, start_server
from vo_service.params import Params
from vo_service.services.sia import compile_query
from vo_service.services.sia_params import parse_sia_request
from vo_service.settings import TapSettings


def _timed(client: httpx.Client, url: str, params: dict[str, str]) -> float:
    start = time.perf_counter()
    reply = client.get(url, params=params)
    elapsed = time.perf_counter() - start
    reply.raise_for_status()
    return elapsed


def describe_latencies(base: str, requests: int) -> tuple[float, list[float]]:
    """MAXREC=0: the first call (reads the values: a scan of every row), then calls
    that reuse them (sia.VALUES_TTL_S)."""
    with httpx.Client(timeout=60) as client:
        first = _timed(client, f"{base}/sia/query", {"MAXREC": "0"})
        return first, [_timed(client, f"{base}/sia/query", {"MAXREC": "0"})
                       for _ in range(requests)]


def compare(base: str, target, rows: int, requests: int) -> None:  # type: ignore[no-untyped-def]
    who = queries.identities(target.owner_dsn)
    kinds = queries.sia_queries(queries.sample(target.owner_dsn, rows))
    maxrec = str(queries.MAXREC)
    explains = []
    with httpx.Client(timeout=60) as client:
        for identity in who:
            for kind, (sia_params, adql) in kinds.items():
                sia, tap = [], []
                for i in range(requests + 5):
                    pair = [(sia, "GET", f"{base}/sia/query",
                             {**sia_params(i), "MAXREC": maxrec}),
                            (tap, "GET", f"{base}/tap/sync",
                             {"LANG": "ADQL", "MAXREC": maxrec, "QUERY": adql(i)})]
                    for times, method, url, params in pair if i % 2 else reversed(pair):
                        elapsed, _ = queries.timed(client, method, url, identity.headers,
                                                   params=params)
                        if i >= 5:  # warm-up
                            times.append(elapsed)
                sia_p50, tap_p50 = queries.p50_ms(sia), queries.p50_ms(tap)
                print(f"SIA {kind}, {identity.name}: {len(sia)} requests: p50 {sia_p50:.1f} "
                      f"ms, p99 {queries.p99_ms(sia):.1f} ms; the same as ADQL through "
                      f"/tap/sync: p50 {tap_p50:.1f} ms, p99 {queries.p99_ms(tap):.1f} ms; "
                      f"ratio {sia_p50 / tap_p50:.2f}", flush=True)
                record("sia", f"{kind}, {identity.name}, {rows:,} rows, p50", sia_p50, "ms",
                       baseline=tap_p50, baseline_name="same query, TAP",
                       target="<= 10 ms", met=sia_p50 <= 10)
                request = parse_sia_request(Params([*sia_params(0).items(),
                                                    ("MAXREC", maxrec)]), TapSettings())
                explains.append((f"SIA {kind} as {identity.name}", identity,
                                 compile_query(request)))
    for title, identity, statement in explains:
        print(f"\nEXPLAIN (ANALYZE, BUFFERS) of {title}:")
        print(queries.explain(target.owner_dsn, target.query_dsn, identity.principal,
                              statement.sql, statement.params))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()
    data_dir: Path = PROJECT / "var" / "bench-tap"
    target = build_database(data_dir, args.rows)
    process = start_server(data_dir, args.port)
    base = f"http://127.0.0.1:{args.port}"
    try:
        compare(base, target, args.rows, args.requests)
        first, again = describe_latencies(base, 50)
        print(f"\nMAXREC=0 self-description: first {first * 1000:.0f} ms (reads the values "
              f"of {args.rows:,} rows as the requester), then p50 "
              f"{statistics.median(again) * 1000:.1f} ms (values reused for a minute)")
    finally:
        process.terminate()
        process.wait(timeout=20)


if __name__ == "__main__":
    main()

"""SIA in a crowd: more clients than query slots, next to slow TAP queries.

The server of :mod:`tests.service.test_fairness` (a 4-slot query pool).  SIA queries
share the query pool with TAP sync (one executor, one admission per result), so a
crowd of SIA clients must all be answered, without errors or a deadlock, while a
slow TAP query holds a slot; and SIA's VOSI resources, which need no query slot,
stay fast while slow queries hold half of them.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time

import httpx
import psycopg2

from tests.service import test_fairness as fairness
from tests.service.test_fairness import (
    _busy_backends,
    _cancel_queries,
    _cone_clients,
    _latencies,
    _p99,
    _slow_queries,
)

small_server = fairness.small_server  # the fixture: a server with 4 query slots


def _sia_cone(i: int) -> tuple[str, dict[str, str]]:
    """A cone; one request in five asks MAXREC=0 (the self-description)."""
    return "/sia/query", {"POS": f"CIRCLE {(i * 7.3) % 360} {(i * 3.1) % 120 - 60} 30",
                          "MAXREC": "0" if i % 5 == 0 else "100"}


def test_more_sia_clients_than_slots_all_get_answers(small_server) -> None:
    """64 SIA clients on a 4-slot query pool for 15 s, a slow TAP query alongside: no
    error, no deadlock, and answers keep coming."""
    stop = threading.Event()
    statuses = _slow_queries(small_server, 1, stop)
    try:
        done, errors = asyncio.run(_cone_clients(small_server.base_url, 64, 15.0,
                                                 _sia_cone))
    finally:
        stop.set()
        _cancel_queries(small_server)
    assert errors == []
    assert done > 64 * 3, f"only {done} answers in 15 s"
    assert 500 not in statuses


def test_sia_vosi_and_a_query_stay_fast_next_to_slow_queries(small_server) -> None:
    """Slow queries hold half the slots, as in the fairness test — one computing, one
    waiting for a lock — and SIA capabilities and availability (no query slot) and an
    SIA cone (a free slot) answer with p99 under 100 ms."""
    stop = threading.Event()
    locker = psycopg2.connect(small_server.database.owner_dsn)
    with locker.cursor() as cur:
        cur.execute("LOCK TABLE lick.files IN ACCESS EXCLUSIVE MODE")
    statuses = _slow_queries(small_server, 1, stop)
    statuses += _slow_queries(small_server, 1, stop, "SELECT COUNT(*) AS n FROM lick.files")
    try:
        deadline = time.monotonic() + 20
        while _busy_backends(small_server) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _busy_backends(small_server) >= 2, "the slow queries did not start"
        with httpx.Client(timeout=30) as client:
            base = small_server.base_url
            checks = {
                "capabilities": (f"{base}/sia/capabilities", None),
                "availability": (f"{base}/sia/availability", None),
                "cone": (f"{base}/sia/query", {"POS": "CIRCLE 10 20 5", "MAXREC": "10"}),
            }
            results = {name: _latencies(client, url, params, 100)
                       for name, (url, params) in checks.items()}
        assert _busy_backends(small_server) >= 2, "measured after the slow queries ended"
    finally:
        stop.set()
        _cancel_queries(small_server)
        locker.close()
    for name, times in results.items():
        assert _p99(times) < 0.100, (name, f"p50 {statistics.median(times) * 1000:.1f} ms, "
                                     f"p99 {_p99(times) * 1000:.1f} ms")
    assert 500 not in statuses

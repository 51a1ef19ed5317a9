"""Results stream; a client that goes away cancels its query inside PostgreSQL."""

from __future__ import annotations

import time

import httpx
import psycopg2

# Three-way self join of the demo table: tens of millions of rows, far more than a
# test would ever read, so the query is still running when the client leaves.
HUGE = ("SELECT a.obs_id, b.obs_id AS b_id, c.obs_id AS c_id FROM ivoa.obscore AS a, "
        "ivoa.obscore AS b, ivoa.obscore AS c")


def _running_user_queries(database) -> int:
    dsn = database.target.admin_dsn or database.owner_dsn
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        # A streaming result is a cursor inside an open transaction of the query role.
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s "
                    "AND xact_start IS NOT NULL", (database.target.query_role,))
        (count,) = cur.fetchone()
    conn.close()
    return int(count)


def test_big_result_streams_and_disconnect_cancels(server, archive):
    received = 0
    seen_running = False
    with httpx.stream("GET", f"{server.tap_url}/sync", timeout=60, params={
            "LANG": "ADQL", "QUERY": HUGE, "MAXREC": "100000000",
            "RESPONSEFORMAT": "csv"}) as reply:
        assert reply.status_code == 200
        for chunk in reply.iter_bytes():
            received += len(chunk)
            if not seen_running and received > 500_000:
                seen_running = _running_user_queries(server.database) >= 1
            if received > 2_000_000:
                break
    assert received > 2_000_000, "the first rows arrive before the query ends"
    assert seen_running, "the query was running in PostgreSQL while rows streamed"
    deadline = time.monotonic() + 20
    while _running_user_queries(server.database) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _running_user_queries(server.database) == 0
    # The service is still healthy afterwards.
    ok = httpx.get(f"{server.tap_url}/sync", params={
        "LANG": "ADQL", "QUERY": "SELECT TOP 1 obs_id FROM ivoa.obscore"})
    assert ok.status_code == 200

"""TAP benchmark: cone queries and streaming a big result, against baselines in the same run.

    .venv/bin/python -m bench.tap [--rows 1000000] [--requests 200]

Builds (once, cached in var/bench-tap) a private embedded database whose
ivoa.obscore holds ``--rows`` synthetic public rows, starts a real
`lick-archive serve` on a loopback port and measures:

(a) a sync cone query returning <= 100 rows end to end over HTTP: p50 and p99;
(b) streaming every row in BINARY2 and in CSV: rows/s, MB/s, time to first byte,
    against ``COPY (same SQL) TO STDOUT`` on the same database as the baseline;
(c) the server's peak resident memory while streaming;
and the CPU time per streamed row of the server process and of PostgreSQL (all the
cluster's processes), which depends less on other work than wall time does.
The machine is shared and noisy: ``--repeat`` measures (b) several times and prints
the medians of rows/s and of the ratio to COPY (each ratio is against the COPY
measured just before it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg2

from vo_service.database import setup
from vo_service.settings import load_settings

PROJECT = Path(__file__).resolve().parent.parent
STREAM_QUERY = ("SELECT obs_publisher_did, obs_id, s_ra, s_dec, t_min, t_max, t_exptime, "
                "instrument_name, target_name, access_estsize FROM ivoa.obscore")


def _settings(data_dir: Path):  # type: ignore[no-untyped-def]
    settings = load_settings(PROJECT / "conf" / "lick-archive.toml", environ={})
    return settings.replace(service={"data_dir": data_dir}, database={"url": ""})


def build_database(data_dir: Path, rows: int) -> setup.DatabaseTarget:
    settings = _settings(data_dir)
    target = setup.initialize(settings)
    with psycopg2.connect(target.owner_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM ivoa.obscore")
        have = cur.fetchone()[0]  # type: ignore[index]
        if have == rows:
            return target
        print(f"building ivoa.obscore with {rows:,} synthetic rows (once)...", flush=True)
        cur.execute("TRUNCATE ivoa.obscore CASCADE")
        cur.execute(
            """
            INSERT INTO ivoa.obscore (dataproduct_type, calib_level, obs_collection, obs_id,
                obs_publisher_did, access_url, access_format, access_estsize, target_name,
                s_ra, s_dec, s_fov, s_region, s_resolution, s_xel1, s_xel2, t_min, t_max,
                t_exptime, t_resolution, t_xel, em_min, em_max, o_ucd, facility_name,
                instrument_name, obs_release_date, data_rights, owner_ids)
            SELECT 'image', 1, 'Lick bench', 'bench/' || i, 'ivo://bench/lick?' || i,
                'http://127.0.0.1/datalink?ID=' || i, 'application/fits', 2048,
                'target ' || mod(i, 5000), ra, dec, 0.15,
                format('{(%%sd,%%sd),(%%sd,%%sd),(%%sd,%%sd),(%%sd,%%sd)}',
                       ra - 0.05, dec - 0.05, ra + 0.05, dec - 0.05,
                       ra + 0.05, dec + 0.05, ra - 0.05, dec + 0.05)::spoly,
                1.0, 2048, 2048, 50000 + i / 1000.0, 50000 + i / 1000.0 + 0.01, 600, 600, 1,
                4e-7, 7e-7, 'phot.count', 'Nickel', 'Nickel Direct', '2000-01-01', 'public',
                '{}'
            FROM (SELECT i, mod(i * 0.0137, 360)::float8 AS ra,
                         (mod(i * 0.0071, 170) - 85)::float8 AS dec
                  FROM generate_series(1, %s) AS i) AS g
            """,
            (rows,),
        )
        cur.execute("ANALYZE ivoa.obscore")
    return target


def start_server(data_dir: Path, port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update({
        "LICK_ARCHIVE_SERVICE_WORKERS": str(workers),
        "LICK_ARCHIVE_SERVICE_DATA_DIR": str(data_dir),
        "LICK_ARCHIVE_SERVICE_PORT": str(port),
        "LICK_ARCHIVE_SERVICE_BASE_URL": f"http://127.0.0.1:{port}",
        "LICK_ARCHIVE_DATABASE_URL": "",
        "LICK_ARCHIVE_TAP_HARD_MAXREC": "100000000",
    })
    process = subprocess.Popen([sys.executable, "-m", "vo_service.cli", "serve"], env=env,
                               cwd=PROJECT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/tap/availability", timeout=2)
            return process
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("server did not start")


def _cpu_s(pid: int) -> float:
    """CPU time of a process so far, all its threads (those that ended too)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cluster_cpu(data_dir: Path) -> dict[int, float]:
    """CPU time of the embedded cluster's processes: the postmaster and its children."""
    postmaster = int((data_dir / "postgres" / "data" / "postmaster.pid").read_text().split()[0])
    times = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, ppid = int(stat.parent.name), int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if postmaster in (pid, ppid):
                times[pid] = _cpu_s(pid)
        except OSError:  # the process ended meanwhile
            continue
    return times


def _cluster_cpu_since(before: dict[int, float], data_dir: Path) -> float:
    """CPU time the cluster used since ``before``; a process that ended in between (an
    autovacuum worker, a pooled connection closed) is left out, not subtracted."""
    return sum(t - before.get(pid, 0.0) for pid, t in _cluster_cpu(data_dir).items())


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cone_latencies(base: str, requests: int) -> list[float]:
    timings = []
    with httpx.Client(timeout=60) as client:
        for i in range(requests + 10):
            ra, dec = (i * 7.3) % 360, ((i * 3.1) % 120) - 60
            query = ("SELECT obs_id, s_ra, s_dec, t_min FROM ivoa.obscore WHERE "
                     f"1 = CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {ra}, {dec}, "
                     "0.05))")
            start = time.perf_counter()
            reply = client.get(f"{base}/tap/sync", params={"LANG": "ADQL", "QUERY": query,
                                                           "MAXREC": "100"})
            elapsed = time.perf_counter() - start
            reply.raise_for_status()
            if i >= 10:  # warm-up
                timings.append(elapsed)
    return timings


def stream(base: str, fmt: str, rows: int, pid: int, data_dir: Path) -> dict[str, float]:
    peak = [_rss_kb(pid)]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_kb(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    size = 0
    server_cpu, database_cpu = _cpu_s(pid), _cluster_cpu(data_dir)
    start = time.perf_counter()
    first = None
    with httpx.stream("GET", f"{base}/tap/sync", timeout=600, params={
            "LANG": "ADQL", "QUERY": STREAM_QUERY, "MAXREC": str(rows),
            "RESPONSEFORMAT": fmt}) as reply:
        reply.raise_for_status()
        for chunk in reply.iter_raw():
            if first is None:
                first = time.perf_counter() - start
            size += len(chunk)
    elapsed = time.perf_counter() - start
    server_cpu = _cpu_s(pid) - server_cpu
    database_seconds = _cluster_cpu_since(database_cpu, data_dir)
    stop.set()
    sampler.join()
    return {"seconds": elapsed, "rows_per_s": rows / elapsed, "mb_per_s": size / elapsed / 1e6,
            "ttfb_ms": (first or 0) * 1000, "peak_rss_mb": peak[0] / 1024,
            "server_us_per_row": server_cpu / rows * 1e6,
            "database_us_per_row": database_seconds / rows * 1e6}


def copy_rate(target: setup.DatabaseTarget, rows: int, data_dir: Path) -> dict[str, float]:
    sql = ("COPY (SELECT obs_publisher_did, obs_id, s_ra, s_dec, t_min, t_max, t_exptime, "
           "instrument_name, target_name, access_estsize FROM ivoa.obscore) TO STDOUT")

    class Sink:
        size = 0

        def write(self, data: bytes | str) -> int:
            self.size += len(data)
            return len(data)

    sink = Sink()
    with psycopg2.connect(target.owner_dsn) as conn, conn.cursor() as cur:
        database_cpu = _cluster_cpu(data_dir)
        start = time.perf_counter()
        cur.copy_expert(sql, sink)
        elapsed = time.perf_counter() - start
        database_seconds = _cluster_cpu_since(database_cpu, data_dir)
    return {"seconds": elapsed, "rows_per_s": rows / elapsed,
            "mb_per_s": sink.size / elapsed / 1e6,
            "database_us_per_row": database_seconds / rows * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure the streaming (b) this many times; print medians")
    args = parser.parse_args()
    data_dir = PROJECT / "var" / "bench-tap"
    target = build_database(data_dir, args.rows)
    process = start_server(data_dir, args.port)
    base = f"http://127.0.0.1:{args.port}"
    formats = ("votable/b2", "csv")
    rates: dict[str, list[float]] = {fmt: [] for fmt in formats}
    ratios: dict[str, list[float]] = {fmt: [] for fmt in formats}
    try:
        timings = sorted(cone_latencies(base, args.requests))
        p50 = statistics.median(timings) * 1000
        p99 = timings[int(len(timings) * 0.99) - 1] * 1000
        print(f"(a) sync cone query over HTTP, {len(timings)} requests: "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (target p50 <= 15 ms)")
        for _ in range(args.repeat):
            baseline = copy_rate(target, args.rows, data_dir)
            print(f"    baseline COPY TO STDOUT: {baseline['rows_per_s']:,.0f} rows/s, "
                  f"{baseline['mb_per_s']:.1f} MB/s; PostgreSQL CPU "
                  f"{baseline['database_us_per_row']:.2f} us/row")
            for fmt in formats:
                result = stream(base, fmt, args.rows, process.pid, data_dir)
                ratio = result["rows_per_s"] / baseline["rows_per_s"]
                rates[fmt].append(result["rows_per_s"])
                ratios[fmt].append(ratio)
                print(f"(b) {fmt:10s} {args.rows:,} rows: {result['rows_per_s']:,.0f} rows/s, "
                      f"{result['mb_per_s']:.1f} MB/s, first byte {result['ttfb_ms']:.0f} ms, "
                      f"{ratio:.2f}x COPY; CPU us/row: server "
                      f"{result['server_us_per_row']:.2f}, PostgreSQL "
                      f"{result['database_us_per_row']:.2f}; "
                      f"(c) server peak RSS {result['peak_rss_mb']:.0f} MB")
        if args.repeat > 1:
            for fmt in formats:
                print(f"    median of {args.repeat}, {fmt}: "
                      f"{statistics.median(rates[fmt]):,.0f} rows/s, "
                      f"{statistics.median(ratios[fmt]):.2f}x COPY")
    finally:
        process.terminate()
        process.wait(timeout=20)


if __name__ == "__main__":
    main()

"""TAP benchmark at archive scale, against baselines measured in the same run.

    .venv/bin/python -m bench.tap [--rows 1000000] [--requests 100] [--no-stream]

Builds (once, cached in var/bench-tap) a private embedded database holding the
synthetic archive of bench/archive.py (``--rows`` frames, about 30 % proprietary,
row-level security on), starts a real `lick-archive serve` on a loopback port and
measures:

(a) cone, night range and instrument+filter queries over HTTP (sync, MAXREC=100) and
    an upload cross-match of 1,000 positions, each as an anonymous client and as an
    observer with 50 programs (bench/queries.py): p50 and p99 against the targets
    (p50 <= 10 ms; cross-match <= 1 s), with the same SQL sent straight to PostgreSQL
    for the same requester as the baseline, and ``EXPLAIN (ANALYZE, BUFFERS)`` of each;
(b) streaming every row an anonymous client sees in BINARY2 and in CSV: rows/s, MB/s,
    time to first byte, against ``COPY (same SQL) TO STDOUT`` of the same rows (the
    query role, bound to an anonymous requester) as the baseline (target >= 0.9x);
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
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import psycopg2
import psycopg2.extensions

from auth.identity import begin_query_transaction, load_secret
from auth.principals import ANONYMOUS, Principal
from bench import archive, queries
from bench.report import record
from vo_service.adql import Metadata, UploadTable, translate
from vo_service.database import setup
from vo_service.serialize.upload import parse_votable
from vo_service.services.tap import _create_upload
from vo_service.settings import load_settings

PROJECT = Path(__file__).resolve().parent.parent
STREAM_QUERY = ("SELECT obs_publisher_did, obs_id, s_ra, s_dec, t_min, t_max, t_exptime, "
                "instrument_name, target_name, access_estsize FROM ivoa.obscore")


def _settings(data_dir: Path):  # type: ignore[no-untyped-def]
    settings = load_settings(PROJECT / "conf" / "lick-archive.toml", environ={})
    return settings.replace(service={"data_dir": data_dir}, database={"url": ""})


def build_database(data_dir: Path, rows: int) -> setup.DatabaseTarget:
    """The embedded database of ``data_dir`` holding the synthetic archive of ``rows``
    frames (bench/archive.py), built once and reused while its size matches."""
    settings = _settings(data_dir)
    target = setup.initialize(settings)
    with psycopg2.connect(target.owner_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT (SELECT count(*) FROM ivoa.obscore), (SELECT count(*) FROM "
                    "lick.files), EXISTS (SELECT FROM auth.users WHERE login = %s)",
                    (archive.BENCH_LOGIN,))
        have = cur.fetchone()
    conn.close()
    marker = data_dir / "archive-version"
    built = marker.read_text() if marker.exists() else ""
    if have != (rows, rows, True) or built != f"{archive.VERSION} {rows}":
        print(f"building the synthetic archive: {rows:,} rows (once)...", flush=True)
        archive.load_archive(target.owner_dsn, rows)
        marker.write_text(f"{archive.VERSION} {rows}")
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
    return answering(process, port, 60, "server did not start")


def answering(process: subprocess.Popen[bytes], port: int, seconds: float, failure: str
              ) -> subprocess.Popen[bytes]:
    """``process`` once /tap/availability answers on ``port``; killed if it does not
    within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/tap/availability", timeout=2)
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(failure)


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


def direct_latencies(target: setup.DatabaseTarget, principal: Principal,
                     statements: Sequence[tuple[str, object]],
                     prepare: Callable[[psycopg2.extensions.cursor], None] | None = None
                     ) -> tuple[list[float], list[int]]:
    """The baseline of a query kind: the same SQL the service runs, sent straight to
    PostgreSQL (psycopg2, the query role, a transaction bound to the same requester),
    no HTTP, no translation, no serialization.  Returns the timings and the rows of
    each answer."""
    with psycopg2.connect(target.owner_dsn) as owner, owner.cursor() as cur:
        secret = load_secret(cur)
    owner.close()
    conn = psycopg2.connect(target.query_dsn)
    timings, found = [], []
    try:
        for n, (sql, params) in enumerate(statements):
            start = time.perf_counter()
            with conn.cursor() as cur:
                if prepare is not None:
                    cur.execute("SET TRANSACTION READ WRITE")
                    prepare(cur)
                begin_query_transaction(cur, principal, secret)
                cur.execute(sql, params)
                found.append(len(cur.fetchall()))
            conn.rollback()
            if n or len(statements) == 1:
                timings.append(time.perf_counter() - start)
    finally:
        conn.close()
    return timings, found


def archive_queries(base: str, target: setup.DatabaseTarget, rows: int, requests: int,
                    xmatch_requests: int) -> None:
    """Cone, night range, instrument+filter and the upload cross-match through TAP, as
    anonymous and as the observer: p50 against the target, the same SQL straight to
    PostgreSQL as the baseline, and EXPLAIN (ANALYZE, BUFFERS) of each."""
    who = queries.identities(target.owner_dsn)
    drawn = queries.sample(target.owner_dsn, rows)
    kinds = queries.tap_queries(drawn)
    metadata = Metadata.from_declaration()
    votable = queries.upload_votable(drawn)
    table = parse_votable(votable, max_rows=10_000)
    upload_metadata = Metadata.from_declaration([UploadTable(
        adql_name="TAP_UPLOAD.pos", sql_name="pg_temp.tap_upload_pos", columns=table.columns)])

    def create_upload(cur: psycopg2.extensions.cursor) -> None:
        _create_upload(cur, "pos", table)

    explains = []
    with httpx.Client(timeout=120) as client:
        for identity in who:
            for kind, adql in kinds.items():
                for i in range(5):  # warm-up
                    queries.timed(client, "GET", f"{base}/tap/sync", identity.headers,
                                  params={"LANG": "ADQL", "QUERY": adql(i),
                                          "MAXREC": str(queries.MAXREC)})
                times = []
                for i in range(requests):
                    elapsed, _ = queries.timed(
                        client, "GET", f"{base}/tap/sync", identity.headers,
                        params={"LANG": "ADQL", "QUERY": adql(i),
                                "MAXREC": str(queries.MAXREC)})
                    times.append(elapsed)
                translated = [translate(adql(i), metadata, limit=queries.MAXREC + 1)
                              for i in range(requests)]
                direct, found = direct_latencies(target, identity.principal,
                                                 [(t.sql, t.params) for t in translated])
                found = [min(f, queries.MAXREC) for f in found]  # the service's MAXREC
                p50 = queries.p50_ms(times)
                print(f"TAP {kind}, {identity.name}: {len(times)} requests, {min(found)} to "
                      f"{max(found)} rows (MAXREC {queries.MAXREC}): p50 {p50:.1f} ms, p99 "
                      f"{queries.p99_ms(times):.1f} ms; SQL alone p50 "
                      f"{queries.p50_ms(direct):.1f} ms", flush=True)
                record("tap", f"{kind}, {identity.name}, {rows:,} rows, p50", p50, "ms",
                       baseline=queries.p50_ms(direct), baseline_name="SQL alone",
                       target="<= 10 ms", met=p50 <= 10 and max(found) <= queries.MAXREC)
                explains.append((f"TAP {kind} as {identity.name}", translated[0]))
            files = {"pos": ("pos.xml", votable, "application/x-votable+xml")}
            data = {"LANG": "ADQL", "QUERY": queries.XMATCH, "UPLOAD": "pos,param:pos",
                    "MAXREC": "1000000"}
            queries.timed(client, "POST", f"{base}/tap/sync", identity.headers, data=data,
                          files=files)  # warm-up
            times = []
            for _ in range(xmatch_requests):
                elapsed, _ = queries.timed(client, "POST", f"{base}/tap/sync",
                                           identity.headers, data=data, files=files)
                times.append(elapsed)
            translated_x = translate(queries.XMATCH, upload_metadata, limit=1_000_001)
            direct, found = direct_latencies(target, identity.principal,
                                             [(translated_x.sql, translated_x.params)] * 3,
                                             prepare=create_upload)
            p50 = queries.p50_ms(times)
            print(f"TAP upload cross-match of {len(table.rows):,} positions "
                  f"(r={queries.XMATCH_RADIUS} deg), {identity.name}: {len(times)} requests, "
                  f"{max(found):,} rows: p50 {p50:.0f} ms; SQL alone (upload table "
                  f"included) p50 {queries.p50_ms(direct):.0f} ms", flush=True)
            record("tap", f"upload cross-match 1,000 positions, {identity.name}, {rows:,} "
                   "rows, p50", p50, "ms", baseline=queries.p50_ms(direct),
                   baseline_name="SQL alone", target="<= 1,000 ms", met=p50 <= 1000)
            explains.append((f"TAP upload cross-match as {identity.name}", translated_x))
    for identity in who:
        for title, statement in explains:
            if not title.endswith(identity.name):
                continue
            print(f"\nEXPLAIN (ANALYZE, BUFFERS) of {title}:")
            print(queries.explain(target.owner_dsn, target.query_dsn, identity.principal,
                                  statement.sql, statement.params,
                                  create_upload if "upload" in title else None))


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


def copy_rate(target: setup.DatabaseTarget, data_dir: Path) -> dict[str, float]:
    """COPY of the streamed query's rows by PostgreSQL itself: the same rows the
    streaming sees (the query role, a transaction bound to an anonymous requester:
    row-level security costs the same on both sides)."""
    sql = f"COPY ({STREAM_QUERY}) TO STDOUT"

    class Sink:
        size = 0
        rows = 0

        def write(self, data: bytes | str) -> int:
            self.size += len(data)
            self.rows += data.count("\n" if isinstance(data, str) else b"\n")
            return len(data)

    sink = Sink()
    with psycopg2.connect(target.owner_dsn) as owner, owner.cursor() as cur:
        secret = load_secret(cur)
    owner.close()
    conn = psycopg2.connect(target.query_dsn)
    try:
        with conn.cursor() as cur:
            begin_query_transaction(cur, ANONYMOUS, secret)
            database_cpu = _cluster_cpu(data_dir)
            start = time.perf_counter()
            cur.copy_expert(sql, sink)
            elapsed = time.perf_counter() - start
            database_seconds = _cluster_cpu_since(database_cpu, data_dir)
    finally:
        conn.rollback()
        conn.close()
    return {"seconds": elapsed, "rows": sink.rows, "rows_per_s": sink.rows / elapsed,
            "mb_per_s": sink.size / elapsed / 1e6,
            "database_us_per_row": database_seconds / sink.rows * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100,
                        help="requests of each query kind and identity")
    parser.add_argument("--xmatch-requests", type=int, default=5)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure the streaming (b) this many times; print medians")
    parser.add_argument("--no-stream", action="store_true", help="skip (b) and (c)")
    args = parser.parse_args()
    data_dir = PROJECT / "var" / "bench-tap"
    target = build_database(data_dir, args.rows)
    process = start_server(data_dir, args.port)
    base = f"http://127.0.0.1:{args.port}"
    formats = ("votable/b2", "csv")
    rates: dict[str, list[float]] = {fmt: [] for fmt in formats}
    ratios: dict[str, list[float]] = {fmt: [] for fmt in formats}
    try:
        archive_queries(base, target, args.rows, args.requests, args.xmatch_requests)
        for _ in range(0 if args.no_stream else args.repeat):
            baseline = copy_rate(target, data_dir)
            visible = int(baseline["rows"])
            print(f"\n    baseline COPY TO STDOUT of the {visible:,} rows an anonymous "
                  f"client sees: {baseline['rows_per_s']:,.0f} rows/s, "
                  f"{baseline['mb_per_s']:.1f} MB/s; PostgreSQL CPU "
                  f"{baseline['database_us_per_row']:.2f} us/row")
            for fmt in formats:
                result = stream(base, fmt, visible, process.pid, data_dir)
                ratio = result["rows_per_s"] / baseline["rows_per_s"]
                rates[fmt].append(result["rows_per_s"])
                ratios[fmt].append(ratio)
                print(f"(b) {fmt:10s} {visible:,} rows: {result['rows_per_s']:,.0f} rows/s, "
                      f"{result['mb_per_s']:.1f} MB/s, first byte {result['ttfb_ms']:.0f} ms, "
                      f"{ratio:.2f}x COPY; CPU us/row: server "
                      f"{result['server_us_per_row']:.2f}, PostgreSQL "
                      f"{result['database_us_per_row']:.2f}; "
                      f"(c) server peak RSS {result['peak_rss_mb']:.0f} MB")
            copies = rates.setdefault("copy", [])
            copies.append(baseline["rows_per_s"])
        if not args.no_stream:
            for fmt in formats:
                if args.repeat > 1:
                    print(f"    median of {args.repeat}, {fmt}: "
                          f"{statistics.median(rates[fmt]):,.0f} rows/s, "
                          f"{statistics.median(ratios[fmt]):.2f}x COPY")
                rate, copy = statistics.median(rates[fmt]), statistics.median(rates["copy"])
                record("tap", f"streaming {fmt} over HTTP, {visible:,} rows", rate, "rows/s",
                       baseline=copy, baseline_name="COPY TO STDOUT, same rows",
                       target=">= 0.9x COPY",
                       met=statistics.median(ratios[fmt]) >= 0.9)
    finally:
        process.terminate()
        process.wait(timeout=20)


if __name__ == "__main__":
    main()

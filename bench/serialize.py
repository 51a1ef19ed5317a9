"""Result streaming speed against COPY: ``python -m bench.serialize [--rows N]``.

Fills a throwaway PostgreSQL + pgSphere cluster (or ``--dsn``) with N synthetic
ivoa.obscore rows (every published column, NULLs in several, a 4-vertex s_region),
then, in the same run, measures:

* ``COPY (query) TO STDOUT`` read by psycopg2 — the baseline the targets refer to;
* a plain server-side-cursor fetch (``fetchmany``) that writes nothing — the floor
  of any Python writer fed by psycopg2;
* ``stream_result`` end to end (cursor → bytes) for every format;
* the writers alone on batches already in memory (what the serializer costs).

Rows/s, MB/s, time to the first byte and the process's peak RSS are printed.  Wall
clock suffers when other processes load the machine; CPU seconds are shown too.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions

from bench.report import record
from tap_schema.ddl import create_table
from tap_schema.declaration import OBSCORE
from vo_service.result import ResultColumn
from vo_service.serialize.formats import resolve_format
from vo_service.serialize.results import (
    ResultInfo,
    prefetch,
    register_text_timestamps,
    stream_result,
)

BATCH = 10_000
FORMATS = ["votable/b2", "votable/b", "votable/td", "csv", "tsv", "fits"]
# The service's own path (prefetch, text timestamps): >= 0.9x COPY ("Archive scale", 7)
TARGETED = ("votable/b2 +prefetch +text ts", "csv +prefetch +text ts")

FILL = """
INSERT INTO ivoa.obscore
SELECT CASE WHEN i % 3 = 0 THEN 'spectrum' ELSE 'image' END, 1,
  'Lick ' || (ARRAY['Kast','ShARCS','Nickel'])[1 + i % 3],
  '2019-05/' || lpad((i % 28 + 1)::text, 2, '0') || '/shane/b' || i || '.fits',
  'ivo://lick.ucolick.org/archive?' || i,
  'https://archive.example.org/datalink?ID=ivo%3A%2F%2Flick.ucolick.org%2Farchive%3F' || i,
  'application/x-votable+xml;content=datalink', 4000 + i % 1000,
  CASE WHEN i % 7 = 0 THEN NULL ELSE 'NGC ' || (i % 7840) || ' & <field>' END,
  ra, dec, 0.15,
  format('{(%sd,%sd),(%sd,%sd),(%sd,%sd),(%sd,%sd)}', ra - 0.05, dec - 0.05, ra + 0.05,
         dec - 0.05, ra + 0.05, dec + 0.05, ra - 0.05, dec + 0.05)::spoly,
  1.2, 2048, CASE WHEN i % 5 = 0 THEN NULL ELSE 2048 END,
  58000 + i / 1000.0, 58000 + i / 1000.0 + 0.01, 300.0, 300.0, 1,
  3.5e-7, 1.0e-6, CASE WHEN i % 2 = 0 THEN NULL ELSE 1200.0 END, 1024,
  'phot.count', NULL, NULL, 'Shane 3-m', 'Kast Blue',
  timestamp '2021-01-01 00:00:00' + i * interval '1 minute', 'public', '{}'
FROM (SELECT i, (i * 0.000357) % 359.8 + 0.1 AS ra, ((i * 0.000791) % 170) - 85 AS dec
      FROM generate_series(1, %(n)s) AS i) AS g
"""


def result_columns() -> list[ResultColumn]:
    return [ResultColumn(c.name, c.datatype, c.arraysize, c.xtype, c.unit, c.ucd, c.utype,
                         c.description) for c in OBSCORE.published_columns]


def query(columns: Sequence[ResultColumn]) -> str:
    return "SELECT " + ", ".join(c.name for c in columns) + " FROM ivoa.obscore"


class Throwaway:
    """A private cluster in a temporary directory, removed afterwards."""

    def __init__(self) -> None:
        from vo_service.database.cluster import SUPERUSER, EmbeddedCluster

        self.root = Path(tempfile.mkdtemp(prefix="bench-serialize-"))
        self.root.chmod(0o755)
        self.cluster = EmbeddedCluster(self.root)
        self.cluster.init()
        self.cluster.start()
        self.superuser = SUPERUSER

    def dsn(self, dbname: str = "postgres") -> str:
        return self.cluster.dsn(self.superuser, dbname)

    def close(self) -> None:
        self.cluster.destroy()
        shutil.rmtree(self.root, ignore_errors=True)


def prepare(dsn: str, rows: int) -> None:
    from vo_service.database.pgsphere import install_pgsphere

    conn = psycopg2.connect(dsn)
    install_pgsphere(conn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'ivoa' "
                    "AND tablename = 'obscore'")
        row = cur.fetchone()
        if row and row[0]:
            cur.execute("SELECT count(*) FROM ivoa.obscore")
            count = cur.fetchone()
            if count and count[0] == rows:
                conn.close()
                return
            cur.execute("DROP TABLE ivoa.obscore")
        cur.execute("CREATE SCHEMA IF NOT EXISTS ivoa")
        cur.execute(create_table(OBSCORE))
        cur.execute(FILL.replace("%(n)s", str(int(rows))))  # no params: the SQL has %
        cur.execute("VACUUM ANALYZE ivoa.obscore")
    conn.close()


class _Sink:
    def __init__(self) -> None:
        self.bytes = 0
        self.first: float | None = None

    def write(self, data: bytes | str) -> int:
        if self.first is None:
            self.first = time.perf_counter()
        self.bytes += len(data)
        return len(data)


def _report(label: str, rows: int, nbytes: int, wall: float, cpu: float,
            first: float | None, baseline: float | None) -> None:
    rate = rows / wall
    ratio = f"{rate / baseline:5.2f}x COPY" if baseline else ""
    ttfb = f"{first * 1000:7.0f} ms" if first is not None else "        -"
    print(f"{label:<34} {rate:>11,.0f} rows/s {nbytes / wall / 1e6:8.1f} MB/s "
          f"first byte {ttfb}  cpu {cpu:6.2f} s  {ratio}")


def bench_copy(dsn: str, sql: str) -> tuple[int, int, float, float]:
    conn = psycopg2.connect(dsn)
    sink = _Sink()
    t0, c0 = time.perf_counter(), time.process_time()
    with conn.cursor() as cur:
        cur.copy_expert(f"COPY ({sql}) TO STDOUT", sink, size=1 << 20)
        rows = cur.rowcount
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    conn.close()
    return rows, sink.bytes, wall, cpu


def _batches(cur: Any) -> Iterator[list[tuple[Any, ...]]]:
    while batch := cur.fetchmany(BATCH):
        yield batch


def bench_stream(dsn: str, sql: str, fmt: str | None, *, overlap: bool = False,
                 text_timestamps: bool = False, columns: list[ResultColumn] | None = None
                 ) -> tuple[int, int, float, float, float | None]:
    conn = psycopg2.connect(dsn)
    columns = columns or result_columns()
    sink = _Sink()
    rows = 0
    t0, c0 = time.perf_counter(), time.process_time()
    with conn.cursor(name="bench") as cur:
        cur.itersize = BATCH
        if text_timestamps:
            register_text_timestamps(cur)
        cur.execute(sql)
        batches: Iterator[Sequence[tuple[Any, ...]]] = _batches(cur)
        if overlap:
            batches = prefetch(batches)
        if fmt is None:
            for batch in batches:
                rows += len(batch)
        else:
            info = ResultInfo(query=sql)
            for chunk in stream_result(resolve_format(fmt), columns, batches, maxrec=None,
                                       info=info):
                sink.write(chunk)
            rows = info.rows
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    conn.close()
    first = None if sink.first is None else sink.first - t0
    return rows, sink.bytes, wall, cpu, first


def bench_writer_only(dsn: str, sql: str, limit: int) -> None:
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute(f"{sql} LIMIT {limit}")
        rows = cur.fetchall()
    conn.close()
    batches = [rows[i:i + BATCH] for i in range(0, len(rows), BATCH)]
    columns = result_columns()
    print(f"\nwriters alone, {len(rows):,} rows already fetched into memory:")
    for fmt in FORMATS:
        sink = _Sink()
        t0, c0 = time.perf_counter(), time.process_time()
        for chunk in stream_result(resolve_format(fmt), columns, iter(batches), maxrec=None,
                                   info=ResultInfo()):
            sink.write(chunk)
        _report(f"  {fmt}", len(rows), sink.bytes, time.perf_counter() - t0,
                time.process_time() - c0, None, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000,
                        help="rows of synthetic ivoa.obscore (default 200000; try 1000000)")
    parser.add_argument("--dsn", help="use this database instead of a throwaway cluster")
    parser.add_argument("--formats", default=",".join(FORMATS))
    args = parser.parse_args()
    cluster = None if args.dsn else Throwaway()
    try:
        if cluster is not None:
            admin = psycopg2.connect(cluster.dsn())
            admin.autocommit = True
            with admin.cursor() as cur:
                cur.execute("CREATE DATABASE bench")
            admin.close()
        dsn = args.dsn or (cluster.dsn("bench") if cluster else "")
        t0 = time.perf_counter()
        prepare(dsn, args.rows)
        print(f"{args.rows:,} obscore rows ready in {time.perf_counter() - t0:.1f} s "
              f"({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})")
        sql = query(result_columns())
        rows, nbytes, wall, cpu = bench_copy(dsn, sql)
        baseline = rows / wall
        _report("COPY (query) TO STDOUT", rows, nbytes, wall, cpu, None, baseline)
        rows, _, wall, cpu, _ = bench_stream(dsn, sql, None)
        _report("fetchmany only (no writer)", rows, 0, wall, cpu, None, baseline)
        for fmt in args.formats.split(","):
            rows, nbytes, wall, cpu, first = bench_stream(dsn, sql, fmt)
            _report(fmt, rows, nbytes, wall, cpu, first, baseline)
        for label, overlap, text_ts in (("votable/b2 +prefetch", True, False),
                                        ("votable/b2 +prefetch +text ts", True, True),
                                        ("csv +prefetch +text ts", True, True)):
            rows, nbytes, wall, cpu, first = bench_stream(
                dsn, sql, label.split()[0], overlap=overlap, text_timestamps=text_ts)
            _report(label, rows, nbytes, wall, cpu, first, baseline)
            if label in TARGETED:  # what the service runs (services/tap.py)
                record("serialize", f"{label}, {rows:,} rows, no HTTP", rows / wall,
                       "rows/s", baseline=baseline, baseline_name="COPY TO STDOUT",
                       target=">= 0.9x COPY", met=rows / wall >= 0.9 * baseline)
        rows, nbytes, wall, cpu = bench_copy(dsn, sql)
        _report("COPY again (load drift check)", rows, nbytes, wall, cpu, None, baseline)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS while streaming: {peak:.0f} MB")
        no_region_columns = [c for c in result_columns() if c.name != "s_region"]
        no_region = query(no_region_columns)
        print("\nwithout s_region (pgSphere's text output is the costliest column):")
        rows, nbytes, wall, cpu = bench_copy(dsn, no_region)
        base2 = rows / wall
        _report("COPY (query) TO STDOUT", rows, nbytes, wall, cpu, None, base2)
        rows, nbytes, wall, cpu, first = bench_stream(
            dsn, no_region, "votable/b2", overlap=True, text_timestamps=True,
            columns=no_region_columns)
        _report("votable/b2 +prefetch +text ts", rows, nbytes, wall, cpu, first, base2)
        bench_writer_only(dsn, sql, min(args.rows, 200_000))
    finally:
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    main()

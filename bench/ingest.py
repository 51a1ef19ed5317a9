"""Ingest benchmark: ``.venv/bin/python -m bench.ingest [--files N] [--dsn DSN]``.

Generates N archive files (default 10,000) from the real Lick header templates, then,
with a warm page cache and in one run:

1. raw baseline: read the header blocks (2880 bytes × k, up to END) of every file;
2. header extraction: ``ingest.records.read_file`` on every file, one process;
3. full ingest into PostgreSQL with two worker processes (each reads, maps and writes
   its batches), into empty tables.

It prints files/s for each and the ratios to the baseline.  Targets: extraction
≥ 1,000 files/s per core (issue 3); full ingest ≥ 4,000 files/s on 2 cores ("Archive
scale", item 7; it was ≥ 2,000 in issue 3), against the raw header read rate.
Without ``--dsn`` a throwaway embedded PostgreSQL cluster is created and destroyed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import psycopg2

from bench.report import record
from ingest.config import IngestConfig
from ingest.disk import collect
from ingest.loader import Loader
from ingest.schedule import load_schedule_json

PROJECT = Path(__file__).resolve().parent.parent
TEMPLATES = PROJECT / "ingest" / "templates" / "lick-headers"
# (template, instrument dir, file prefix): one per reader family.
KINDS = (
    ("2019-05_02_shane_r650-hdu0.txt", "shane", "r"),
    ("2019-05_02_shane_b607-hdu0.txt", "shane", "b"),
    ("2019-11_09_AO_s1303-hdu0.txt", "AO", "s"),
    ("2019-05_06_nickel_d109-hdu0.txt", "nickel", "d"),
    ("2012-01_02_shane_r36-hdu0.txt", "shane", "r"),
)


def _file_bytes(template: Path, pixels: int) -> bytes:
    # Imported here: the ingest workers import this main module too (0.4 s for these).
    import numpy as np
    from astropy.io import fits

    header = fits.Header.fromfile(str(template), sep="\n", endcard=False, padding=False)
    data = np.arange(pixels * pixels, dtype=np.int16).reshape(pixels, pixels)
    hdu = fits.PrimaryHDU(data=data, header=header)
    hdu.header["BITPIX"] = 16
    path = Path(tempfile.mkstemp(suffix=".fits")[1])
    try:
        hdu.writeto(path, overwrite=True, output_verify="silentfix")
        return path.read_bytes()
    finally:
        path.unlink()


def generate(root: Path, count: int, pixels: int) -> list[Path]:
    """``count`` files spread over nights of 2019-2020, ~200 per night directory."""
    contents = [(_file_bytes(TEMPLATES / name, pixels), d, p) for name, d, p in KINDS]
    paths = []
    first = date(2019, 6, 1)
    for i in range(count):
        content, instrument_dir, prefix = contents[i % len(contents)]
        night = first + timedelta(days=i // 200)
        directory = root / f"{night:%Y-%m}" / f"{night:%d}" / instrument_dir
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{prefix}{i:05d}.fits"
        path.write_bytes(content)
        paths.append(path)
    return paths


def write_schedule(path: Path, count: int) -> None:
    """A run on every other night so that both ownership branches are exercised."""
    observers = [{"obid": i, "first_name": f"F{i}", "last_name": f"Observer{i}",
                  "email": f"o{i}@example.org", "password": "x", "password_apr1": None}
                 for i in range(1, 11)]
    runs = []
    first = date(2019, 6, 1)
    for n in range(0, count // 200 + 1, 2):
        night = first + timedelta(days=n)
        for telescope in ("Shane", "Nickel"):
            runs.append({"run_id": f"{telescope}-{n}", "telescope": telescope,
                         "first_night": night.isoformat(), "last_night": night.isoformat(),
                         "release_date": None, "program": f"P{n}",
                         "obids": [1 + n % 10, 1 + (n + 3) % 10]})
    path.write_text(json.dumps({"observers": observers, "runs": runs}))


def _stat(pid: int) -> list[str]:
    # Fields after the command name: [0] state, [1] ppid, ... [11] utime, [12] stime,
    # [13] cutime, [14] cstime (clock ticks).
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), for any user's process."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cluster_cpu_seconds(backend: int) -> float:
    """CPU time of the whole PostgreSQL cluster serving ``backend``: the postmaster,
    its live children and the children it has reaped (writer sessions that ended)."""
    postmaster = int(_stat(backend)[1])
    fields = _stat(postmaster)
    ticks = sum(int(f) for f in fields[11:15])
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                child = _stat(int(entry.name))
            except OSError:
                continue
            if int(child[1]) == postmaster:
                ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Rate:
    """Files per wall-clock second and per CPU second (the latter is what a busy,
    shared machine cannot distort)."""

    files: int
    wall: float
    cpu: float
    detail: str = ""

    @property
    def per_wall(self) -> float:
        return self.files / self.wall

    @property
    def per_cpu(self) -> float:
        return self.files / self.cpu


def raw_baseline(paths: list[Path]) -> Rate:
    """Reading 2880-byte blocks until the END card: the I/O floor."""
    wall, cpu = time.perf_counter(), time.process_time()
    for path in paths:
        with open(path, "rb") as stream:
            while True:
                block = stream.read(2880)
                if not block or any(block[i:i + 8] == b"END     " for i in range(0, 2880, 80)):
                    break
    return Rate(len(paths), time.perf_counter() - wall, time.process_time() - cpu)


def extraction(paths: list[Path], root: Path, config: IngestConfig) -> Rate:
    from ingest.records import Rejection, read_file

    instruments = config.instrument_config
    wall, cpu = time.perf_counter(), time.process_time()
    rejected = 0
    for path in paths:
        if isinstance(read_file(path, root, instruments), Rejection):
            rejected += 1
    rate = Rate(len(paths), time.perf_counter() - wall, time.process_time() - cpu)
    if rejected:
        print(f"  (extraction rejected {rejected} generated files)")
    return rate


def full_ingest(config: IngestConfig, dsn: str, root: Path) -> tuple[Rate, dict[str, int]]:
    """The whole path: stat, compare, read in the pool, access rules, rows, COPY, commit.

    CPU time is counted for this process, the reader processes and the whole
    PostgreSQL cluster (all its processes: the bench needs the local cluster).
    """
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM ivoa.obscore; DELETE FROM ingest.rejected_files")
    conn.close()
    with Loader(config, dsn) as loader:
        with loader.connection().cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            row = cur.fetchone()
            assert row is not None
            backend = int(row[0])
        loader.connection().rollback()
        backend_cpu = _cluster_cpu_seconds(backend)
        wall, cpu = time.perf_counter(), time.process_time()
        files, _ = collect([root], config)
        summary = loader.ingest(files)
        elapsed = time.perf_counter() - wall
        main_cpu = time.process_time() - cpu
        pool = loader._pool  # bench only: the worker processes' CPU time
        workers = [_cpu_seconds(pid) for pid in (pool._processes if pool else {})]
        db_cpu = _cluster_cpu_seconds(backend) - backend_cpu
    total = main_cpu + sum(workers) + db_cpu
    n = len(files)
    detail = (f"CPU ms/file: main {1000 * main_cpu / n:.2f}, workers "
              f"{1000 * sum(workers) / n:.2f}, PostgreSQL {1000 * db_cpu / n:.2f}")
    counts = {"new": summary.new, "updated": summary.updated,
              "rejected": sum(summary.rejected.values())}
    return Rate(len(files), elapsed, total, detail), counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--pixels", type=int, default=128,
                        help="side of the synthetic int16 data array (default 128)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--dsn", help="an existing, migrated database (default: throwaway)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()

    load = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="lick-bench-"))
    work.chmod(0o755)
    cluster = None
    try:
        root = work / "archive"
        print(f"generating {args.files} files in {root} ...", flush=True)
        paths = generate(root, args.files, args.pixels)
        size = sum(p.stat().st_size for p in paths[:50]) / 50
        print(f"  mean size {size / 1024:.0f} KiB")
        dsn = args.dsn
        if dsn is None:
            from vo_service.database import setup
            from vo_service.settings import load_settings

            settings = load_settings(PROJECT / "conf" / "lick-archive.toml", environ={})
            settings = settings.replace(service={"data_dir": work / "service"},
                                        database={"url": ""})
            (work / "service").mkdir()
            (work / "service").chmod(0o755)
            print("starting a throwaway PostgreSQL ...", flush=True)
            target = setup.initialize(settings)
            cluster = setup.embedded_cluster(settings)
            dsn = target.owner_dsn
        schedule = work / "schedule.json"
        write_schedule(schedule, args.files)
        conn = psycopg2.connect(dsn)
        load_schedule_json(conn, schedule, schema="bench_schedule")
        conn.close()
        config = IngestConfig(roots=(root,), workers=args.workers, batch_size=args.batch,
                              schedule_schema="bench_schedule", authority="bench.lick",
                              base_url="http://bench.test")

        raw_baseline(paths)  # warm the page cache
        raw = raw_baseline(paths)
        one = extraction(paths, root, config)
        full, counts = full_ingest(config, dsn, root)
        cores = os.cpu_count() or 1
        print()
        print(f"files: {len(paths)}, CPU cores: {cores}, worker processes: {args.workers}, "
              f"batch: {args.batch}, load average before: {load[0]:.1f}")
        print("                                 wall files/s   files per CPU-s")
        for label, rate in (("raw baseline (header blocks)", raw),
                            ("header extraction, 1 process", one),
                            (f"full ingest, {args.workers} workers", full)):
            print(f"{label:31s}  {rate.per_wall:12,.0f}   {rate.per_cpu:15,.0f}")
        print(f"extraction / raw: {one.per_wall / raw.per_wall:.1%} (wall), "
              f"{one.per_cpu / raw.per_cpu:.1%} (CPU); target ≥ 1,000 files/s per core")
        print(f"full ingest / raw: {full.per_wall / raw.per_wall:.1%} (wall); "
              f"full / extraction: {full.per_wall / one.per_wall:.2f}× (wall), "
              f"{full.per_cpu / one.per_cpu:.2f}× (CPU); target ≥ 4,000 files/s")
        print(f"  {full.detail}")
        print(f"  ingest result: {counts}")
        record("ingest", "header extraction, 1 process, wall", one.per_wall, "files/s",
               baseline=raw.per_wall, baseline_name="raw header read",
               target=">= 1,000 files/s per core", met=one.per_cpu >= 1000)
        record("ingest", f"full ingest into PostgreSQL, {args.workers} workers, wall",
               full.per_wall, "files/s", baseline=raw.per_wall,
               baseline_name="raw header read", target=">= 4,000 files/s",
               met=full.per_wall >= 4000)
    finally:
        if cluster is not None:
            cluster.destroy()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

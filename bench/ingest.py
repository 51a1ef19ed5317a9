"""Ingest benchmark: ``.venv/bin/python -m bench.ingest [--files N] [--dsn DSN]``.

Generates N archive files (default 10,000) from the real Lick header templates, then,
with a warm page cache and in one run:

1. raw baseline: read the header blocks (2880 bytes × k, up to END) of every file;
2. header extraction: ``ingest.records.read_file`` on every file, one process;
3. full ingest into PostgreSQL with two reader workers (access rules, rows, commits),
   into empty tables.

It prints files/s for each and the ratios to the baseline.  Targets (issue 3):
extraction ≥ 1,000 files/s per core, full ingest ≥ 2,000 files/s with two workers.
Without ``--dsn`` a throwaway embedded PostgreSQL cluster is created and destroyed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import psycopg2
from astropy.io import fits

from ingest.config import IngestConfig
from ingest.loader import Loader, collect
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


def raw_baseline(paths: list[Path]) -> float:
    """Files/s for reading 2880-byte blocks until the END card: the I/O floor."""
    started = time.perf_counter()
    for path in paths:
        with open(path, "rb") as stream:
            while True:
                block = stream.read(2880)
                if not block or any(block[i:i + 8] == b"END     " for i in range(0, 2880, 80)):
                    break
    return len(paths) / (time.perf_counter() - started)


def extraction(paths: list[Path], root: Path, config: IngestConfig) -> float:
    from ingest.records import Rejection, read_file

    started = time.perf_counter()
    rejected = 0
    for path in paths:
        if isinstance(read_file(path, root, config.instrument_config), Rejection):
            rejected += 1
    elapsed = time.perf_counter() - started
    if rejected:
        print(f"  (extraction rejected {rejected} generated files)")
    return len(paths) / elapsed


def full_ingest(config: IngestConfig, dsn: str, root: Path) -> tuple[float, dict[str, int]]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM ivoa.obscore; DELETE FROM ingest.rejected_files")
    conn.close()
    started = time.perf_counter()
    files, _ = collect([root], config)
    with Loader(config, dsn) as loader:
        summary = loader.ingest(files)
    elapsed = time.perf_counter() - started
    counts = {"new": summary.new, "updated": summary.updated,
              "rejected": sum(summary.rejected.values())}
    return len(files) / elapsed, counts


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
                              schedule_schema="bench_schedule")

        raw_baseline(paths)  # warm the page cache
        raw = raw_baseline(paths)
        one = extraction(paths, root, replace(config, workers=1))
        full, counts = full_ingest(config, dsn, root)
        cores = os.cpu_count() or 1
        print()
        print(f"files: {len(paths)}, CPU cores: {cores}, workers: {args.workers}, "
              f"batch: {args.batch}")
        print(f"raw baseline (header blocks) : {raw:10,.0f} files/s")
        print(f"header extraction, 1 process : {one:10,.0f} files/s "
              f"({one / raw:.1%} of raw; target ≥ 1,000/s per core)")
        print(f"full ingest, {args.workers} workers      : {full:10,.0f} files/s "
              f"({full / raw:.1%} of raw, {full / one:.2f}× extraction; target ≥ 2,000/s)")
        print(f"  ingest result: {counts}")
    finally:
        if cluster is not None:
            cluster.destroy()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

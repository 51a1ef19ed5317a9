"""DataLink and download benchmark, against baselines measured in the same run.

    .venv/bin/python -m bench.datalink [--rows 1000000] [--requests 300]

Builds (once, cached in var/bench-datalink) a private embedded database with
``--rows`` public rows in ivoa.obscore (bench/tap.py's builder) and as many in
lick.files (about 300 frames a night, one in ten a bias or flat, so that each answer
carries the night's calibration links), writes real FITS files for a sample — 1,000
of about 100 KiB and one of 100 MiB — starts a real `lick-archive serve` on a loopback
port and measures:

(a) ``/datalink/links`` for one random identifier: p50 and p99 (target p50 <= 10 ms);
    and for a batch of 50 (pyvo's iter_datalinks);
(b) downloading the 100 MiB file (curl, to /dev/null) against reading it locally in
    1 MiB blocks, both from the page cache (target >= 0.9x);
(c) a tarball of the 1,000 small files, ``.tar`` against reading the same files
    locally (target >= 0.8x), and ``.tar.gz`` (reported).

The machine is shared and noisy: each transfer is measured ``--repeat`` times with
its baseline just before it, and the medians are printed.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import psycopg2

from bench.tap import PROJECT, build_database, start_server

DID = "ivo://bench/lick?{}"
SMALL_FILES = 1_000
BIG_ID = SMALL_FILES + 1
HEADER = "\n".join(f"{key:<8}= {value:>20}" for key, value in (
    ("SIMPLE", "T"), ("BITPIX", "16"), ("NAXIS", "2"), ("NAXIS1", "226"), ("NAXIS2", "226"),
    ("CTYPE1", "'RA---TAN'"), ("CTYPE2", "'DEC--TAN'"), ("CRVAL1", "10.0"),
    ("CRVAL2", "20.0"))) + "\nEND"


def _path(i: int) -> str:
    return f"nights/{i // 300}/nickel/d{i}.fits"


def build_files(target, root: Path, rows: int) -> None:  # type: ignore[no-untyped-def]
    """lick.files for every obscore row, then the sample of real files (once)."""
    with psycopg2.connect(target.owner_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM lick.files")
        if cur.fetchone()[0] != rows:  # type: ignore[index]
            print(f"building lick.files with {rows:,} rows (once)...", flush=True)
            cur.execute("TRUNCATE lick.files")
            cur.execute(
                """
                INSERT INTO lick.files (obs_publisher_did, path, filename, night,
                    instrument_dir, instrument, frame_type, file_size, release_date, header)
                SELECT 'ivo://bench/lick?' || i,
                       'nights/' || (i / 300) || '/nickel/d' || i || '.fits',
                       'd' || i || '.fits', date '2000-01-01' + (i / 300), 'nickel',
                       'Nickel Direct', CASE mod(i, 20) WHEN 0 THEN 'bias' WHEN 1 THEN 'flat'
                       ELSE 'science' END, 105120, '2000-01-01', %s
                FROM generate_series(1, %s) AS i
                """, (HEADER, rows))
            cur.execute("ANALYZE lick.files")
    marker = root / "complete"
    if marker.exists():
        return
    print("writing the sample files (once)...", flush=True)
    rng = np.random.default_rng(1)
    from astropy.io import fits

    small = fits.PrimaryHDU(rng.normal(1000, 10, (226, 226)).astype(np.int16))
    for i in range(1, SMALL_FILES + 1):
        path = root / _path(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        small.writeto(path, overwrite=True)
    big = root / _path(BIG_ID)
    side = 7240  # 7240^2 int16 + header: 100 MiB
    fits.PrimaryHDU(rng.normal(1000, 10, (side, side)).astype(np.int16)).writeto(
        big, overwrite=True)
    with psycopg2.connect(target.owner_dsn) as conn, conn.cursor() as cur:
        for i in (*range(1, SMALL_FILES + 1), BIG_ID):
            cur.execute("UPDATE lick.files SET file_size = %s WHERE obs_publisher_did = %s",
                        ((root / _path(i)).stat().st_size, DID.format(i)))
    marker.write_text("ok")


def latencies(base: str, rows: int, requests: int, batch: int = 1) -> list[float]:
    rng = random.Random(7)
    timings = []
    with httpx.Client(timeout=60) as client:
        for n in range(requests + 10):
            ids = [DID.format(rng.randint(1, rows)) for _ in range(batch)]
            start = time.perf_counter()
            if batch == 1:
                reply = client.get(f"{base}/datalink/links", params={"ID": ids[0]})
            else:
                reply = client.post(f"{base}/datalink/links", data={"ID": ids})
            elapsed = time.perf_counter() - start
            reply.raise_for_status()
            if n >= 10:
                timings.append(elapsed)
    return sorted(timings)


def _percentiles(timings: list[float]) -> tuple[float, float]:
    return (statistics.median(timings) * 1000,
            timings[max(0, int(len(timings) * 0.99) - 1)] * 1000)


def local_read(paths: list[Path]) -> tuple[float, int]:
    """Seconds and bytes to read the files in 1 MiB blocks (the page cache is warm)."""
    size = 0
    start = time.perf_counter()
    for path in paths:
        with path.open("rb", buffering=0) as handle:
            while block := handle.read(1 << 20):
                size += len(block)
    return time.perf_counter() - start, size


def curl(url: str, data: list[tuple[str, str]] | None = None) -> tuple[float, int]:
    """Seconds and bytes of one transfer to /dev/null with curl (little client cost)."""
    command = ["curl", "-s", "-S", "-o", "/dev/null", "-w", "%{http_code} %{time_total} "
               "%{size_download}", url]
    for name, value in data or ():
        command[1:1] = ["--data-urlencode", f"{name}={value}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
    if out[0] != "200":
        raise RuntimeError(f"{url}: HTTP {out[0]}")
    return float(out[1]), int(out[2])


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--port", type=int, default=0, help="default: a free one")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("bench.datalink needs curl")
    data_dir = PROJECT / "var" / "bench-datalink"
    root = data_dir / "archive"
    target = build_database(data_dir, args.rows)
    build_files(target, root, args.rows)
    os.environ["LICK_ARCHIVE_INGEST_ROOTS"] = str(root)
    os.environ["LICK_ARCHIVE_DOWNLOADS_TAR_BURST"] = "1000"
    port = args.port or _free_port()
    process = start_server(data_dir, port)
    base = f"http://127.0.0.1:{port}"
    try:
        one = latencies(base, args.rows, args.requests)
        p50, p99 = _percentiles(one)
        links = httpx.get(f"{base}/datalink/links", params={"ID": DID.format(12345)}).text
        print(f"(a) /datalink/links, 1 ID, {len(one)} requests over {args.rows:,} rows: "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (target p50 <= 10 ms); "
              f"{links.count('<TR>')} links an answer")
        fifty = latencies(base, args.rows, max(20, args.requests // 10), batch=50)
        p50, p99 = _percentiles(fifty)
        print(f"    50 IDs a request (POST), {len(fifty)} requests: p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms")
        big = root / _path(BIG_ID)
        small = [root / _path(i) for i in range(1, SMALL_FILES + 1)]
        ids = [("ID", DID.format(i)) for i in range(1, SMALL_FILES + 1)]
        file_url = f"{base}/data/file?ID={quote(DID.format(BIG_ID), safe='')}"
        local_read([big, *small])  # warm the page cache
        ratios: dict[str, list[float]] = {"file": [], "tar": [], "tar.gz": []}
        rates: dict[str, list[float]] = {key: [] for key in ratios}
        for _ in range(args.repeat):
            seconds, size = local_read([big])
            served, sent = curl(file_url)
            assert sent == size
            rates["file"].append(sent / served / 1e6)
            ratios["file"].append(seconds / served)
            seconds, size = local_read(small)
            for kind in ("tar", "tar.gz"):
                served, sent = curl(f"{base}/data/tar", [*ids, ("FORMAT", kind)])
                rates[kind].append(size / served / 1e6)
                ratios[kind].append(seconds / served)
        local_big = big.stat().st_size / 1e6
        print(f"(b) 100 MiB file ({local_big:.0f} MB), median of {args.repeat}: "
              f"{statistics.median(rates['file']):.0f} MB/s over HTTP, "
              f"{statistics.median(ratios['file']):.2f}x the local read (target >= 0.9x)")
        print(f"(c) tarball of {SMALL_FILES} files ({size / 1e6:.0f} MB of files), median of "
              f"{args.repeat}: .tar {statistics.median(rates['tar']):.0f} MB/s, "
              f"{statistics.median(ratios['tar']):.2f}x the local read (target >= 0.8x); "
              f".tar.gz {statistics.median(rates['tar.gz']):.0f} MB/s of files, "
              f"{statistics.median(ratios['tar.gz']):.2f}x")
    finally:
        process.terminate()
        process.wait(timeout=20)


if __name__ == "__main__":
    main()

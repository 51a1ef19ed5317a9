"""DataLink and download benchmark, against baselines measured in the same run.

    .venv/bin/python -m bench.datalink [--rows 1000000] [--requests 300]

Uses bench.tap's database (var/bench-tap: the synthetic archive of bench/archive.py,
``--rows`` frames in ivoa.obscore and lick.files, nights with their calibration
frames, about 30 % proprietary; built once), writes real FITS files at the paths of a
sample of public science frames — 1,000 of about 100 KiB and one of 100 MiB — starts
a real `lick-archive serve` on a loopback port and measures, as an anonymous client:

(a) ``/datalink/links`` for one random public identifier: p50 and p99 (target p50
    <= 10 ms; baseline: ``/tap/availability``, the cheapest database-backed request);
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

from bench.archive import DID
from bench.report import record
from bench.tap import PROJECT, build_database, start_server

SMALL_FILES = 1_000


def build_files(target, root: Path) -> tuple[list[str], list[Path]]:  # type: ignore[no-untyped-def]
    """Real files at the paths of SMALL_FILES + 1 public Nickel science frames (once):
    their identifiers and paths, the last one 100 MiB."""
    with psycopg2.connect(target.owner_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT obs_publisher_did, path FROM lick.files WHERE instrument = "
                    "'Nickel Direct' AND frame_type = 'science' AND release_date < "
                    "now() - interval '1 day' ORDER BY file_id LIMIT %s", (SMALL_FILES + 1,))
        chosen = cur.fetchall()
    conn.close()
    dids = [row[0] for row in chosen]
    paths = [root / row[1] for row in chosen]
    marker = root / "complete"
    if marker.exists() and marker.read_text() == "\n".join(dids):
        return dids, paths
    print("writing the sample files (once)...", flush=True)
    rng = np.random.default_rng(1)
    from astropy.io import fits

    small = fits.PrimaryHDU(rng.normal(1000, 10, (226, 226)).astype(np.int16))
    for path in paths[:-1]:
        path.parent.mkdir(parents=True, exist_ok=True)
        small.writeto(path, overwrite=True)
    side = 7240  # 7240^2 int16 + header: 100 MiB
    paths[-1].parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(rng.normal(1000, 10, (side, side)).astype(np.int16)).writeto(
        paths[-1], overwrite=True)
    with psycopg2.connect(target.owner_dsn) as conn, conn.cursor() as cur:
        for did, path in zip(dids, paths, strict=True):
            cur.execute("UPDATE lick.files SET file_size = %s WHERE obs_publisher_did = %s",
                        (path.stat().st_size, did))
    conn.close()
    marker.write_text("\n".join(dids))
    return dids, paths


def public_ids(target, rows: int, count: int = 3000) -> list[str]:  # type: ignore[no-untyped-def]
    """Public identifiers drawn at random over the table."""
    rng = random.Random(7)
    candidates = [DID.format(rng.randint(1, rows)) for _ in range(count)]
    with psycopg2.connect(target.owner_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT obs_publisher_did FROM ivoa.obscore WHERE obs_publisher_did = "
                    "ANY(%s) AND data_rights = 'public'", (candidates,))
        found = [row[0] for row in cur.fetchall()]
    conn.close()
    rng.shuffle(found)
    return found


def latencies(base: str, pool: list[str], requests: int, batch: int = 1) -> list[float]:
    rng = random.Random(7)
    timings = []
    with httpx.Client(timeout=60) as client:
        for n in range(requests + 10):
            ids = [rng.choice(pool) for _ in range(batch)]
            start = time.perf_counter()
            if batch == 0:
                reply = client.get(f"{base}/tap/availability")
            elif batch == 1:
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
    data_dir = PROJECT / "var" / "bench-tap"
    root = data_dir / "archive"
    target = build_database(data_dir, args.rows)
    dids, paths = build_files(target, root)
    pool = public_ids(target, args.rows)
    os.environ["LICK_ARCHIVE_INGEST_ROOTS"] = str(root)
    os.environ["LICK_ARCHIVE_DOWNLOADS_TAR_BURST"] = "1000"
    port = args.port or _free_port()
    process = start_server(data_dir, port)
    base = f"http://127.0.0.1:{port}"
    try:
        one = latencies(base, pool, args.requests)
        cheapest = latencies(base, pool, args.requests, batch=0)
        p50, p99 = _percentiles(one)
        links = httpx.get(f"{base}/datalink/links", params={"ID": pool[0]}).text
        print(f"(a) /datalink/links, 1 public ID, {len(one)} requests over {args.rows:,} rows: "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (target p50 <= 10 ms); "
              f"{links.count('<TR>')} links an answer; baseline /tap/availability p50 "
              f"{_percentiles(cheapest)[0]:.1f} ms")
        record("datalink", f"links, 1 ID, {args.rows:,} rows, p50", p50, "ms",
               baseline=_percentiles(cheapest)[0], baseline_name="/tap/availability",
               target="<= 10 ms", met=p50 <= 10)
        fifty = latencies(base, pool, max(20, args.requests // 10), batch=50)
        p50, p99 = _percentiles(fifty)
        print(f"    50 IDs a request (POST), {len(fifty)} requests: p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms")
        big, small = paths[-1], paths[:-1]
        ids = [("ID", did) for did in dids[:-1]]
        file_url = f"{base}/data/file?ID={quote(dids[-1], safe='')}"
        local_read([big, *small])  # warm the page cache
        ratios: dict[str, list[float]] = {"file": [], "tar": [], "tar.gz": []}
        rates: dict[str, list[float]] = {key: [] for key in ratios}
        local_rates: dict[str, list[float]] = {"file": [], "tar": []}
        for _ in range(args.repeat):
            seconds, size = local_read([big])
            served, sent = curl(file_url)
            assert sent == size
            rates["file"].append(sent / served / 1e6)
            local_rates["file"].append(size / seconds / 1e6)
            ratios["file"].append(seconds / served)
            seconds, size = local_read(small)
            local_rates["tar"].append(size / seconds / 1e6)
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
        for kind, wanted in (("file", 0.9), ("tar", 0.8)):
            ratio = statistics.median(ratios[kind])
            record("datalink", "download, 100 MiB file" if kind == "file" else
                   f"download, .tar of {SMALL_FILES:,} files", statistics.median(rates[kind]),
                   "MB/s", baseline=statistics.median(local_rates[kind]),
                   baseline_name="local read, page cache", target=f">= {wanted}x local read",
                   met=ratio >= wanted)
    finally:
        process.terminate()
        process.wait(timeout=20)


if __name__ == "__main__":
    main()

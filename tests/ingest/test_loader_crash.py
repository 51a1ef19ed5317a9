"""Crash safety: a loader killed (SIGKILL) in the middle of a batch leaves no partial rows,
and the next run completes the ingest with every file exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import psycopg2
from astropy.io import fits

from ingest.config import IngestConfig
from ingest.disk import collect
from ingest.loader import Loader, ingest_paths
from ingest.schedule import load_schedule_json
from tests.conftest import fetch

PROJECT = Path(__file__).resolve().parent.parent.parent
TEMPLATE = PROJECT / "ingest" / "templates" / "lick-headers" / "2012-01_02_shane_r36-hdu0.txt"
COUNT = 1200
BATCH = 200


def _content() -> bytes:
    header = fits.Header.fromfile(str(TEMPLATE), sep="\n", endcard=False, padding=False)
    hdu = fits.PrimaryHDU(data=np.zeros((8, 8), dtype=np.int16), header=header)
    hdu.header["BITPIX"] = 16
    out = BytesIO()
    hdu.writeto(out, output_verify="silentfix")
    return out.getvalue()


def _empty_database(database: Any, tmp_path: Path) -> str:
    """The shared crash-test database, emptied, with an empty schedule in ``sched``."""
    dsn = str(database.new_database("ingest_crash").owner_dsn)
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("DELETE FROM ivoa.obscore; DELETE FROM ingest.rejected_files;"
                    " DROP SCHEMA IF EXISTS sched CASCADE")
    conn.commit()
    (tmp_path / "schedule.json").write_text(json.dumps({"observers": [], "runs": []}))
    load_schedule_json(conn, tmp_path / "schedule.json", schema="sched")
    conn.close()
    return dsn


def _write_archive(root: Path, month: str, count: int) -> None:
    """``count`` identical Kast files, 100 a night, from the first night of ``month``."""
    content = _content()
    for i in range(count):
        night = root / f"{month}/{1 + i // 100:02d}/shane"
        night.mkdir(parents=True, exist_ok=True)
        (night / f"r{i:05d}.fits").write_bytes(content)


def test_killed_loader_leaves_whole_batches_only(database: Any, tmp_path: Path) -> None:
    dsn = _empty_database(database, tmp_path)

    root = tmp_path / "archive"
    _write_archive(root, "2012-01", COUNT)

    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from ingest.config import IngestConfig\n"
        "from ingest.loader import ingest_paths\n"
        f"config = IngestConfig(roots=(Path({str(root)!r}),), schedule_schema='sched',"
        f" batch_size={BATCH}, workers=2, authority='test.lick',"
        " base_url='http://archive.test')\n"
        f"ingest_paths(config, {dsn!r}, [Path({str(root)!r})], show_progress=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT,
                            start_new_session=True, stderr=subprocess.PIPE)
    killed_mid_batch = False
    committed_before_kill = 0
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            # A loader transaction holding an xid has written rows it has not committed.
            rows = fetch(
                dsn, "SELECT (SELECT count(*) FROM lick.files),"
                     " EXISTS (SELECT 1 FROM pg_stat_activity"
                     " WHERE application_name = 'lick-archive-ingest'"
                     " AND backend_xid IS NOT NULL AND state <> 'idle')")
            committed, writing = rows[0]
            if writing and committed >= BATCH:
                os.killpg(proc.pid, signal.SIGKILL)
                killed_mid_batch = True
                committed_before_kill = committed
                break
            time.sleep(0.002)
    finally:
        if proc.poll() is None and not killed_mid_batch:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert killed_mid_batch, "the loader finished before it could be caught mid-batch"

    # The server notices the dead client and aborts its transaction.
    for _ in range(200):
        if not fetch(dsn, "SELECT 1 FROM pg_stat_activity"
                           " WHERE application_name = 'lick-archive-ingest'"):
            break
        time.sleep(0.05)
    files = {r[0] for r in fetch(dsn, "SELECT obs_publisher_did FROM lick.files")}
    obscore = {r[0] for r in fetch(dsn, "SELECT obs_publisher_did FROM ivoa.obscore")}
    assert files == obscore  # no obscore row without its archive row, nor the reverse
    assert len(files) % BATCH == 0  # whole batches only
    assert committed_before_kill <= len(files) < COUNT
    # Nothing is left half-done in the bookkeeping either.
    assert fetch(dsn, "SELECT count(*) FROM ingest.rejected_files") == [(0,)]

    config = IngestConfig(roots=(root,), schedule_schema="sched", batch_size=BATCH,
                          authority="test.lick", base_url="http://archive.test")
    summary = ingest_paths(config, dsn, [root], show_progress=False)
    assert summary.unchanged == len(files)
    assert summary.new == COUNT - len(files)
    assert fetch(dsn, "SELECT count(*), count(DISTINCT path) FROM lick.files") == [
        (COUNT, COUNT)]
    assert fetch(dsn, "SELECT count(*) FROM ivoa.obscore") == [(COUNT,)]


def test_a_dead_reader_process_does_not_stop_the_run(database: Any, tmp_path: Path) -> None:
    dsn = _empty_database(database, tmp_path)
    root = tmp_path / "archive"
    count = 600
    _write_archive(root, "2012-02", count)
    config = IngestConfig(roots=(root,), schedule_schema="sched", batch_size=50, workers=2,
                          authority="test.lick", base_url="http://archive.test")
    killed: list[int] = []
    with Loader(config, dsn) as loader:

        def kill_a_worker(_: int) -> None:
            pool = loader._pool
            if not killed and pool is not None:
                pid = next(iter(pool._processes))
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        files, _ = collect([root], config)
        summary = loader.ingest(files, kill_a_worker)
        restarts = loader.pool_restarts
    assert killed and restarts >= 1
    assert summary.new == count and not summary.rejected
    assert fetch(dsn, "SELECT count(*) FROM lick.files") == [(count,)]

"""The watcher: files appear, grow and finish while PostgreSQL is stopped and restarted,
and every file is ingested exactly once; catch-up on start; override changes; SIGTERM."""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import psycopg2
import pytest
from astropy.io import fits

from ingest.config import IngestConfig
from ingest.report import ingest_report
from ingest.schedule import load_schedule_json
from ingest.watcher import Watcher
from tests.conftest import fetch

PROJECT = Path(__file__).resolve().parent.parent.parent
TEMPLATES = PROJECT / "ingest" / "templates" / "lick-headers"
KINDS = (
    ("2012-01_02_shane_r36-hdu0.txt", "shane", "r"),
    ("2019-05_06_nickel_d109-hdu0.txt", "nickel", "d"),
)
SCHEDULE = {
    "observers": [{"obid": 7, "first_name": "Wa", "last_name": "Tcher", "email": "w@example.org",
                   "password": "p", "password_apr1": None}],
    "runs": [{"run_id": "W1", "telescope": "Shane", "first_night": "2012-01-01",
              "last_night": "2012-01-31", "release_date": "2013-01-01", "program": "W",
              "obids": [7]}],
}


def fits_bytes(kind: int, pixels: int = 60, obj: str = "growing target") -> bytes:
    template = TEMPLATES / KINDS[kind][0]
    header = fits.Header.fromfile(str(template), sep="\n", endcard=False, padding=False)
    header["OBJECT"] = obj
    hdu = fits.PrimaryHDU(data=np.ones((pixels, pixels), dtype=np.int16), header=header)
    hdu.header["BITPIX"] = 16
    out = BytesIO()
    hdu.writeto(out, output_verify="silentfix")
    return out.getvalue()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except psycopg2.OperationalError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def prepare(dsn: str, tmp: Path) -> None:
    """Empty tables, a schedule, and a log of every write to lick.files."""
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute(
            "DELETE FROM ivoa.obscore; DELETE FROM ingest.rejected_files;"
            " DELETE FROM ingest.directories; DELETE FROM ingest.override_files;"
            " DROP SCHEMA IF EXISTS sched CASCADE;"
            " CREATE TABLE IF NOT EXISTS public.write_log (path text, op text, size bigint);"
            " TRUNCATE public.write_log;"
            " CREATE OR REPLACE FUNCTION public.log_write() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN INSERT INTO public.write_log VALUES (NEW.path, TG_OP, NEW.file_size);"
            " RETURN NEW; END$$;"
            " DROP TRIGGER IF EXISTS log_write ON lick.files;"
            " CREATE TRIGGER log_write AFTER INSERT OR UPDATE ON lick.files"
            " FOR EACH ROW EXECUTE FUNCTION public.log_write()")
    conn.commit()
    (tmp / "schedule.json").write_text(json.dumps(SCHEDULE))
    load_schedule_json(conn, tmp / "schedule.json", schema="sched")
    conn.close()


def watcher_config(root: Path, **kw: Any) -> IngestConfig:
    settings: dict[str, Any] = {
        "roots": (root,), "schedule_schema": "sched", "stable_seconds": 1.0,
        "poll_seconds": 0.1, "retry_max_seconds": 0.5, "workers": 1, "batch_size": 3,
        # The test nights are in 2012: scan everything on every poll, as a full scan
        # does (test_polls_between_full_scans covers the recent-months-only polls).
        "rescan_seconds": 0.0, "authority": "test.lick", "base_url": "http://archive.test",
    }
    settings.update(kw)
    return IngestConfig(**settings)


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[tuple[Any, str]]:
    """A PostgreSQL cluster of this module's own, so it can be stopped and restarted."""
    from vo_service.database import setup
    from vo_service.settings import load_settings

    data_dir = Path(tempfile.mkdtemp(prefix="lick-watch-"))
    data_dir.chmod(0o755)
    settings = load_settings(PROJECT / "conf" / "lick-archive.toml", environ={})
    settings = settings.replace(service={"data_dir": data_dir}, database={"url": ""})
    target = setup.initialize(settings)
    cluster = setup.embedded_cluster(settings)
    try:
        yield cluster, target.owner_dsn
    finally:
        cluster.destroy()
        shutil.rmtree(data_dir, ignore_errors=True)


def grow(path: Path, content: bytes, steps: int, pause: float) -> None:
    """Write ``content`` in ``steps`` appends, ``pause`` seconds apart."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = len(content)
    cuts = [size * i // steps for i in range(steps + 1)]
    for start, end in itertools.pairwise(cuts):
        with path.open("ab") as stream:
            stream.write(content[start:end])
        time.sleep(pause)


def test_database_outage_while_files_grow(own_cluster: tuple[Any, str], tmp_path: Path) -> None:
    cluster, dsn = own_cluster
    prepare(dsn, tmp_path)
    root = tmp_path / "archive"
    expected: dict[str, bytes] = {}

    # Files already on disk at start (catch-up), then the watcher starts.
    for i in range(4):
        content = fits_bytes(i % 2, obj=f"early {i}")
        rel = f"2012-01/{10 + i % 2:02d}/{KINDS[i % 2][1]}/{KINDS[i % 2][2]}{i:04d}.fits"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
        expected[rel] = content
    config = watcher_config(root)
    watcher = Watcher(config, dsn)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: fetch(dsn, "SELECT count(*) FROM lick.files")[0][0] == 4, 60,
                 "the catch-up of the first files")

        # Files that grow over ~2.4 s; the database goes down while they grow.
        growing = {}
        for i in range(4, 8):
            rel = f"2012-01/12/{KINDS[i % 2][1]}/{KINDS[i % 2][2]}{i:04d}.fits"
            growing[rel] = fits_bytes(i % 2, pixels=120, obj=f"growing {i}")
        writers = [threading.Thread(target=grow, args=(root / rel, content, 8, 0.3))
                   for rel, content in growing.items()]
        for w in writers:
            w.start()
        time.sleep(0.5)
        cluster.stop("fast")
        # While it is down: a new night directory with finished files, and a file that
        # starts growing and only finishes after the restart.
        for i in range(8, 10):
            rel = f"2012-01/13/{KINDS[i % 2][1]}/{KINDS[i % 2][2]}{i:04d}.fits"
            content = fits_bytes(i % 2, obj=f"during outage {i}")
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(content)
            expected[rel] = content
        late_rel = "2012-01/13/shane/r0010.fits"
        late = fits_bytes(0, pixels=120, obj="late")
        late_writer = threading.Thread(target=grow, args=(root / late_rel, late, 10, 0.4))
        late_writer.start()
        for w in writers:
            w.join()
        expected.update(growing)
        time.sleep(1.5)
        with pytest.raises(psycopg2.OperationalError):  # the database really is down
            psycopg2.connect(dsn).close()
        cluster.start()
        late_writer.join()
        expected[late_rel] = late

        wait_for(lambda: fetch(dsn, "SELECT count(*) FROM lick.files")[0][0] == len(expected),
                 90, "every file after the restart")
        time.sleep(config.stable_seconds * 3)  # let any late duplicate write show itself
    finally:
        stop.set()
        thread.join(timeout=30)
        watcher.close()
    assert not thread.is_alive()

    rows = {r[0]: r[1:] for r in fetch(
        dsn, "SELECT path, file_size, checksum, object FROM lick.files")}
    assert set(rows) == set(expected)
    for rel, content in expected.items():
        size, checksum, _ = rows[rel]
        assert size == len(content), rel  # never a partial version
        assert checksum == hashlib.sha256(content).hexdigest(), rel
    log = fetch(dsn, "SELECT path, op, count(*) FROM public.write_log GROUP BY path, op")
    assert sorted(log) == sorted((rel, "INSERT", 1) for rel in expected)  # exactly once
    assert fetch(dsn, "SELECT count(*) FROM ivoa.obscore") == [(len(expected),)]
    assert fetch(dsn, "SELECT count(*) FROM ingest.rejected_files") == [(0,)]


def test_catch_up_compares_names_sizes_and_mtimes(database: Any, tmp_path: Path) -> None:
    dsn = str(database.new_database("watch").owner_dsn)
    prepare(dsn, tmp_path)
    root = tmp_path / "archive"
    for i in range(3):
        path = root / f"2012-01/20/shane/r{i:04d}.fits"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(fits_bytes(0, obj=f"first {i}"))
    config = watcher_config(root, stable_seconds=0.0)
    first = Watcher(config, dsn)
    try:
        result = first.poll_once()
        assert result.summary.new == 3
    finally:
        first.close()
    # While no watcher runs: one file rewritten with the same size, one added.
    same_size = root / "2012-01/20/shane/r0001.fits"
    before = same_size.stat()
    same_size.write_bytes(fits_bytes(0, obj="second 1"))
    assert same_size.stat().st_size == before.st_size
    (root / "2012-01/20/shane/r0009.fits").write_bytes(fits_bytes(0, obj="new"))
    second = Watcher(config, dsn)
    try:
        result = second.poll_once()
        assert (result.summary.new, result.summary.updated, result.summary.unchanged) == (
            1, 1, 0)
        assert second.poll_once().summary.total == 0  # nothing left to do
    finally:
        second.close()
    assert fetch(dsn, "SELECT object FROM lick.files WHERE path = %s",
                 ("2012-01/20/shane/r0001.fits",)) == [("second 1",)]
    # The report says when the watcher last looked at each directory.
    (root / "2012-01/21/shane").mkdir(parents=True)
    (root / "2012-01/21/shane/r0000.fits").write_bytes(fits_bytes(0, obj="unwatched"))
    lines = {line.night: line for line in ingest_report(config, dsn)}
    watched = lines[date(2012, 1, 20)].watched_at
    assert watched is not None and abs(datetime.now(UTC) - watched) < timedelta(minutes=5)
    assert lines[date(2012, 1, 21)].watched_at is None


def test_override_change_reapplies_access(database: Any, tmp_path: Path) -> None:
    dsn = str(database.new_database("watch").owner_dsn)
    prepare(dsn, tmp_path)
    root = tmp_path / "archive"
    night = root / "2012-01/18/shane"
    night.mkdir(parents=True)
    (night / "r3001.fits").write_bytes(fits_bytes(0))
    watcher = Watcher(watcher_config(root, stable_seconds=0.0), dsn)
    try:
        watcher.poll_once()
        assert fetch(dsn, "SELECT owner_ids FROM lick.files") == [([7],)]
        (night / "override.access").write_text("r3* access public\n")
        result = watcher.poll_once()
        assert result.recomputed == ["2012-01/18/shane"]
        assert fetch(dsn, "SELECT f.owner_ids, o.data_rights FROM lick.files f"
                          " JOIN ivoa.obscore o USING (obs_publisher_did)") == [([], "public")]
        assert watcher.poll_once().recomputed == []  # applied once
        (night / "override.access").unlink()
        assert watcher.poll_once().recomputed == ["2012-01/18/shane"]
        assert fetch(dsn, "SELECT owner_ids FROM lick.files") == [([7],)]
    finally:
        watcher.close()


def test_sigterm_stops_the_daemon_cleanly(database: Any, tmp_path: Path) -> None:
    dsn = str(database.new_database("watch").owner_dsn)
    prepare(dsn, tmp_path)
    root = tmp_path / "archive"
    path = root / "2012-01/21/shane/r0001.fits"
    path.parent.mkdir(parents=True)
    path.write_bytes(fits_bytes(0))
    script = (
        "import logging, sys\n"
        "from pathlib import Path\n"
        "from ingest.config import IngestConfig\n"
        "from ingest.watcher import watch\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stderr)\n"
        f"watch(IngestConfig(roots=(Path({str(root)!r}),), schedule_schema='sched',"
        f" stable_seconds=0.0, poll_seconds=0.2, authority='test.lick',"
        f" base_url='http://archive.test'), {dsn!r})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: fetch(dsn, "SELECT count(*) FROM lick.files")[0][0] == 1, 60,
                 "the daemon's first ingest")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "watcher stopped" in stderr
    assert "Traceback" not in stderr


def test_polls_between_full_scans_walk_recent_months_only(database: Any,
                                                          tmp_path: Path) -> None:
    dsn = str(database.new_database("watch").owner_dsn)
    prepare(dsn, tmp_path)
    root = tmp_path / "archive"
    for rel in ("2011-12/31/shane", "2012-01/01/shane", "2011-06/01/nickel"):
        (root / rel).mkdir(parents=True)
    # 2012-01-01 22:00 PST: the observing night of 2012-01-01
    wall = datetime(2012, 1, 2, 6, 0, tzinfo=UTC).timestamp()
    config = watcher_config(root, rescan_seconds=3600.0, stable_seconds=0.0, active_nights=2)
    watcher = Watcher(config, dsn, wall_clock=lambda: wall)
    try:
        assert watcher.poll_once().directories_scanned == 3  # the first poll is full
        assert sorted(d for _, d in watcher._directories(full=False)) == [
            "2011-12/31/shane", "2012-01/01/shane"]
        # a file in an old month waits for the next full scan
        (root / "2011-06/01/nickel/d1.fits").write_bytes(fits_bytes(1))
        (root / "2012-01/01/shane/r1.fits").write_bytes(fits_bytes(0))
        watcher.poll_once()
        time.sleep(0.01)
        result = watcher.poll_once()
        assert fetch(dsn, "SELECT path FROM lick.files") == [("2012-01/01/shane/r1.fits",)]
        assert result.directories_scanned == 2
    finally:
        watcher.close()

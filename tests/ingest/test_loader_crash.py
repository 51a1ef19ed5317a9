"""Crash safety: a loader killed (SIGKILL) in the middle of a batch leaves no partial rows,
and the next run completes the ingest with every file exactly once."""

from __future__ import annotations

import contextlib
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
import psycopg2.extensions
import pytest
from astropy.io import fits
from sqlalchemy.engine import URL

from ingest.config import IngestConfig
from ingest.disk import collect
from ingest.loader import Loader, ingest_paths
from ingest.schedule import load_schedule_json
from tests.conftest import cli_env, fetch

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


def _wait_mid_batch(proc: subprocess.Popen[bytes], dsn: str) -> int:
    """Wait until a batch is being written after at least one was committed; returns
    the rows committed by then."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        # A loader transaction holding an xid has written rows it has not committed.
        rows = fetch(
            dsn, "SELECT (SELECT count(*) FROM lick.files),"
                 " EXISTS (SELECT 1 FROM pg_stat_activity"
                 " WHERE application_name = 'lick-archive-ingest'"
                 " AND backend_xid IS NOT NULL AND state <> 'idle')")
        committed, writing = rows[0]
        if writing and committed >= BATCH:
            return int(committed)
        time.sleep(0.002)
    raise AssertionError("the loader finished before it could be caught mid-batch")


def _assert_whole_batches_then_complete(dsn: str, root: Path, committed_before_kill: int
                                        ) -> None:
    """The dead run left whole batches only, and the next run ingests the rest."""
    # The server notices the dead clients and aborts their transactions.
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
    try:
        committed = _wait_mid_batch(proc, dsn)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    _assert_whole_batches_then_complete(dsn, root, committed)


# ---------------------------------------------------------------- the pool dies with its owner


def _stat(pid: int) -> tuple[str, int, str] | None:
    """(state, parent pid, start time) of a process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may hold spaces
    return fields[0], int(fields[1]), fields[19]


def _descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid``, with its start time (a reused pid is another one)."""
    parents: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").iterdir():
        stat = _stat(int(entry.name)) if entry.name.isdigit() else None
        if stat is not None:
            parents.setdefault(stat[1], []).append((int(entry.name), stat[2]))
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        for child, started in parents.get(todo.pop(), []):
            found[child] = started
            todo.append(child)
    return found


def _running(pid: int, started: str) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in "ZX" and stat[2] == started


def _database_url(dsn: str) -> str:
    """``dsn`` (libpq key=value or a URL) as the URL LICK_ARCHIVE_DATABASE_URL takes."""
    parts = psycopg2.extensions.parse_dsn(dsn)
    host = parts.get("host", "")
    socket = host.startswith("/")
    return str(URL.create(
        "postgresql", username=parts.get("user"), password=parts.get("password"),
        host=None if socket else host, port=int(parts["port"]) if "port" in parts else None,
        database=parts["dbname"], query={"host": host} if socket else {},
    ).render_as_string(hide_password=False))


@pytest.mark.parametrize("command", ["watch", "ingest"])
def test_killed_daemon_takes_its_pool_along(database: Any, tmp_path: Path, command: str
                                            ) -> None:
    """SIGKILL to `lick-archive watch` (or `ingest`) alone, mid-batch: within seconds no
    process it started is left (workers, forkserver, resource tracker), and the database
    holds whole batches only."""
    dsn = _empty_database(database, tmp_path)
    root = tmp_path / "archive"
    _write_archive(root, "2012-03", COUNT)
    env = cli_env(database)
    env.update({
        "LICK_ARCHIVE_DATABASE_URL": _database_url(dsn),
        "LICK_ARCHIVE_SCHEDULE_DSN": "",
        "LICK_ARCHIVE_INGEST_ROOTS": str(root),
        "LICK_ARCHIVE_INGEST_SCHEDULE_SCHEMA": "sched",
        "LICK_ARCHIVE_INGEST_WORKERS": "2",
        "LICK_ARCHIVE_INGEST_BATCH_SIZE": str(BATCH),
        "LICK_ARCHIVE_INGEST_STABLE_SECONDS": "0",
    })
    args = [command] if command == "watch" else [command, str(root)]
    proc = subprocess.Popen([sys.executable, "-m", "vo_service.cli", *args], cwd=PROJECT,
                            env=env, start_new_session=True, stderr=subprocess.DEVNULL)
    try:
        committed = _wait_mid_batch(proc, dsn)
        started = _descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)  # the main process only, not its group
        proc.wait(timeout=30)
        # Two workers and the forkserver at least (the resource tracker besides).
        assert len(started) >= 3, started
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_running(*p) for p in started.items()):
            time.sleep(0.05)
        left = [pid for pid, when in started.items() if _running(pid, when)]
        assert not left, f"still running after the main process was killed: {left}"
    finally:
        # Whatever the outcome, nothing of the run's session outlives the test.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    _assert_whole_batches_then_complete(dsn, root, committed)


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

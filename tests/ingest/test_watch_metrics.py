"""`lick-archive watch` as operators run it: its own /metrics (files ingested and
rejected by reason, polls, the last successful poll) and JSON log lines."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PROJECT, cli_env, embedded_url, fetch, free_port
from tests.ingest.test_watcher import fits_bytes, prepare


def _samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(url, timeout=5).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_watcher_serves_its_metrics_and_logs_json(database: Any, tmp_path: Path) -> None:
    own = database.new_database("watch_metrics")
    dsn = str(own.owner_dsn)
    prepare(dsn, tmp_path)
    root = tmp_path / "archive"
    night = root / "2012-01/20/shane"
    night.mkdir(parents=True)
    for i in range(3):
        (night / f"r{i:04d}.fits").write_bytes(fits_bytes(0, obj=f"m{i}"))
    (night / "r0099.fits").write_bytes(b"not a FITS file at all")
    port = free_port()
    env = {**cli_env(database),
           "LICK_ARCHIVE_DATABASE_URL": embedded_url(database, "test_watch_metrics"),
           "LICK_ARCHIVE_INGEST_ROOTS": str(root),
           "LICK_ARCHIVE_INGEST_SCHEDULE_SCHEMA": "sched",
           "LICK_ARCHIVE_INGEST_STABLE_SECONDS": "0",
           "LICK_ARCHIVE_INGEST_POLL_SECONDS": "0.2",
           # the night is in 2012: list every directory at every poll (a full scan)
           "LICK_ARCHIVE_INGEST_RESCAN_SECONDS": "0",
           "LICK_ARCHIVE_INGEST_WORKERS": "1",
           "LICK_ARCHIVE_INGEST_METRICS_PORT": str(port)}
    log_path = tmp_path / "watch.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "vo_service.cli", "watch"], env=env,
                                   cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 60
        samples: dict = {}
        while time.monotonic() < deadline:
            try:
                samples = _samples(url)
            except httpx.HTTPError:
                samples = {}
            if samples.get(("lick_archive_watch_files_total",
                            frozenset({("result", "new")}))) == 3:
                break
            assert process.poll() is None, log_path.read_text()
            time.sleep(0.2)
        assert samples.get(("lick_archive_watch_files_total", frozenset({("result", "new")}))) \
            == 3, log_path.read_text()
        (reason, count), = fetch(dsn, "SELECT reason, count(*) FROM ingest.rejected_files "
                                      "GROUP BY reason")
        assert samples[("lick_archive_watch_rejected_files_total",
                        frozenset({("reason", reason)}))] == count == 1
        assert samples[("lick_archive_watch_polls_total", frozenset({("outcome", "ok")}))] >= 1
        last = samples[("lick_archive_watch_last_success_timestamp_seconds", frozenset())]
        assert abs(time.time() - last) < 60
        # a file rewritten is counted as updated
        (night / "r0001.fits").write_bytes(fits_bytes(0, obj="changed"))
        deadline = time.monotonic() + 30
        while _samples(url).get(("lick_archive_watch_files_total",
                                 frozenset({("result", "updated")}))) != 1:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    lines = [json.loads(text) for text in log_path.read_text().splitlines()]
    assert any("watching" in line["message"] and str(port) in line["message"]
               for line in lines)
    assert any(line["message"].startswith("ingested 3 new") for line in lines), lines
    assert lines[-1]["message"] == "watcher stopped"

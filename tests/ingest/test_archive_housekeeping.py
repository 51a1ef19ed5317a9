"""Archive housekeeping: files deleted or moved on disk (``ingest prune``) and schedule
edits re-applied by the watcher, on a database of their own."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from ingest.config import IngestError
from ingest.prune import prune
from ingest.watcher import Watcher
from tests.conftest import PROJECT, cli_env, embedded_url, fetch
from tests.ingest.test_watcher import fits_bytes, prepare, watcher_config

LAYOUT = {
    "2012-01-20/shane": ["r0000", "r0001", "r0002", "r0003"],
    "2012-01-21/shane": ["r0100", "r0101", "r0102"],
    "2012-01-24/shane": ["r0200"],
}


def _ingest(dsn: str, root: Path, **kw: Any) -> Watcher:
    watcher = Watcher(watcher_config(root, stable_seconds=0.0, **kw), dsn)
    watcher.poll_once()
    return watcher


def _paths(dsn: str) -> set[str]:
    return {row[0] for row in fetch(dsn, "SELECT path FROM lick.files UNION ALL "
                                         "SELECT path FROM ingest.rejected_files")}


@pytest.fixture()
def archive_tree(database: Any, tmp_path: Path) -> tuple[str, Path]:
    own = database.new_database("housekeeping")
    dsn = str(own.owner_dsn)
    prepare(dsn, tmp_path)
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM ingest.schedule_runs")
    root = tmp_path / "archive"
    for night, names in LAYOUT.items():
        directory = root / f"{night[:7]}/{night[8:10]}/{night.split('/')[1]}"
        directory.mkdir(parents=True)
        for name in names:
            (directory / f"{name}.fits").write_bytes(fits_bytes(0, obj=name))
    (root / "2012-01/24/shane/r0299.fits").write_bytes(b"not a FITS file at all")
    _ingest(dsn, root).close()
    return dsn, root


def test_prune_reports_then_removes_within_the_share(archive_tree, database) -> None:
    dsn, root = archive_tree
    assert len(_paths(dsn)) == 9
    assert fetch(dsn, "SELECT count(*) FROM ingest.rejected_files") == [(1,)]
    config = watcher_config(root)
    # night 20: one deleted, one moved to another night (2 of 4: the share allowed)
    (root / "2012-01/20/shane/r0000.fits").unlink()
    (root / "2012-01/23/shane").mkdir(parents=True)
    (root / "2012-01/20/shane/r0001.fits").rename(root / "2012-01/23/shane/r0001.fits")
    # night 21: 2 of 3 gone, more than half: refused without --force
    (root / "2012-01/21/shane/r0100.fits").unlink()
    (root / "2012-01/21/shane/r0101.fits").unlink()
    # night 24: the rejected file deleted (1 of 2)
    (root / "2012-01/24/shane/r0299.fits").unlink()

    dry = prune(config, dsn)
    assert not dry.applied and dry.removed == 0 and len(_paths(dsn)) == 9
    nights = {(n.night, n.instrument_dir): n for n in dry.nights}
    twenty = nights[(date(2012, 1, 20), "shane")]
    assert not twenty.refused and twenty.recorded == 4
    assert {g.path: g.moved_to for g in twenty.gone} == {
        "2012-01/20/shane/r0000.fits": (),
        "2012-01/20/shane/r0001.fits": ("2012-01/23/shane/r0001.fits",)}
    assert nights[(date(2012, 1, 21), "shane")].refused
    rejected = nights[(date(2012, 1, 24), "shane")]
    assert [(g.path, g.table) for g in rejected.gone] == [
        ("2012-01/24/shane/r0299.fits", "rejected")]
    assert dry.gone == 5 and dry.refused == 2

    # the report counts them and points at prune
    env = {**cli_env(database), "LICK_ARCHIVE_DATABASE_URL": embedded_url(
        database, "test_housekeeping"), "LICK_ARCHIVE_INGEST_ROOTS": str(root),
        "LICK_ARCHIVE_INGEST_SCHEDULE_SCHEMA": "sched"}
    report = subprocess.run([sys.executable, "-m", "vo_service.cli", "ingest", "report"],
                            env={**env, "COLUMNS": "200"}, cwd=PROJECT, capture_output=True,
                            text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    assert "5 recorded files are gone from disk" in report.stdout, report.stdout
    # the CLI: a dry run by default, exit status 3 while something is refused
    shown = subprocess.run([sys.executable, "-m", "vo_service.cli", "ingest", "prune"],
                           env=env, cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 3, shown.stderr
    assert "dry run" in shown.stdout and "refused" in shown.stdout
    assert "2012-01/23/shane/r0001.fits" in shown.stdout  # where the moved file went
    assert len(_paths(dsn)) == 9

    applied = prune(config, dsn, apply=True)
    assert applied.applied and applied.removed == 3
    assert _paths(dsn) == {
        "2012-01/20/shane/r0002.fits", "2012-01/20/shane/r0003.fits",
        "2012-01/21/shane/r0100.fits", "2012-01/21/shane/r0101.fits",
        "2012-01/21/shane/r0102.fits", "2012-01/24/shane/r0200.fits"}
    # the ObsCore rows went with the archive rows
    assert fetch(dsn, "SELECT count(*) FROM ivoa.obscore") == [(6,)]
    # a night above the share goes only with --force; a second prune finds nothing
    forced = prune(config, dsn, apply=True, force=True)
    assert forced.removed == 2 and len(_paths(dsn)) == 4
    assert prune(config, dsn).nights == []
    # the moved file is ingested at its new path by the watcher
    _ingest(dsn, root).close()
    assert "2012-01/23/shane/r0001.fits" in _paths(dsn)


def test_prune_refuses_when_the_disk_is_not_there(archive_tree) -> None:
    dsn, root = archive_tree
    root.rename(root.with_name("unmounted"))
    root.mkdir()  # an empty mount point
    with pytest.raises(IngestError, match="missing or empty"):
        prune(watcher_config(root), dsn, apply=True)
    assert len(_paths(dsn)) == 9
    root.rmdir()
    with pytest.raises(IngestError, match="missing or empty"):
        prune(watcher_config(root), dsn, apply=True)
    assert len(_paths(dsn)) == 9


def test_watcher_reapplies_schedule_changes(archive_tree) -> None:
    dsn, root = archive_tree
    rows = "SELECT owner_ids, release_date::date FROM lick.files WHERE path = %s"
    path = "2012-01/20/shane/r0002.fits"
    assert fetch(dsn, rows, (path,)) == [([7], date(2013, 1, 1))]
    # the watcher that ingested them recorded the schedule they were computed from
    assert fetch(dsn, "SELECT run_id FROM ingest.schedule_runs") == [("W1",)]
    watcher = Watcher(watcher_config(root, stable_seconds=0.0, schedule_check_seconds=0.0),
                      dsn)
    try:
        first = watcher.poll_once()
        assert first.schedule is not None and not first.schedule.baseline
        assert first.schedule.changed_runs == [] and first.schedule.nights == []
        # the observatory adds an observer to the run
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO sched.observers (obid, email) VALUES (8, 'new@ex.org')")
            cur.execute("INSERT INTO sched.run_observers (run_id, obid) VALUES ('W1', 8)")
        changed = watcher.poll_once().schedule
        assert changed is not None and changed.changed_runs == ["W1"]
        assert changed.nights == [date(2012, 1, 20), date(2012, 1, 21), date(2012, 1, 24)]
        assert fetch(dsn, rows, (path,)) == [([7, 8], date(2013, 1, 1))]
        assert fetch(dsn, "SELECT DISTINCT o.owner_ids FROM ivoa.obscore o JOIN lick.files f "
                          "USING (obs_publisher_did) WHERE f.night = '2012-01-21'") == [([7, 8],)]
        # then moves the release date: the nights become public with it
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("UPDATE sched.runs SET release_date = '2012-06-01' WHERE run_id = 'W1'")
        again = watcher.poll_once().schedule
        assert again is not None and again.changed_runs == ["W1"]
        assert fetch(dsn, rows, (path,)) == [([7, 8], date(2012, 6, 1))]
        assert fetch(dsn, "SELECT DISTINCT o.data_rights FROM ivoa.obscore o") == [("public",)]
        # nothing changed since: nothing recomputed
        quiet = watcher.poll_once().schedule
        assert quiet is not None and quiet.changed_runs == [] and quiet.nights == []
        # a run removed: its nights lose their owners (nobody scheduled: public)
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM sched.runs WHERE run_id = 'W1'")
        gone = watcher.poll_once().schedule
        assert gone is not None and gone.changed_runs == ["W1"]
        assert fetch(dsn, rows, (path,))[0][0] == []
        assert fetch(dsn, "SELECT run_id FROM ingest.schedule_runs") == []
    finally:
        watcher.close()

"""The loader against a real PostgreSQL: idempotency, updates, rejections and retries,
dry runs, access rules and their recomputation, the disk-vs-database report."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import psycopg2
import pytest
from astropy.io import fits

from ingest.batch import BatchIngester
from ingest.config import IngestConfig, IngestError
from ingest.disk import collect
from ingest.loader import ingest_paths
from ingest.recompute import recompute_access
from ingest.report import ingest_report
from ingest.schedule import load_schedule_json
from tests.conftest import fetch

PROJECT = Path(__file__).resolve().parent.parent.parent
TEMPLATES = PROJECT / "ingest" / "templates" / "lick-headers"
ACCESS_DATA = PROJECT / "tests" / "data" / "access"

# (template, night directory, file name)
FILES = (
    ("2012-01_18_shane_b1011-hdu0.txt", "2012-01/18/shane", "b1011.fits"),
    ("2012-01_02_shane_r36-hdu0.txt", "2012-01/18/shane", "r1002.fits"),
    ("2012-01_02_shane_r36-hdu0.txt", "2012-01/18/shane", "r3001.fits"),
    ("2019-05_06_nickel_d109-hdu0.txt", "2019-05/06/nickel", "d109.fits"),
    ("2019-11_09_AO_s1303-hdu0.txt", "2019-11/09/AO", "s1303.fits"),
)

SCHEDULE = {
    "observers": [
        {"obid": 1, "first_name": "Ada", "last_name": "Ownerhint1", "email": "ada@example.org",
         "password": "p", "password_apr1": None},
        {"obid": 2, "first_name": "Bo", "last_name": "Kast", "email": "bo@example.org",
         "password": "p", "password_apr1": None},
        {"obid": 3, "first_name": "Cy", "last_name": "Nick", "email": "cy@example.org",
         "password": "p", "password_apr1": None},
    ],
    "runs": [
        {"run_id": "S1", "telescope": "Shane", "first_night": "2012-01-17",
         "last_night": "2012-01-18", "release_date": "2013-01-31", "program": "K1",
         "obids": [2]},
        {"run_id": "N1", "telescope": "Nickel", "first_night": "2019-05-06",
         "last_night": "2019-05-06", "release_date": None, "program": "N1", "obids": [3]},
    ],
}


def make_fits(path: Path, template: str, *, obj: str | None = None, pixels: int = 16) -> Path:
    """A real FITS file: a real Lick header with a small synthetic data array."""
    header = fits.Header.fromfile(str(TEMPLATES / template), sep="\n", endcard=False,
                                  padding=False)
    if obj is not None:
        header["OBJECT"] = obj
    hdu = fits.PrimaryHDU(data=np.zeros((pixels, pixels), dtype=np.int16), header=header)
    hdu.header["BITPIX"] = 16
    path.parent.mkdir(parents=True, exist_ok=True)
    hdu.writeto(path, overwrite=True, output_verify="silentfix")
    return path


@pytest.fixture
def dsn(database: Any, tmp_path: Path) -> Iterator[str]:
    db = database.new_database("ingest")
    conn = psycopg2.connect(db.owner_dsn)
    with conn.cursor() as cur:
        cur.execute("DELETE FROM ivoa.obscore; DELETE FROM ingest.rejected_files;"
                    " DELETE FROM ingest.directories; DELETE FROM ingest.override_files;"
                    " DROP SCHEMA IF EXISTS sched CASCADE")
    conn.commit()
    (tmp_path / "schedule.json").write_text(json.dumps(SCHEDULE))
    load_schedule_json(conn, tmp_path / "schedule.json", schema="sched")
    conn.close()
    yield str(db.owner_dsn)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    for template, directory, name in FILES:
        make_fits(root / directory / name, template)
    # not FITS at all, in an instrument directory: must be rejected with its reason
    (root / "2012-01/18/shane/r9999.fits").write_text("this is not a FITS file\n")
    # ignored: not an instrument directory of the configuration, hidden, override
    make_fits(root / "2012-01/18/allsky/x.fits", FILES[0][0])
    (root / "2012-01/18/shane/.hidden.fits").write_text("x")
    return root


def config_for(root: Path, **kw: Any) -> IngestConfig:
    return IngestConfig(roots=(root,), schedule_schema="sched", workers=2, batch_size=2,
                        authority="test.lick", base_url="http://archive.test", **kw)


def test_ingest_is_idempotent(dsn: str, archive: Path) -> None:
    config = config_for(archive)
    first = ingest_paths(config, dsn, [archive], show_progress=False)
    assert (first.new, first.updated, first.unchanged) == (5, 0, 0)
    assert sum(first.rejected.values()) == 1
    rows = fetch(dsn, "SELECT f.path, f.file_size, f.checksum, o.obs_publisher_did"
                      " FROM lick.files f JOIN ivoa.obscore o USING (obs_publisher_did)"
                      " ORDER BY f.path")
    assert [r[0] for r in rows] == sorted(f"{d}/{n}" for _, d, n in FILES)
    for path, size, checksum, did in rows:
        content = (archive / path).read_bytes()
        assert size == len(content)
        assert checksum == hashlib.sha256(content).hexdigest()
        assert did.startswith("ivo://test.lick/")
    rejected = fetch(dsn, "SELECT path, size, reason FROM ingest.rejected_files")
    assert len(rejected) == 1 and rejected[0][0] == "2012-01/18/shane/r9999.fits"
    assert rejected[0][2] in first.rejected
    stamps = fetch(dsn, "SELECT path, ingested_at FROM lick.files ORDER BY path")

    second = ingest_paths(config, dsn, [archive], show_progress=False)
    assert (second.new, second.updated, second.unchanged, second.still_rejected) == (0, 0, 5, 1)
    assert not second.rejected
    assert fetch(dsn, "SELECT path, ingested_at FROM lick.files ORDER BY path") == stamps
    assert fetch(dsn, "SELECT count(*) FROM ivoa.obscore") == [(5,)]


def test_changed_file_is_updated_with_a_stable_identifier(dsn: str, archive: Path) -> None:
    config = config_for(archive)
    ingest_paths(config, dsn, [archive], show_progress=False)
    path = "2019-05/06/nickel/d109.fits"
    (did_before, sum_before), = fetch(
        dsn, "SELECT obs_publisher_did, checksum FROM lick.files WHERE path = %s", (path,))
    make_fits(archive / path, FILES[3][0], obj="NGC 1234 again", pixels=20)
    os.utime(archive / path, (1_700_000_000, 1_700_000_000))
    summary = ingest_paths(config, dsn, [archive / "2019-05"], show_progress=False)
    assert (summary.new, summary.updated, summary.unchanged) == (0, 1, 0)
    (did, checksum, size, obj, target), = fetch(
        dsn, "SELECT f.obs_publisher_did, f.checksum, f.file_size, f.object, o.target_name"
             " FROM lick.files f JOIN ivoa.obscore o USING (obs_publisher_did)"
             " WHERE f.path = %s", (path,))
    assert did == did_before
    assert checksum != sum_before
    assert checksum == hashlib.sha256((archive / path).read_bytes()).hexdigest()
    assert size == (archive / path).stat().st_size
    assert obj == "NGC 1234 again" and target == "NGC 1234 again"
    assert fetch(dsn, "SELECT count(*) FROM lick.files") == [(5,)]


def test_rejected_file_is_retried_when_it_changes(dsn: str, archive: Path) -> None:
    config = config_for(archive)
    ingest_paths(config, dsn, [archive], show_progress=False)
    bad = archive / "2012-01/18/shane/r9999.fits"
    make_fits(bad, FILES[1][0])
    summary = ingest_paths(config, dsn, [bad], show_progress=False)
    assert (summary.new, sum(summary.rejected.values())) == (1, 0)
    assert fetch(dsn, "SELECT count(*) FROM ingest.rejected_files") == [(0,)]
    assert fetch(dsn, "SELECT count(*) FROM lick.files WHERE path = %s",
                 ("2012-01/18/shane/r9999.fits",)) == [(1,)]


def test_file_that_becomes_unreadable_loses_its_rows(dsn: str, archive: Path) -> None:
    config = config_for(archive)
    ingest_paths(config, dsn, [archive], show_progress=False)
    victim = archive / "2019-11/09/AO/s1303.fits"
    victim.write_bytes(b"\0" * 100)
    summary = ingest_paths(config, dsn, [archive], show_progress=False)
    assert sum(summary.rejected.values()) == 1 and summary.unchanged == 4
    assert fetch(dsn, "SELECT count(*) FROM ivoa.obscore") == [(4,)]
    assert fetch(dsn, "SELECT path FROM ingest.rejected_files ORDER BY path") == [
        ("2012-01/18/shane/r9999.fits",), ("2019-11/09/AO/s1303.fits",)]


def test_dry_run_writes_nothing(dsn: str, archive: Path) -> None:
    summary = ingest_paths(config_for(archive), dsn, [archive], dry_run=True,
                           show_progress=False)
    assert summary.new == 5 and sum(summary.rejected.values()) == 1 and summary.dry_run
    assert fetch(dsn, "SELECT (SELECT count(*) FROM lick.files),"
                      " (SELECT count(*) FROM ingest.rejected_files)") == [(0, 0)]


def test_paths_outside_the_roots_are_refused(dsn: str, archive: Path, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="not below any archive root"):
        ingest_paths(config_for(archive), dsn, [tmp_path], show_progress=False)


def test_access_rules_and_recompute(dsn: str, archive: Path) -> None:
    config = config_for(archive)
    ingest_paths(config, dsn, [archive], show_progress=False)

    def access(path: str) -> tuple[Any, ...]:
        (row,) = fetch(
            dsn, "SELECT f.owner_ids, f.release_date::date, o.obs_release_date::date,"
                 " o.data_rights, o.owner_ids, f.frame_type, f.ingest_flags"
                 " FROM lick.files f JOIN ivoa.obscore o USING (obs_publisher_did)"
                 " WHERE f.path = %s", (path,))
        assert row[0] == row[4] and row[1] == row[2]  # both tables agree
        return row

    # Shane run S1 covers 2012-01-18: Kast frames belong to observer 2 until 2013-01-31,
    # so ObsCore says public today
    kast = access("2012-01/18/shane/r1002.fits")
    assert (kast[0], kast[1], kast[3]) == ([2], date(2013, 1, 31), "public")
    nickel = access("2019-05/06/nickel/d109.fits")
    assert (nickel[0], nickel[1]) == ([3], date(2021, 5, 6))  # no run release date: +2 years
    ao = access("2019-11/09/AO/s1303.fits")  # nobody scheduled: public from the night
    assert (ao[0], ao[1], ao[3]) == ([], date(2019, 11, 9), "public")

    # The real override files arrive in the night: override.3.access is in force.
    night_dir = archive / "2012-01/18/shane"
    for name in ("override.access", "override.1.access", "override.2.access",
                 "override.3.access"):
        shutil.copy(ACCESS_DATA / "2012-01/18/shane" / name, night_dir / name)
    result = recompute_access(config, dsn, "2012-01-18")
    assert result.examined == 3 and result.changed == 1
    # r3* access ownerhint1 → observer 1 (last name Ownerhint1), not scheduled that night
    owned = access("2012-01/18/shane/r3001.fits")
    assert (owned[0], owned[1]) == ([1], date(2014, 1, 18))
    assert access("2012-01/18/shane/r1002.fits")[0] == [2]

    # An obstype override changes the stored frame type and is flagged; removing it
    # restores the header's frame type.
    (night_dir / "override.4.access").write_text("b1011.fits obstype dark\n")
    recompute_access(config, dsn, night_dir / "b1011.fits")
    retyped = access("2012-01/18/shane/b1011.fits")
    assert retyped[5] == "dark" and "obstype_override" in retyped[6].split()
    (night_dir / "override.4.access").unlink()
    recompute_access(config, dsn, "2012-01/18")
    header_type = access("2012-01/18/shane/b1011.fits")
    assert header_type[5] != "dark" and "obstype_override" not in header_type[6].split()
    # the override in force is remembered for the watcher
    assert fetch(dsn, "SELECT name FROM ingest.override_files WHERE directory = %s",
                 ("2012-01/18/shane",)) == [("override.3.access",)]


def test_report_marks_mismatches(dsn: str, archive: Path) -> None:
    config = config_for(archive)
    ingest_paths(config, dsn, [archive], show_progress=False)
    lines = {(line.night, line.instrument_dir): line for line in ingest_report(config, dsn)}
    assert all(line.ok for line in lines.values())
    shane = lines[(date(2012, 1, 18), "shane")]
    assert (shane.on_disk, shane.ingested, shane.rejected) == (4, 3, 1)

    make_fits(archive / "2012-01/18/shane/b1012.fits", FILES[0][0])  # missing
    (archive / "2019-11/09/AO/s1303.fits").unlink()  # orphaned
    with (archive / "2019-05/06/nickel/d109.fits").open("ab") as f:  # stale
        f.write(b"\0" * 2880)
    lines = {(line.night, line.instrument_dir): line for line in ingest_report(config, dsn)}
    assert lines[(date(2012, 1, 18), "shane")].missing == 1
    assert lines[(date(2019, 11, 9), "AO")].orphaned == 1
    assert lines[(date(2019, 5, 6), "nickel")].stale == 1
    assert sum(not line.ok for line in lines.values()) == 3
    only = ingest_report(config, dsn, [archive / "2019-05"])
    assert [(line.night, line.stale) for line in only] == [(date(2019, 5, 6), 1)]


def test_rows_written_meanwhile_are_upserted_not_duplicated(dsn: str, archive: Path) -> None:
    """A batch believed new (direct COPY) whose rows appeared meanwhile falls back to
    the upsert: no unique violation, no duplicate, the newer content wins."""
    config = config_for(archive)
    ingest_paths(config, dsn, [archive], show_progress=False)
    path = "2012-01/18/shane/b1011.fits"
    make_fits(archive / path, FILES[0][0], obj="rewritten")
    files, _ = collect([archive / path], config)
    ingester = BatchIngester(config, dsn)
    try:
        outcome = ingester.ingest(files, all_new=True)  # believed new
    finally:
        ingester.close()
    assert outcome.written == (path,)
    assert fetch(dsn, "SELECT count(*), max(object) FROM lick.files WHERE path = %s",
                 (path,)) == [(1, "rewritten")]
    assert fetch(dsn, "SELECT count(*) FROM ivoa.obscore") == [(5,)]


def test_missing_schedule_is_a_clear_error(dsn: str, archive: Path) -> None:
    config = IngestConfig(roots=(archive,), schedule_schema="no_such_schedule",
                          authority="test.lick", base_url="http://archive.test")
    with pytest.raises(IngestError, match="scheduling database has no observers/runs"):
        ingest_paths(config, dsn, [archive], show_progress=False)
    assert fetch(dsn, "SELECT count(*) FROM ingest.rejected_files") == [(0,)]


@pytest.mark.parametrize("setting,error", [
    ({"schedule_schema": "no_such_schedule"}, IngestError),
    ({"schedule_dsn": "host=/nonexistent dbname=nothing connect_timeout=2"},
     psycopg2.OperationalError),
])
def test_errors_in_pool_workers_reach_the_caller(dsn: str, tmp_path: Path, setting: dict[str, Any],
                                                 error: type[Exception]) -> None:
    """Enough files for the process pool: a configuration or database error raised in a
    worker ends the run with that error, and nothing of the failed batches is written."""
    root = tmp_path / "many"
    for i in range(12):
        make_fits(root / f"2012-01/18/shane/b{2000 + i}.fits", FILES[0][0])
    config = IngestConfig(roots=(root,), workers=2, batch_size=3, authority="test.lick",
                          base_url="http://archive.test", **setting)
    with pytest.raises(error):
        ingest_paths(config, dsn, [root], show_progress=False)
    assert fetch(dsn, "SELECT count(*) FROM lick.files") == [(0,)]
    assert fetch(dsn, "SELECT count(*) FROM ingest.rejected_files") == [(0,)]

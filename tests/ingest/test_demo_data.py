"""The demo archive: deterministic, readable by the readers, realistic enough to query."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from astropy.io import fits
from astropy.wcs import WCS
from passlib.hash import apr_md5_crypt

from ingest.demo_data import DemoSummary, write_bulk_data, write_demo_data
from ingest.instruments import (
    InstrumentConfig,
    default_instrument_config_path,
    load_instrument_config,
)
from ingest.records import FileMetadata, Rejection, read_file


@pytest.fixture(scope="module")
def config() -> InstrumentConfig:
    return load_instrument_config(default_instrument_config_path())


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoSummary:
    return write_demo_data(tmp_path_factory.mktemp("demo"))


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(demo: DemoSummary, tmp_path: Path) -> None:
    again = write_demo_data(tmp_path / "again")
    first, second = _files(demo.directory), _files(again.directory)
    assert first.keys() == second.keys()
    assert first == second
    assert again.files == demo.files and again.broken == demo.broken
    other = write_demo_data(tmp_path / "other", seed=2)
    assert _files(other.directory) != first


def test_every_file_is_read(demo: DemoSummary, config: InstrumentConfig) -> None:
    fits_files = [p for p in demo.directory.rglob("*") if p.is_file()
                  and p.suffix in (".fits", ".ccd")]
    assert len(fits_files) == demo.files >= 300
    kinds: Counter[tuple[str | None, str]] = Counter()
    flags: Counter[str] = Counter()
    rejected = {}
    for path in fits_files:
        result = read_file(path, demo.directory, config)
        if isinstance(result, Rejection):
            rejected[path.relative_to(demo.directory).as_posix()] = result.reason
            continue
        kinds[(result.instrument, result.frame_type)] += 1
        flags.update(result.flags)
    assert sorted(rejected.values()) == ["empty", "not_fits"]
    assert set(rejected) <= set(demo.broken)
    instruments = {i for i, _ in kinds}
    assert instruments == {"Kast Blue", "Kast Red", "ShARCS", "Nickel Direct"}
    types = {t for _, t in kinds}
    assert {"science", "bias", "flat", "arc", "dark", "focus"} <= types
    assert "unknown" not in types
    for flag in ("missing_end", "missing_simple", "nul_bytes", "verify_fixed", "bad_card",
                 "date_from_path", "truncated"):
        assert flags[flag] >= 1, flag


def test_nights_span_years_and_layout(demo: DemoSummary) -> None:
    nights = sorted({tuple(p.relative_to(demo.directory).parts[:2])
                     for p in demo.directory.rglob("*.fits")})
    years = {int(month[:4]) for month, _ in nights}
    assert len(nights) == demo.nights >= 20
    assert min(years) <= 2010 and max(years) >= 2026
    assert len(years) >= 8


def test_schedule_json(demo: DemoSummary) -> None:
    assert demo.schedule_path is not None
    schedule = json.loads(demo.schedule_path.read_text())
    assert set(schedule) == {"observers", "runs"}
    observers = schedule["observers"]
    assert len(observers) == demo.observers >= 5
    for observer in observers:
        assert set(observer) == {"obid", "first_name", "last_name", "email", "password",
                                 "password_apr1"}
        assert observer["password_apr1"].startswith("$apr1$")
        assert apr_md5_crypt.verify(observer["password"], observer["password_apr1"])
    obids = {o["obid"] for o in observers}
    runs = schedule["runs"]
    assert len(runs) == demo.runs
    for run in runs:
        assert set(run) == {"run_id", "telescope", "first_night", "last_night",
                            "release_date", "program", "obids"}
        assert run["telescope"] in ("Shane", "Nickel")
        assert set(run["obids"]) <= obids and run["obids"]
        assert date.fromisoformat(run["first_night"]) <= date.fromisoformat(run["last_night"])
        if run["release_date"] is not None:
            date.fromisoformat(run["release_date"])
    scheduled = {run["first_night"] for run in runs}
    on_disk = {f"{month}-{day}" for month, day in
               {p.relative_to(demo.directory).parts[:2] for p in demo.directory.rglob("*.fits")}}
    assert on_disk - scheduled, "some nights must have nobody scheduled (public data)"
    # Still proprietary whenever the demo is run: an extended release date, and
    # recent nights under the default two-year period.
    assert any(run["release_date"] and run["release_date"] > "2030" for run in runs)
    assert any(run["release_date"] is None and run["first_night"] >= "2025" for run in runs)
    assert len({run["program"] for run in runs}) >= 4


def test_observer_cards_follow_the_schedule(demo: DemoSummary,
                                            config: InstrumentConfig) -> None:
    assert demo.schedule_path is not None
    schedule = json.loads(demo.schedule_path.read_text())
    names = {o["obid"]: f"{o['first_name']} {o['last_name']}" for o in schedule["observers"]}
    run = schedule["runs"][0]
    month, day = run["first_night"][:7], run["first_night"][8:]
    path = next(p for p in sorted((demo.directory / month / day).rglob("*.fits")))
    meta = read_file(path, demo.directory, config)
    assert isinstance(meta, FileMetadata)
    assert meta.observer == ", ".join(names[o] for o in run["obids"])


def test_override_file(demo: DemoSummary) -> None:
    assert demo.override_files
    for name in demo.override_files:
        text = (demo.directory / name).read_text()
        lines = [line for line in text.splitlines() if line and not line.startswith("#")]
        assert any(" obstype " in line for line in lines)
        assert any(" access " in line for line in lines)


def test_wcs_of_imagers_matches_the_real_field(demo: DemoSummary) -> None:
    """Binned-down demo frames keep the real field of view (astropy reads the WCS)."""
    nickel = next(p for p in sorted(demo.directory.rglob("nickel/d1*.fits"))
                  if p.relative_to(demo.directory).parts[0] >= "2015")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = fits.getheader(nickel)
        corners = WCS(header).calc_footprint(center=False)
    width = abs(corners[0][1] - corners[1][1]) * 3600
    # 1024 binned rows of the real camera at ~0.37"/pixel: about 6.3 arcmin.
    assert 330 < width < 420
    data = fits.getdata(nickel)
    assert data.shape == (header["NAXIS2"], header["NAXIS1"])
    assert header["BITPIX"] == 16


def test_bulk_data(tmp_path: Path, config: InstrumentConfig) -> None:
    summary = write_bulk_data(tmp_path, count=120)
    files = sorted(tmp_path.rglob("*.fits"))
    assert len(files) == summary.files == 120
    instruments: Counter[str | None] = Counter()
    for path in files:
        meta = read_file(path, tmp_path, config)
        assert isinstance(meta, FileMetadata), meta
        assert meta.flags == ()
        instruments[meta.instrument] += 1
    assert set(instruments) == {"Kast Blue", "Kast Red", "ShARCS", "Nickel Direct"}


def test_demo_archive_ingests_end_to_end(database, demo: DemoSummary,
                                         config: InstrumentConfig) -> None:
    """The path of ``make demo``: schedule.json and the files through the loader."""
    import psycopg2

    from ingest.config import IngestConfig
    from ingest.loader import ingest_paths
    from ingest.schedule import load_schedule_json

    db = database.new_database("demo_data")
    conn = psycopg2.connect(db.owner_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM ivoa.obscore; DELETE FROM ingest.rejected_files;"
                        " DROP SCHEMA IF EXISTS demo_sched CASCADE")
        conn.commit()
        assert demo.schedule_path is not None
        load_schedule_json(conn, demo.schedule_path, schema="demo_sched")
    finally:
        conn.close()
    ingest_config = IngestConfig(roots=(demo.directory,), schedule_schema="demo_sched",
                                 authority="demo.lick", base_url="http://demo.test")
    summary = ingest_paths(ingest_config, db.owner_dsn, [demo.directory], show_progress=False)
    readable = sum(1 for p in demo.directory.rglob("*.fits")
                   if isinstance(read_file(p, demo.directory, config), FileMetadata))
    assert summary.new == readable
    assert sum(summary.rejected.values()) == 2
    conn = psycopg2.connect(db.owner_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), count(DISTINCT instrument_name),"
                        " count(*) FILTER (WHERE data_rights = 'public'),"
                        " count(*) FILTER (WHERE obs_release_date > now()),"
                        " count(*) FILTER (WHERE s_region IS NOT NULL)"
                        " FROM ivoa.obscore")
            rows, instruments, public, proprietary, regions = cur.fetchone()  # type: ignore[misc]
    finally:
        conn.close()
    assert rows == readable
    assert instruments == 4
    assert public > 0 and proprietary > 0
    assert regions >= rows - 10

"""ObsCore and lick.files rows from real headers: values checked independently.

Footprints are compared with astropy.wcs on the template's own header, times with
astropy.time, and the s_region literal is handed to a real pgSphere to check that it
parses, contains the pointing and is the small polygon (not its complement).
"""

from __future__ import annotations

import math
import warnings
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg2
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS

from ingest.fits_writer import load_template, write_fits
from ingest.instruments import (
    InstrumentConfig,
    default_instrument_config_path,
    load_instrument_config,
)
from ingest.obscore_map import (
    DATALINK_FORMAT,
    FILES_GENERATED_COLUMNS,
    access_url,
    circle_polygon,
    files_row,
    obscore_row,
    publisher_did,
    tan_pixel_to_world,
)
from ingest.records import FileMetadata, read_file
from ingest.store import columns
from tap_schema.declaration import FILES, OBSCORE

TEMPLATES = Path(__file__).resolve().parents[2] / "ingest" / "templates" / "lick-headers"
AUTHORITY = "lick.test"
BASE_URL = "https://archive.example/lick"


def _vertices(spoly: str) -> list[tuple[float, float]]:
    pairs = spoly.strip("{}").split("),(")
    out = []
    for pair in pairs:
        ra, dec = pair.strip("()").split(",")
        out.append((float(ra.rstrip("d")), float(dec.rstrip("d"))))
    return out


@pytest.fixture(scope="module")
def config() -> InstrumentConfig:
    return load_instrument_config(default_instrument_config_path())


@pytest.fixture(scope="module")
def metas(tmp_path_factory: pytest.TempPathFactory,
          config: InstrumentConfig) -> dict[str, FileMetadata]:
    root = tmp_path_factory.mktemp("map")
    out = {}
    for name in ("2019-05_06_nickel_d109", "2018-11_20_AO_s0066", "2019-05_02_shane_r650",
                 "2012-01_25_nickel_d189-no-date", "2014-05_20_AO_s0010-001",
                 "2019-05_02_shane_b607", "2007-03_17_nickel_g953"):
        month, day, directory, rest = name.split("_", 3)
        path = root / month / day / directory / f"{rest}.fits"
        write_fits(path, load_template(f"{name}-hdu0.txt"))
        meta = read_file(path, root, config)
        assert isinstance(meta, FileMetadata)
        out[name] = meta
    return out


def _rows(meta: FileMetadata, **kw: object) -> tuple[dict[str, object], dict[str, object]]:
    args: dict[str, object] = {"authority": AUTHORITY, "base_url": BASE_URL,
                               "release_date": date(2021, 5, 7), "data_rights": "public",
                               "owner_ids": [3, 5]}
    args.update(kw)
    return obscore_row(meta, **args), files_row(meta, **args)  # type: ignore[arg-type]


def test_keys_are_the_declared_columns(metas: dict[str, FileMetadata]) -> None:
    for meta in metas.values():
        obscore, files = _rows(meta)
        assert list(obscore) == columns(OBSCORE)  # all but the generated s_region_bound
        assert set(files) == {c.name for c in FILES.columns} - FILES_GENERATED_COLUMNS
        for column in OBSCORE.columns:
            if not column.nullable and column.default is None:
                assert obscore[column.name] is not None, column.name


def test_identifiers(metas: dict[str, FileMetadata]) -> None:
    meta = metas["2019-05_02_shane_r650"]
    obscore, files = _rows(meta)
    did = "ivo://lick.test/lick?2019-05/02/shane/r650.fits"
    assert obscore["obs_publisher_did"] == did == files["obs_publisher_did"]
    assert publisher_did(AUTHORITY, "2019-05/02/shane/r650.fits") == did
    assert obscore["access_url"] == (
        "https://archive.example/lick/datalink/links?ID="
        "ivo%3A%2F%2Flick.test%2Flick%3F2019-05%2F02%2Fshane%2Fr650.fits")
    assert access_url(BASE_URL + "/", did) == obscore["access_url"]
    assert obscore["access_format"] == DATALINK_FORMAT
    assert obscore["obs_id"] == "2019-05-02/shane/r650.fits"
    assert obscore["access_estsize"] == math.ceil(meta.file_size / 1024)
    assert obscore["calib_level"] == 1
    assert obscore["o_ucd"] == "phot.count"
    assert obscore["pol_states"] is None
    assert obscore["obs_release_date"] == datetime(2021, 5, 7)
    assert obscore["owner_ids"] == [3, 5] == files["owner_ids"]


def test_imager_footprint_matches_astropy_wcs(metas: dict[str, FileMetadata]) -> None:
    for name in ("2019-05_06_nickel_d109", "2018-11_20_AO_s0066"):
        meta = metas[name]
        obscore, _ = _rows(meta)
        assert obscore["dataproduct_type"] == "image"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = fits.Header.fromfile(TEMPLATES / f"{name}-hdu0.txt", sep="\n",
                                          endcard=False, padding=False)
            wcs = WCS(header, naxis=2)
        n1, n2 = header["NAXIS1"], header["NAXIS2"]
        corners = wcs.all_pix2world([[0.5, 0.5], [n1 + 0.5, 0.5], [n1 + 0.5, n2 + 0.5],
                                     [0.5, n2 + 0.5]], 1)
        expected = SkyCoord(corners[:, 0] * u.deg, corners[:, 1] * u.deg)
        got = _vertices(str(obscore["s_region"]))
        assert len(got) == 4
        for ra, dec in got:
            assert min(SkyCoord(ra * u.deg, dec * u.deg).separation(expected).arcsec) < 0.01
        centre = wcs.all_pix2world([[(n1 + 1) / 2, (n2 + 1) / 2]], 1)[0]
        got_centre = SkyCoord(float(obscore["s_ra"]) * u.deg,  # type: ignore[arg-type]
                              float(obscore["s_dec"]) * u.deg)  # type: ignore[arg-type]
        assert got_centre.separation(SkyCoord(*centre, unit="deg")).arcsec < 0.01
        diagonal = SkyCoord(*corners[0], unit="deg").separation(SkyCoord(*corners[2], unit="deg"))
        assert float(obscore["s_fov"]) == pytest.approx(diagonal.deg, rel=0.02)  # type: ignore[arg-type]
        assert (obscore["s_xel1"], obscore["s_xel2"]) == (n1, n2)


def test_tan_matches_astropy_away_from_the_reference_pixel() -> None:
    wcs_keys = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 350.0, "CRVAL2": 80.0,
                "CRPIX1": 10.0, "CRPIX2": -20.0, "CD1_1": -0.01, "CD1_2": 0.002,
                "CD2_1": 0.003, "CD2_2": 0.01}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = WCS(dict(wcs_keys, NAXIS=2))
    for p1, p2 in ((1, 1), (500, 30), (-300, 700)):
        ra, dec = tan_pixel_to_world(wcs_keys, p1, p2)  # type: ignore[arg-type]
        expected = reference.all_pix2world([[p1, p2]], 1)[0]
        assert SkyCoord(ra, dec, unit="deg").separation(
            SkyCoord(*expected, unit="deg")).arcsec < 1e-3


def test_spectrograph_pointing_circle(metas: dict[str, FileMetadata]) -> None:
    meta = metas["2019-05_02_shane_r650"]
    obscore, _ = _rows(meta)
    assert obscore["dataproduct_type"] == "spectrum"
    assert (obscore["s_ra"], obscore["s_dec"]) == (meta.ra, meta.dec)
    pointing = SkyCoord(185.7337799072 * u.deg, 15.82609844208 * u.deg)
    radius = 145.0 / 2  # half the Kast slit length, arcsec
    vertices = _vertices(str(obscore["s_region"]))
    assert len(vertices) == 6  # a hexagon around the pointing circle
    for ra, dec in vertices:
        distance = SkyCoord(ra * u.deg, dec * u.deg).separation(pointing).arcsec
        assert radius <= distance <= radius / math.cos(math.pi / 6) + 1e-3
    assert float(obscore["s_fov"]) * 3600 == pytest.approx(  # type: ignore[arg-type]
        2 * radius / math.cos(math.pi / 6), rel=1e-4)
    # Raw 2-D spectrum: the slit along the short axis, dispersion along the long one.
    assert (obscore["s_xel1"], obscore["s_xel2"], obscore["em_xel"]) == (605, 1, 2725)
    # 600/7500 grating behind the d55 dichroic, 2" slit.
    assert obscore["em_min"] == pytest.approx(5.5e-7)
    assert obscore["em_max"] == pytest.approx(9.0e-7)
    assert obscore["em_res_power"] == pytest.approx(2000 / 2.0)
    assert obscore["facility_name"] == "Lick Shane 3m"
    assert obscore["instrument_name"] == "Kast Red"
    assert obscore["obs_collection"] == "Lick/Kast"
    assert obscore["target_name"] == "AT2019 ehk"


def test_times(metas: dict[str, FileMetadata]) -> None:
    meta = metas["2019-05_02_shane_r650"]
    obscore, files = _rows(meta)
    start = Time("2019-05-03T04:22:58.46", scale="utc").mjd
    assert abs(float(obscore["t_min"]) - start) * 86400 < 1  # type: ignore[arg-type]
    assert (float(obscore["t_max"]) - float(obscore["t_min"])) * 86400 == pytest.approx(  # type: ignore[arg-type]
        600, abs=1e-3)
    assert obscore["t_exptime"] == 600
    assert files["date_obs"] == datetime(2019, 5, 3, 4, 22, 58, 460000)
    # Date known only from the directory: the whole night, noon to noon PST.
    night = metas["2012-01_25_nickel_d189-no-date"]
    obscore, _ = _rows(night)
    assert float(obscore["t_min"]) == pytest.approx(Time("2012-01-25T20:00:00").mjd)  # type: ignore[arg-type]
    assert float(obscore["t_max"]) == pytest.approx(Time("2012-01-26T20:00:00").mjd)  # type: ignore[arg-type]


def test_filters_give_the_band(metas: dict[str, FileMetadata]) -> None:
    obscore, _ = _rows(metas["2018-11_20_AO_s0066"])  # BrG-2.16 + Open
    assert (obscore["em_min"], obscore["em_max"]) == (2.15e-6, 2.18e-6)
    obscore, _ = _rows(metas["2007-03_17_nickel_g953"])  # V
    assert (obscore["em_min"], obscore["em_max"]) == (5.03e-7, 5.88e-7)
    assert float(obscore["em_res_power"]) == pytest.approx(  # type: ignore[arg-type]
        (5.03e-7 + 5.88e-7) / 2 / (5.88e-7 - 5.03e-7))
    obscore, _ = _rows(metas["2019-05_02_shane_b607"])  # 600/4310 behind d55
    assert (obscore["em_min"], obscore["em_max"]) == (3.3e-7, 5.5e-7)


def test_no_position_no_region(metas: dict[str, FileMetadata]) -> None:
    obscore, files = _rows(metas["2014-05_20_AO_s0010-001"])
    assert obscore["s_ra"] is None and obscore["s_region"] is None and obscore["s_fov"] is None
    assert files["ingest_flags"] == ("date_from_path missing_coordinates missing_exptime "
                                     "missing_lamps missing_object")
    assert obscore["target_name"] is None


def test_files_row_values(metas: dict[str, FileMetadata]) -> None:
    meta = metas["2019-05_06_nickel_d109"]
    _, files = _rows(meta, release_date=None)
    assert files["path"] == "2019-05/06/nickel/d109.fits"
    assert files["night"] == date(2019, 5, 6)
    assert files["instrument"] == "Nickel Direct"
    assert files["frame_type"] == "bias"
    assert files["filter1"] == "B"
    assert files["release_date"] is None
    assert isinstance(files["file_mtime"], datetime) and files["file_mtime"].tzinfo is None
    assert files["header"] == meta.header


def test_circle_polygon_near_the_pole_and_ra_zero() -> None:
    for ra, dec in ((0.001, 10.0), (359.999, -30.0), (120.0, 89.99)):
        vertices = circle_polygon(ra, dec, 0.05)
        centre = SkyCoord(ra * u.deg, dec * u.deg)
        for v in vertices:
            distance = SkyCoord(v[0] * u.deg, v[1] * u.deg).separation(centre).deg
            assert 0.05 <= distance <= 0.05 / math.cos(math.pi / len(vertices)) + 1e-9
            assert 0 <= v[0] < 360


def test_regions_in_pgsphere(database, metas: dict[str, FileMetadata]) -> None:
    """pgSphere parses every s_region, and it is the small side containing the centre."""
    with psycopg2.connect(database.owner_dsn) as conn, conn.cursor() as cur:
        for meta in metas.values():
            obscore, _ = _rows(meta)
            if obscore["s_region"] is None:
                continue
            cur.execute(
                "SELECT spoly %s @> spoint(radians(%s), radians(%s)),"
                " spoly %s @> spoint(radians(%s + 180), radians(-%s)),"
                " degrees(degrees(area(spoly %s)))",
                (obscore["s_region"], obscore["s_ra"], obscore["s_dec"], obscore["s_region"],
                 obscore["s_ra"], obscore["s_dec"], obscore["s_region"]))
            inside, antipode, area = cur.fetchone()  # type: ignore[misc]
            assert inside and not antipode
            fov = float(obscore["s_fov"])  # type: ignore[arg-type]
            assert 0 < area <= fov * fov


def test_rows_insert_into_the_published_tables(database, metas: dict[str, FileMetadata]) -> None:
    """The rows go into the migrated ivoa.obscore and lick.files as they are."""
    meta = metas["2018-11_20_AO_s0066"]
    obscore, files = _rows(meta, authority="lick.mapping-test")
    with psycopg2.connect(database.owner_dsn) as conn, conn.cursor() as cur:
        for table, row in (("ivoa.obscore", obscore), ("lick.files", files)):
            columns = ", ".join(row)
            marks = ", ".join(["%s"] * len(row))
            cur.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                        list(row.values()))
        cur.execute("SELECT s_ra, t_min, instrument_name FROM ivoa.obscore"
                    " WHERE obs_publisher_did = %s", (obscore["obs_publisher_did"],))
        s_ra, t_min, instrument = cur.fetchone()  # type: ignore[misc]
        assert instrument == "ShARCS"
        assert s_ra == pytest.approx(obscore["s_ra"])
        assert t_min == pytest.approx(Time(datetime(2018, 11, 21, 7, 56, 19, 755000,
                                                    tzinfo=UTC)).mjd)
        conn.rollback()


def _winding(vertices: list[tuple[float, float]]) -> float:
    """Sum of (v_i x v_i+1) . centre: negative when counter-clockwise seen from inside."""
    def unit(ra: float, dec: float) -> tuple[float, float, float]:
        a, d = math.radians(ra), math.radians(dec)
        return (math.cos(d) * math.cos(a), math.cos(d) * math.sin(a), math.sin(d))

    vs = [unit(*v) for v in vertices]
    c = [sum(v[i] for v in vs) for i in range(3)]
    total = 0.0
    for a, b in zip(vs, vs[1:] + vs[:1], strict=True):
        cross = (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])
        total += sum(cross[i] * c[i] for i in range(3))
    return total


def test_polygons_wind_counter_clockwise_from_inside(metas: dict[str, FileMetadata]) -> None:
    """DALI polygons: counter-clockwise as seen from the centre of the sphere.

    From inside, with north up, east is to the left: a path north -> east -> south
    turns counter-clockwise, and the triple products sum to a negative number.
    """
    assert _winding([(10.0, 1.0), (11.0, 0.0), (10.0, -1.0), (9.0, 0.0)]) < 0
    for meta in metas.values():
        obscore, _ = _rows(meta)
        if obscore["s_region"] is not None:
            assert _winding(_vertices(str(obscore["s_region"]))) < 0, meta.path

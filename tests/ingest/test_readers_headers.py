"""Every real Lick header template through the readers, against values read by hand.

Each template becomes a FITS file at its archive path (zeros as data).  Expected
instrument, frame type, start time and exposure below were read off the header
cards by a person; positions are recomputed here from the RA/DEC or CRVAL cards with
astropy.coordinates, independently of the reader's own parsing and precession.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest
from astropy import units as u
from astropy.coordinates import FK5, SkyCoord
from astropy.io import fits
from astropy.time import Time

from ingest.fits_header import FitsHeader, parse_header_bytes
from ingest.fits_writer import header_bytes, load_template, template_names, write_fits
from ingest.instruments import (
    InstrumentConfig,
    default_instrument_config_path,
    load_instrument_config,
)
from ingest.records import FileMetadata, read_file

TEMPLATES = Path(__file__).resolve().parents[2] / "ingest" / "templates" / "lick-headers"

NONE: frozenset[str] = frozenset()
LAMPS = frozenset({"missing_lamps"})
AO_DATE_OBS_NO_POS = frozenset({"date_from_date_obs", "missing_coordinates"})

# name -> (instrument, frame type, start (UTC), exposure, position source, flags)
# position source: "radec" (RA/DEC cards), "wcs" (CRVAL1/2), None (no position)
EXPECTED: dict[str, tuple[str | None, str, str, float | None, str | None, frozenset[str]]] = {
    "2006-08_17_shane_b100": ("Kast Blue", "science", "2006-08-18T10:31:16", 2400, "radec", LAMPS),
    "2006-08_17_shane_r96": ("Kast Red", "arc", "2006-08-18T10:16:20", 1, "radec", LAMPS),
    "2006-09_20_nickel_spec122": ("Nickel Spectrograph", "flat", "2006-09-21T09:21:18.97", 25,
                                  "radec", NONE),
    "2006-12_06_nickel_lick320": ("Nickel Spectrograph", "science", "2006-12-06T21:00:04.02",
                                  1, "radec", frozenset({"missing_obstype"})),
    "2006-12_06_nickel_lick320-no-object": (
        "Nickel Spectrograph", "unknown", "2006-12-06T21:00:04.02", 1, "radec",
        frozenset({"missing_obstype", "missing_object"})),
    "2007-03_17_nickel_g953": ("Nickel Direct", "bias", "2007-03-18T07:37:05.66", 0, "radec",
                               NONE),
    "2007-03_17_nickel_g953-no-obstype": ("Nickel Direct", "unknown", "2007-03-18T07:37:05.66",
                                          0, "radec", frozenset({"missing_obstype"})),
    "2007-04_24_nickel_spec200": ("Nickel Spectrograph", "flat", "2007-04-25T03:08:54", 30,
                                  "radec", NONE),
    "2007-04_24_nickel_spec289-bad-version-bad-instr": (
        None, "science", "2007-04-25T11:56:56.05", 150, "radec",
        frozenset({"unknown_instrument"})),
    "2007-04_24_nickel_spec289-bad-version": (
        "Nickel Spectrograph", "science", "2007-04-25T11:56:56.05", 150, "radec",
        frozenset({"unknown_version"})),
    "2007-04_24_nickel_spec289-no-version-no-instr": (
        None, "science", "2007-04-25T11:56:56.05", 150, "radec",
        frozenset({"unknown_instrument"})),
    "2007-08_10_shane_r1014": ("Kast Red", "flat", "2007-08-11T00:59:09", 1, "radec", LAMPS),
    "2007-08_20_shane_r90": ("Kast Red", "flat", "2007-08-21T10:07:51", 5, "radec", LAMPS),
    "2008-09_16_shane_b7993": ("Kast Blue", "dark", "2008-09-16T19:29:46.94", 1, "radec",
                               frozenset({"nul_bytes", "bad_card"})),
    "2012-01_02_shane_b808": ("Kast Blue", "science", "2012-01-03T00:06:00.99", 15, "radec",
                              LAMPS),
    "2012-01_02_shane_r36": ("Kast Red", "flat", "2012-01-03T06:12:31.11", 1, "radec", LAMPS),
    "2012-01_18_shane_b1011": ("Kast Blue", "bias", "2012-01-19T00:58:14.73", 0, "radec", NONE),
    "2012-01_25_nickel_d189-no-coord": ("Nickel Direct", "science", "2012-01-26T07:07:32.63", 20,
                                        None, frozenset({"missing_coordinates"})),
    # No DATE-OBS/DATE/DATE-BEG (DATE-STA is local time): noon PST of the night.
    "2012-01_25_nickel_d189-no-date": ("Nickel Direct", "science", "2012-01-25T20:00:00", 20,
                                       "radec", frozenset({"date_from_path"})),
    "2014-04_16_AO_m140417-1202-modified-2": ("ShARCS", "flat", "2014-04-16T21:35:13.973",
                                              14.5479, None, AO_DATE_OBS_NO_POS),
    "2014-04_16_AO_m140417-1202-modified": ("ShARCS", "arc", "2014-04-16T21:35:13.973",
                                            14.5479, None, AO_DATE_OBS_NO_POS),
    "2014-04_16_AO_m140417-1203-1": ("ShARCS", "arc", "2014-04-16T22:32:10.004", 14.5479, None,
                                     AO_DATE_OBS_NO_POS),
    "2014-04_16_AO_m140417-1203-1-modified": ("ShARCS", "flat", "2014-04-16T22:32:10.004",
                                              14.5479, None, AO_DATE_OBS_NO_POS),
    "2014-05_19_AO_m140520-0441-modified": ("ShARCS", "flat", "2014-05-19T23:58:12.296",
                                            8.72874, "radec",
                                            frozenset({"date_from_date_obs"})),
    "2014-05_20_AO_s0002": ("ShARCS", "flat", "2014-05-20T22:49:25.515", 0.9797, "radec",
                            frozenset({"date_from_date_obs"})),
    "2014-05_20_AO_s0010-001": ("ShARCS", "unknown", "2014-05-20T20:00:00", None, None,
                                frozenset({"date_from_path", "missing_coordinates",
                                           "missing_exptime", "missing_lamps",
                                           "missing_object"})),
    "2014-05_20_AO_s0011-1": ("ShARCS", "unknown", "2014-05-20T23:15:39.078", 2 * 0.09797, None,
                              frozenset({"date_from_date_obs", "missing_coordinates",
                                         "missing_lamps", "missing_object"})),
    # DATE-BEG is garbage (year 584556019): DATE-OBS/TIME-OBS fall in the night.
    "2014-07_16_AO_s0196": ("ShARCS", "unknown", "2014-07-16T21:55:15.624", 0.15367, None,
                            frozenset({"bad_date", "date_from_date_obs", "missing_coordinates",
                                       "missing_lamps", "missing_object"})),
    "2014-07_16_AO_s0196-modified": ("ShARCS", "unknown", "2014-07-16T20:00:00", 0.15367, None,
                                     frozenset({"bad_date", "date_from_path",
                                                "missing_coordinates", "missing_lamps",
                                                "missing_object"})),
    "2018-06_24_nickel_d38034-no-date": ("Nickel Direct", "flat", "2018-06-25T02:37:11.13", 3,
                                         "wcs", NONE),
    "2018-11_16_shane_r1011": ("Kast Red", "arc", "2018-11-17T03:15:20.54", 10, "wcs", NONE),
    # ShARCS DATE-OBS says 2007: DATE-BEG is the start.
    "2018-11_20_AO_s0066": ("ShARCS", "science", "2018-11-21T07:56:19.755", 2.90958, "wcs",
                            NONE),
    "2019-01_22_AO_s0000": ("ShARCS", "dark", "2019-01-22T22:19:34.384", 1.45479, "wcs", NONE),
    "2019-04_16_AO_s0545": ("ShARCS", "dark", "2019-04-17T12:47:54.307", 2.90958, "wcs", NONE),
    "2019-05_02_shane_b607": ("Kast Blue", "flat", "2019-05-03T01:03:06.50", 50, "wcs", NONE),
    "2019-05_02_shane_r650": ("Kast Red", "science", "2019-05-03T04:22:58.46", 600, "wcs", NONE),
    "2019-05_02_shane_r684": ("Kast Red", "arc", "2019-05-03T09:28:29.74", 1, "wcs", NONE),
    # Only DATE (readout, 00:19:33.05) and EXPTIME = 20 s.
    "2019-05_04_shane_b2": ("Kast Blue", "unknown", "2019-05-05T00:19:13.05", 20, None,
                            frozenset({"date_from_readout", "missing_coordinates",
                                       "missing_lamps", "missing_object"})),
    "2019-05_06_nickel_d109": ("Nickel Direct", "bias", "2019-05-07T04:14:46.33", 0, "wcs",
                               NONE),
    "2019-05_24_nickel_d116": ("Nickel Direct", "focus", "2019-05-25T07:28:38.48", 80.13, "wcs",
                               NONE),
    # "dark" in OBJECT, but FILT2NAM is present and not Blank25: science.
    "2019-11_09_AO_s1303": ("ShARCS", "science", "2019-11-10T13:39:38.499", 2.90958, "wcs",
                            NONE),
    "2019-11_09_AO_s1303-modified": ("ShARCS", "dark", "2019-11-10T13:39:38.499", 2.90958,
                                     "wcs", NONE),
}


def _archive_path(name: str) -> Path:
    month, day, directory, rest = name.split("_", 3)
    return Path(month) / day / directory / (rest + ".fits")


def _astropy_header(name: str) -> fits.Header:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fits.Header.fromfile(TEMPLATES / f"{name}-hdu0.txt", sep="\n", endcard=False,
                                    padding=False)


def _expected_position(name: str, source: str | None) -> SkyCoord | None:
    header = _astropy_header(name)
    if source is None:
        return None
    equinox = header.get("EQUINOX")
    frame = FK5(equinox=Time(float(equinox) if equinox else 2000.0, format="jyear"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. the 60.0 seconds of r1014
        if source == "radec":
            coord = SkyCoord(header["RA"].strip(), header["DEC"].strip(),
                             unit=(u.hourangle, u.deg), frame=frame)
        else:
            coord = SkyCoord(header["CRVAL1"] * u.deg, header["CRVAL2"] * u.deg, frame=frame)
    return coord.icrs


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("archive")
    for template in template_names():
        name = template.removesuffix("-hdu0.txt")
        write_fits(root / _archive_path(name), load_template(template))
    return root


@pytest.fixture(scope="module")
def config() -> InstrumentConfig:
    return load_instrument_config(default_instrument_config_path())


def test_every_template_has_expectations() -> None:
    names = {t.removesuffix("-hdu0.txt") for t in template_names()}
    assert names == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reader(name: str, archive: Path, config: InstrumentConfig) -> None:
    instrument, frame_type, start, exptime, source, flags = EXPECTED[name]
    meta = read_file(archive / _archive_path(name), archive, config)
    assert isinstance(meta, FileMetadata), meta
    assert meta.instrument == instrument
    assert meta.frame_type == frame_type
    assert set(meta.flags) == set(flags)
    expected_start = datetime.fromisoformat(start).replace(tzinfo=UTC)
    assert meta.date_obs is not None
    assert abs((meta.date_obs - expected_start).total_seconds()) < 1.0
    if exptime is None:
        assert meta.exptime is None
    else:
        assert meta.exptime == pytest.approx(exptime)
    expected = _expected_position(name, source)
    if expected is None:
        assert meta.ra is None and meta.dec is None
    else:
        assert meta.ra is not None and meta.dec is not None
        got = SkyCoord(meta.ra * u.deg, meta.dec * u.deg, frame="icrs")
        assert got.separation(expected).arcsec < 1.0
    assert meta.night.isoformat() == "-".join(name.split("_")[:2])
    assert meta.telescope in ("Shane", "Nickel")


@pytest.mark.parametrize("template", template_names())
def test_card_values_match_astropy(template: str) -> None:
    """The fast card parser agrees with astropy on every card astropy can parse."""
    cards = load_template(template)
    header = parse_header_bytes(header_bytes(cards))
    assert isinstance(header, FitsHeader)
    reference = _astropy_header(template.removesuffix("-hdu0.txt"))
    compared = 0
    for card in reference.cards:
        keyword = card.keyword
        if keyword in ("", "COMMENT", "HISTORY") or not keyword.isupper() or "\0" in card.image:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                value = reference[keyword]
            except Exception:
                continue
        mine = header.get(keyword)
        if isinstance(value, str):
            assert isinstance(mine, str)
            assert mine.rstrip() == value.rstrip(), keyword
        elif isinstance(value, float):
            assert mine == pytest.approx(value), keyword
        else:
            assert mine == value, keyword
        compared += 1
    assert compared > 0


def test_kast_details(archive: Path, config: InstrumentConfig) -> None:
    meta = read_file(archive / _archive_path("2019-05_02_shane_r650"), archive, config)
    assert isinstance(meta, FileMetadata)
    assert (meta.slit, meta.grating, meta.grism, meta.beam_splitter) == (
        "2.0 arcsec", "600/7500", None, "d55")
    assert meta.grating_tilt == 10800
    assert meta.object == "AT2019 ehk"
    assert meta.observer == "Jiani Ding, Minghao Yue"
    assert meta.airmass == pytest.approx(1.139999985695)
    assert meta.shape == (605, 2725)
    blue = read_file(archive / _archive_path("2006-08_17_shane_b100"), archive, config)
    assert isinstance(blue, FileMetadata)
    assert (blue.grism, blue.grating, blue.slit) == ("600/4310", None, "2 arcsec")


def test_sharcs_filters(archive: Path, config: InstrumentConfig) -> None:
    meta = read_file(archive / _archive_path("2019-01_22_AO_s0000"), archive, config)
    assert isinstance(meta, FileMetadata)
    assert (meta.filter1, meta.filter2, meta.science_filter) == ("BrG-2.16", "Blank25", None)
    assert meta.program == "transit planet follow up"
    # A dark behind the blank filter has no spectral coverage.
    assert meta.em_min is None and meta.em_max is None


def test_nickel_filter_and_header_text(archive: Path, config: InstrumentConfig) -> None:
    meta = read_file(archive / _archive_path("2019-05_06_nickel_d109"), archive, config)
    assert isinstance(meta, FileMetadata)
    assert meta.filter1 == "B"
    lines = meta.header.split("\n")
    assert all(len(line) == 80 for line in lines)
    assert lines[0].startswith("SIMPLE  =")
    assert len(lines) == len(load_template("2019-05_06_nickel_d109-hdu0.txt"))
    assert "\0" not in meta.header


def test_date_precession_of_nickel_2012(archive: Path, config: InstrumentConfig) -> None:
    """d189's RA/DEC are for equinox 2012.07: without precession they'd be ~10' off."""
    meta = read_file(archive / _archive_path("2012-01_25_nickel_d189-no-date"), archive, config)
    assert isinstance(meta, FileMetadata)
    raw = SkyCoord("08:51:48.1", "11:49:36.0", unit=(u.hourangle, u.deg), frame="icrs")
    got = SkyCoord(meta.ra * u.deg, meta.dec * u.deg, frame="icrs")
    assert got.separation(raw).arcmin > 5

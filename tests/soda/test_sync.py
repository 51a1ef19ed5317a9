"""SODA sync against a running server over the demo archive: real Nickel and ShARCS
frames cut out and read back with astropy; every form of region, BAND, several
cutouts at once, refusals as SODA error documents, access, and the VOSI resources."""

from __future__ import annotations

import math
import re

import httpx
import numpy as np
import pytest
from astropy.io import fits

from tests.conftest import run_cli
from tests.soda.frames import pixel_of, sky_of, wcs_of
from tests.soda.helpers import (
    PRIVATE,
    frames,
    original_pixels,
    read_fits,
    soda,
    soda_error,
)
from tests.xsd import validate

STAFF = ("soda-staff@lick.example", "soda-staff-password")
#: Cards a cutout changes; every other card of the primary header is kept as it was.
CHANGED = re.compile(r"NAXIS[12]|CRPIX[12][A-Z]?|HISTORY|COMMENT|CHECKSUM|DATASUM|")


@pytest.fixture(scope="module")
def staff(server):
    run_cli(server.database, "users", "add", STAFF[0], "--password", STAFF[1], "--staff")
    return STAFF


def _scale(hdr: fits.Header) -> float:
    """Degrees per pixel of a frame."""
    matrix = wcs_of(hdr).celestial.pixel_scale_matrix
    return math.sqrt(abs(np.linalg.det(matrix)))


def _target(path, fx: float = 0.4, fy: float = 0.55) -> tuple[float, float, fits.Header]:
    original = fits.getheader(path)
    ra, dec = sky_of(wcs_of(original), fx * original["NAXIS1"], fy * original["NAXIS2"])
    return ra, dec, original


def _check_cutout(hdu, original_path, ra: float, dec: float) -> tuple[int, int, int, int]:
    """Pixels, header and WCS of a cutout against its original file on disk."""
    original = fits.getheader(original_path)
    x0, x1, y0, y1 = original_pixels(hdu.header)
    assert hdu.data.shape == (y1 - y0 + 1, x1 - x0 + 1)
    assert np.array_equal(hdu.data, fits.getdata(original_path)[y0:y1 + 1, x0:x1 + 1])
    extension = not isinstance(hdu, fits.PrimaryHDU)
    for key in original:
        if not CHANGED.fullmatch(key) and not (extension and key in ("SIMPLE", "EXTEND")):
            assert hdu.header[key] == original[key], key
    history = "\n".join(str(h) for h in hdu.header["HISTORY"])
    assert "Cutout made by the" in history
    # the same sky position is at the same place of the original, in pixels
    for dx, dy in ((0, 0), (2.5, -1.5)):
        x, y = pixel_of(wcs_of(original), ra, dec)
        sky = sky_of(wcs_of(original), x + dx, y + dy)
        before = pixel_of(wcs_of(original), *sky)
        after = pixel_of(wcs_of(hdu.header), *sky)
        assert abs(after[0] + x0 - before[0]) < 0.1 and abs(after[1] + y0 - before[1]) < 0.1
    return x0, x1, y0, y1


@pytest.mark.parametrize("kind", ["nickel", "sharcs"])
def test_circle_cutout_of_a_real_frame(server, archive, kind):
    frame = frames(server.database, archive.root, kind)[0]
    ra, dec, original = _target(frame.path)
    radius_px = 9
    radius = radius_px * _scale(original)
    reply = soda(server, ("ID", frame.did), ("CIRCLE", f"{ra} {dec} {radius}"))
    assert reply.status_code == 200, reply.text[:500]
    assert reply.headers["content-type"] == "application/fits"
    stem = frame.path.stem
    assert reply.headers["content-disposition"] == f'attachment; filename="{stem}_cutout.fits"'
    with read_fits(reply.content) as hdus:
        assert len(hdus) == 1
        x0, x1, y0, y1 = _check_cutout(hdus[0], frame.path, ra, dec)
        assert 2 * radius_px <= x1 - x0 + 1 <= 2 * radius_px + 2
        assert 2 * radius_px <= y1 - y0 + 1 <= 2 * radius_px + 2
        keyword = {"nickel": "INSTRUME", "sharcs": "FILT1NAM"}[kind]  # instrument keywords
        assert hdus[0].header[keyword] == original[keyword]
        assert frame.did in "".join(str(h) for h in hdus[0].header["HISTORY"])
        # the circle is inside the cutout: its centre a radius from every edge
        x, y = pixel_of(wcs_of(hdus[0].header), ra, dec)
        columns, rows = x1 - x0 + 1, y1 - y0 + 1
        assert radius_px - 1 < x + 0.5 and x + 0.5 < columns - radius_px + 1
        assert radius_px - 1 < y + 0.5 and y + 0.5 < rows - radius_px + 1


def test_every_form_of_region(server, archive):
    frame = frames(server.database, archive.root, "nickel")[0]
    ra, dec, original = _target(frame.path)
    d = 6 * _scale(original)
    by_circle = soda(server, ("ID", frame.did), ("CIRCLE", f"{ra} {dec} {d}"))
    by_pos = soda(server, ("ID", frame.did), ("POS", f"CIRCLE {ra} {dec} {d}"))
    assert by_circle.status_code == by_pos.status_code == 200
    assert read_fits(by_circle.content)[0].data.shape == read_fits(by_pos.content)[0].data.shape
    polygon = f"{ra - d} {dec - d} {ra + d} {dec - d} {ra + d} {dec + d} {ra - d} {dec + d}"
    dra = d / math.cos(math.radians(dec))
    for name, value in (("POLYGON", polygon), ("POS", f"POLYGON {polygon}"),
                        ("POS", f"RANGE {ra - dra} {ra + dra} {dec - d} {dec + d}"),
                        ("pos", f"range {ra - dra} {ra + dra} {dec - d} +Inf")):
        reply = soda(server, ("ID", frame.did), (name, value))
        assert reply.status_code == 200, (name, value, reply.text[:300])
        with read_fits(reply.content) as hdus:
            _check_cutout(hdus[0], frame.path, ra, dec)


def test_post_and_get_agree_and_no_region_is_the_whole_frame(server, archive):
    frame = frames(server.database, archive.root, "sharcs")[0]
    ra, dec, original = _target(frame.path)
    circle = ("CIRCLE", f"{ra} {dec} {5 * _scale(original)}")
    got = soda(server, ("ID", frame.did), circle)
    posted = soda(server, ("ID", frame.did), circle, post=True)
    assert got.status_code == posted.status_code == 200
    assert np.array_equal(read_fits(got.content)[0].data, read_fits(posted.content)[0].data)
    whole = soda(server, ("id", frame.did))
    assert whole.status_code == 200
    with read_fits(whole.content) as hdus:
        assert np.array_equal(hdus[0].data, fits.getdata(frame.path))
        assert original_pixels(hdus[0].header) == (0, original["NAXIS1"] - 1, 0,
                                                   original["NAXIS2"] - 1)


def test_no_overlap_is_204_no_content(server, archive):
    """SODA 1.0 sect. 5.1: no pixel in the region -> 204 and no body."""
    frame = frames(server.database, archive.root, "nickel")[0]
    ra, dec, _ = _target(frame.path)
    far = soda(server, ("ID", frame.did), ("CIRCLE", f"{(ra + 180) % 360} {-dec} 1"))
    assert far.status_code == 204 and far.content == b""
    near = soda(server, ("ID", frame.did), ("CIRCLE", f"{ra} {dec + 1.5} 1"))
    assert near.status_code == 204


def test_band_is_a_filter_on_single_band_images(server, archive):
    frame = frames(server.database, archive.root, "sharcs")[0]
    assert frame.em_min is not None and frame.em_max is not None
    ra, dec, original = _target(frame.path)
    circle = ("CIRCLE", f"{ra} {dec} {4 * _scale(original)}")
    inside = soda(server, ("ID", frame.did), circle, ("BAND", f"{frame.em_min} 3e-6"))
    assert inside.status_code == 200
    plain = soda(server, ("ID", frame.did), circle)
    assert np.array_equal(read_fits(inside.content)[0].data, read_fits(plain.content)[0].data)
    assert "no spectral cut" in str(read_fits(inside.content)[0].header["HISTORY"])
    for band in ("-Inf 5e-7", f"{frame.em_max * 1.01} +Inf", "1e-9 2e-9"):
        outside = soda(server, ("ID", frame.did), circle, ("BAND", band))
        assert outside.status_code == 204, (band, outside.text[:300])
    assert soda(server, ("ID", frame.did), circle, ("BAND", "-Inf +Inf")).status_code == 200


def test_several_cutouts_make_one_file_of_extensions(server, archive):
    nickel = frames(server.database, archive.root, "nickel")[0]
    sharcs = frames(server.database, archive.root, "sharcs")[0]
    ra, dec, original = _target(nickel.path)
    ra2, dec2, original2 = _target(sharcs.path, 0.7, 0.3)
    r1, r2 = 5 * _scale(original), 5 * _scale(original2)
    reply = soda(server, ("ID", nickel.did), ("ID", sharcs.did),
                 ("CIRCLE", f"{ra} {dec} {r1}"), ("CIRCLE", f"{ra2} {dec2} {r2}"),
                 ("POS", f"CIRCLE {ra} {dec} {r1}"))  # the same region twice counts once
    assert reply.status_code == 200, reply.text[:300]
    assert reply.headers["content-disposition"].endswith('filename="lick_cutouts.fits"')
    with read_fits(reply.content) as hdus:
        # nickel x circle 1, sharcs x circle 2; the others have no pixel
        assert len(hdus) == 3 and hdus[0].data is None
        assert hdus[0].header["NCUTOUT"] == 2
        history = "\n".join(str(h) for h in hdus[0].header["HISTORY"])
        assert history.count("no pixels:") == 2
        assert [h.header["EXTNAME"] for h in hdus[1:]] == ["CUTOUT", "CUTOUT"]
        assert [h.header["EXTVER"] for h in hdus[1:]] == [1, 2]
        _check_cutout(hdus[1], nickel.path, ra, dec)
        _check_cutout(hdus[2], sharcs.path, ra2, dec2)
        assert hdus[1].header["INSTRUME"] == fits.getheader(nickel.path)["INSTRUME"]
        assert hdus[2].header["FILT1NAM"] == fits.getheader(sharcs.path)["FILT1NAM"]
    two = soda(server, ("ID", nickel.did), ("CIRCLE", f"{ra} {dec} {r1}"),
               ("CIRCLE", f"{ra} {dec} {2 * r1}"))
    assert two.headers["content-disposition"].endswith(f'"{nickel.path.stem}_cutouts.fits"')
    assert [h.data.shape[0] > 0 for h in read_fits(two.content)[1:]] == [True, True]


@pytest.mark.parametrize(("pairs", "words"), [
    ([], "missing required parameter ID"),
    ([("CIRCLE", "1 2")], "three numbers"),
    ([("CIRCLE", "10 20 -1")], "radius"),
    ([("CIRCLE", "400 20 1")], "longitude"),
    ([("CIRCLE", "NaN 20 1")], "not a finite number"),
    ([("POLYGON", "1 2 3 4")], "at least three vertices"),
    ([("POS", "BOX 1 2 3 4")], "give CIRCLE lon lat radius"),
    ([("POS", "RANGE 1 2 3")], "four numbers"),
    ([("BAND", "6e-7 5e-7")], "above the upper bound"),
    ([("BAND", "green")], "not a finite number"),
    ([("TIME", "55000 56000")], "TIME is not supported"),
    ([("POL", "I")], "POL is not supported"),
    ([("RESPONSEFORMAT", "votable")], "RESPONSEFORMAT must be application/fits"),
])
def test_bad_values_are_usage_errors(server, archive, pairs, words):
    frame = frames(server.database, archive.root, "nickel")[0]
    ids = [] if words.startswith("missing") else [("ID", frame.did)]
    text = soda_error(soda(server, *ids, *pairs), 400)
    assert words in text


def test_repeated_single_valued_parameter_and_too_many_cutouts(server, archive):
    frame = frames(server.database, archive.root, "nickel")[0]
    reply = soda(server, ("ID", frame.did), ("RESPONSEFORMAT", "application/fits"),
                 ("RESPONSEFORMAT", "image/fits"))
    soda_error(reply, 400, "MultiValuedParamNotSupported")
    same = soda(server, ("ID", frame.did), ("RESPONSEFORMAT", "application/fits"),
                ("RESPONSEFORMAT", "application/fits"), ("CIRCLE", "0 0 1"))
    assert same.status_code == 204
    many = [("CIRCLE", f"{i} 0 1") for i in range(17)]
    assert "at most 16" in soda_error(soda(server, ("ID", frame.did), *many), 400)


def test_spectra_and_frames_without_wcs_are_refused(server, archive):
    kast = frames(server.database, archive.root, "kast")[0]
    assert "not an image" in soda_error(soda(server, ("ID", kast.did),
                                             ("CIRCLE", "10 10 1")), 400)
    old = frames(server.database, archive.root, "nickel_old")[0]
    text = soda_error(soda(server, ("ID", old.did), ("CIRCLE", "10 10 1")), 400)
    assert "no celestial WCS" in text


def test_damaged_file_is_refused_by_name(server, archive, staff):
    (did,) = [f.did for f in frames(server.database, archive.root, "any",
                                    "f.path = '2026-04/10/AO/s0002.fits'")]
    text = soda_error(soda(server, ("ID", did), ("CIRCLE", "10 10 1"), auth=staff), 400)
    assert "truncated" in text and did in text
    assert str(archive.root) not in text


def test_unknown_and_hidden_ids_get_the_same_answer(server, archive):
    hidden = frames(server.database, archive.root, "sharcs", PRIVATE)[0]
    unknown = hidden.did + "-no-such-file"
    owner = next(o for o in archive.schedule["observers"] if o["obid"] == hidden.owner)
    others = [o for o in archive.schedule["observers"] if o["obid"] != hidden.owner]
    other = (others[0]["email"], others[0]["password"])
    circle = ("CIRCLE", "10 10 1")
    for auth, status, label in ((None, 401, "AuthenticationError"), (other, 404, "UsageError")):
        seen = soda(server, ("ID", hidden.did), circle, auth=auth)
        absent = soda(server, ("ID", unknown), circle, auth=auth)
        soda_error(seen, status, label)
        soda_error(absent, status, label)
        assert seen.text.replace(hidden.did, "X") == absent.text.replace(unknown, "X")
        if status == 401:
            assert seen.headers["www-authenticate"] == absent.headers["www-authenticate"]
            assert "Basic" in seen.headers["www-authenticate"]
        # next to a visible ID, the hidden one still ends the request the same way
        public = frames(server.database, archive.root, "nickel")[0].did
        both = soda(server, ("ID", public), ("ID", hidden.did), circle, auth=auth)
        assert both.status_code == status and both.text == seen.text
    ra, dec, original = _target(hidden.path)
    mine = soda(server, ("ID", hidden.did), ("CIRCLE", f"{ra} {dec} {4 * _scale(original)}"),
                auth=(owner["email"], owner["password"]))
    assert mine.status_code == 200
    assert mine.headers["cache-control"] == "private"
    assert read_fits(mine.content)[0].data.size > 0


def test_capabilities_and_availability(server):
    reply = httpx.get(f"{server.base_url}/soda/capabilities")
    assert reply.status_code == 200 and "www-authenticate" in reply.headers
    root = validate(reply.content)
    capabilities = {c.get("standardID"): c for c in root.iter("capability")}
    assert set(capabilities) == {"ivo://ivoa.net/std/SODA#sync-1.0",
                                 "ivo://ivoa.net/std/VOSI#capabilities",
                                 "ivo://ivoa.net/std/VOSI#availability"}
    sync = capabilities["ivo://ivoa.net/std/SODA#sync-1.0"]
    urls = {i.findtext("accessURL") for i in sync.iter("interface")}
    assert urls == {f"{server.base_url}/soda/sync"}
    tap = validate(httpx.get(f"{server.tap_url}/capabilities").content)

    def methods(capability) -> list[str | None]:
        return sorted((m.get("standardID") if (m := i.find("securityMethod")) is not None
                       else "") for i in capability.iter("interface"))

    tap_methods = methods(next(c for c in tap.iter("capability")
                               if c.get("standardID") == "ivo://ivoa.net/std/TAP"))
    assert methods(sync) == tap_methods
    available = validate(httpx.get(f"{server.base_url}/soda/availability").content)
    assert available.findtext("{http://www.ivoa.net/xml/VOSIAvailability/v1.0}available") \
        == "true"

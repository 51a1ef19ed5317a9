"""Cutting frames written from real Lick headers: boxes, pixels, headers, refusals.

No server here: the pixel box of each region is compared with a brute-force one
(every pixel centre tested on the sky), the cutout's pixels with the original's,
and its WCS descriptions with the original's at many positions.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

from tests.soda.frames import frame, header, pixel_of, sky_of, wcs_of
from vo_service.errors import UsageFault
from vo_service.services.cutout import Box, Image, box_of, cut, write
from vo_service.services.regions import Region, region_of

pytestmark = pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyWarning")


def _brute(image: Image, region: Region) -> Box | None:
    rows, columns = image.shape
    yy, xx = np.mgrid[0:rows, 0:columns]
    lon, lat = image.to_icrs(xx.ravel().astype(float), yy.ravel().astype(float))
    inside = region.contains(lon, lat)
    if not inside.any():
        return None
    x, y = xx.ravel()[inside], yy.ravel()[inside]
    return Box(int(x.min()), int(x.max()), int(y.min()), int(y.max()))


def _check_box(image: Image, region: Region) -> Box | None:
    """box_of holds every pixel whose centre is inside, and at most one more
    pixel on each side (a pixel the region touches without its centre)."""
    box, brute = box_of(image, region), _brute(image, region)
    if brute is None:
        assert box is None or box.pixels <= 4 * max(image.shape), (box, region)
        return box
    assert box is not None, region
    assert box.x0 <= brute.x0 and box.x1 >= brute.x1, (box, brute)
    assert box.y0 <= brute.y0 and box.y1 >= brute.y1, (box, brute)
    assert brute.x0 - box.x0 <= 1 and box.x1 - brute.x1 <= 1, (box, brute)
    assert brute.y0 - box.y0 <= 1 and box.y1 - brute.y1 <= 1, (box, brute)
    return box


FRAMES: dict[str, dict[str, Any]] = {
    "nickel": dict(kind="nickel"),
    "nickel_rotated": dict(kind="nickel", rotation_deg=33.0, scale_arcsec=2.0),
    "sharcs": dict(kind="sharcs", shape=(120, 128)),
    "near_ra_zero": dict(kind="nickel", ra=0.01, dec=-3.0, scale_arcsec=3.0),
    "at_the_pole": dict(kind="sharcs", ra=45.0, dec=89.995, shape=(100, 100),
                        scale_arcsec=1.0),
}


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_boxes_match_brute_force(tmp_path: Path, name: str) -> None:
    path = frame(tmp_path / f"{name}.fits", **FRAMES[name])
    with Image(path, name) as image:
        rows, columns = image.shape
        ra, dec = image.to_icrs(np.array([columns * 0.3]), np.array([rows * 0.6]))
        ra0, dec0 = float(ra[0]), float(dec[0])
        radius = 6 * math.degrees(image.step)  # about 12 pixels across
        d = radius * 1.5
        d_lon = min(170.0, d / math.cos(math.radians(dec0)))  # as wide as high
        regions = [
            region_of("CIRCLE", f"{ra0} {dec0} {radius}"),
            region_of("CIRCLE", f"{ra0} {dec0} {radius / 50}"),  # smaller than a pixel
            region_of("CIRCLE", f"{ra0} {dec0} 1"),  # bigger than the frame
            region_of("POS", f"RANGE {(ra0 - d_lon) % 360} {(ra0 + d_lon) % 360} {dec0 - d} "
                      f"{min(90.0, dec0 + d)}"),
            region_of("POS", f"RANGE -Inf +Inf {dec0} +Inf"),  # half the frame, a parallel edge
            region_of("POLYGON", f"{(ra0 - d_lon) % 360} {dec0 - d} "
                      f"{(ra0 + d_lon) % 360} {dec0 - d} {ra0} {min(89.999, dec0 + d)}"),
        ]
        for region in regions:
            _check_box(image, region)
        far = region_of("CIRCLE", f"{(ra0 + 180) % 360} {-dec0} 1")
        assert box_of(image, far) is None
        assert box_of(image, None) == Box(0, columns - 1, 0, rows - 1)


def test_cutout_pixels_header_and_every_wcs(tmp_path: Path) -> None:
    path = frame(tmp_path / "d116.fits", "nickel", rotation_deg=10.0)
    original = fits.getheader(path)
    with Image(path, "ivo://x/lick?d116") as image:
        ra, dec = sky_of(image.wcs, 40.2, 30.7)
        box = box_of(image, region_of("CIRCLE", f"{ra} {dec} {8 * math.degrees(image.step)}"))
        assert box is not None
        content = write([cut(image, box, ["a cutout", "of something"], primary=True)],
                        checksum=False)
    with fits.open(io.BytesIO(content)) as hdus:
        hdu = hdus[0]
        rows, columns = box.y1 - box.y0 + 1, box.x1 - box.x0 + 1
        assert hdu.data.shape == (rows, columns) and hdu.data.dtype == np.uint16
        yy, xx = np.mgrid[box.y0:box.y1 + 1, box.x0:box.x1 + 1]
        assert np.array_equal(hdu.data, 512 * yy + xx)
        cut_header = hdu.header
    changed = {"NAXIS1", "NAXIS2", "CRPIX1", "CRPIX2", "CRPIX1S", "CRPIX2S", "CRPIX1C",
               "CRPIX2C", "HISTORY", "COMMENT", ""}
    for key in original:
        if key not in changed:
            assert cut_header[key] == original[key], key
    assert cut_header["INSTRUME"] == original["INSTRUME"]
    assert list(cut_header["HISTORY"])[-2:] == ["a cutout", "of something"]
    # the 'U' description had no CRPIX (default 0): it gets one, moved likewise
    assert cut_header["CRPIX1U"] == -box.x0 and cut_header["CRPIX2U"] == -box.y0
    for key in (" ", "S", "C", "U"):
        before, after = wcs_of(original, key), wcs_of(cut_header, key)
        for x, y in ((0, 0), (columns - 1, rows - 1), (3.3, 7.9)):
            a = before.pixel_to_world_values(x + box.x0, y + box.y0)
            b = after.pixel_to_world_values(x, y)
            assert np.allclose(a, b, rtol=0, atol=1e-9), (key, a, b)
    # at a sky position, in pixels: the same place to far better than 0.1 pixel
    x0, y0 = pixel_of(wcs_of(original), ra, dec)
    x1, y1 = pixel_of(wcs_of(cut_header), ra, dec)
    assert abs(x1 + box.x0 - x0) < 1e-6 and abs(y1 + box.y0 - y0) < 1e-6


def test_extensions_keep_the_header_and_checksums_are_fresh(tmp_path: Path) -> None:
    path = frame(tmp_path / "s1303.fits", "sharcs", shape=(64, 64))
    with fits.open(path, mode="update") as hdus:
        hdus[0].add_checksum()
    with Image(path, "s") as image:
        first, second = Box(0, 9, 0, 4), Box(10, 19, 30, 39)
        content = write([fits.PrimaryHDU(), cut(image, first, [], primary=False),
                         cut(image, second, [], primary=False)], checksum=True)
    with fits.open(io.BytesIO(content), checksum=True) as hdus:
        assert [h.data.shape if h.data is not None else None for h in hdus] == \
            [None, (5, 10), (10, 10)]
        assert hdus[2].header["FILT1NAM"] == header("sharcs")["FILT1NAM"]
        assert "SIMPLE" not in hdus[1].header and "EXTEND" not in hdus[1].header
        assert float(hdus[2].data[0, 0]) == 512 * 30 + 10
        for hdu in hdus[1:]:
            assert hdu.verify_checksum() == 1 and hdu.verify_datasum() == 1


def _refused(path: Path, words: str) -> str:
    with pytest.raises(UsageFault) as caught:
        Image(path, "ivo://x/lick?f").close()
    message = caught.value.message
    assert words in message, message
    assert str(path.parent) not in message
    return message


def test_frames_without_celestial_wcs_are_refused(tmp_path: Path) -> None:
    old = tmp_path / "g953.fits"
    fits.PrimaryHDU(np.zeros((16, 20), np.float32), header("nickel_old")).writeto(
        old, output_verify="silentfix+ignore")
    _refused(old, "no celestial WCS")
    singular = frame(tmp_path / "singular.fits", "nickel")
    with fits.open(singular, mode="update") as hdus:
        for alt in ("", "S"):
            for key in ("CD1_1", "CD1_2", "CD2_1", "CD2_2"):
                hdus[0].header[key + alt] = 0.0
    _refused(singular, "cannot be cut by sky position")


def test_damaged_files_are_refused_by_name(tmp_path: Path) -> None:
    good = frame(tmp_path / "good.fits", "sharcs", shape=(64, 64))
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(good.read_bytes()[:-8000])
    _refused(truncated, "truncated")
    notes = tmp_path / "notes.fits"
    notes.write_bytes(b"Observing notes typed into the wrong file.\n")
    _refused(notes, "cannot be read as FITS")
    empty = tmp_path / "empty.fits"
    empty.write_bytes(b"")
    _refused(empty, "cannot be read as FITS")
    cube = tmp_path / "cube.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits.PrimaryHDU(np.zeros((2, 3, 4), np.float32)).writeto(cube)
    _refused(cube, "not a two-dimensional image")
    no_end = tmp_path / "no_end.fits"
    raw = good.read_bytes()
    end = raw.index(b"END" + b" " * 77)
    no_end.write_bytes(raw[:end] + b" " * 80 + raw[end + 80:])
    # astropy reads the pixels as more header: refused cleanly, as is its due
    _refused(no_end, "no cutout can be made of it")

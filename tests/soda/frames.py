"""FITS frames for the cutout tests, written from the real Lick header templates.

``frame`` writes a Nickel direct or ShARCS primary header (``ingest/templates``, real
instrument output) with its pointing, size and rotation changed, and pixels that
number themselves (value = 512 * row + column), so a test can tell which original
pixel every cutout pixel is.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

from ingest.fits_writer import load_template

TEMPLATES = {
    "nickel": "2019-05_24_nickel_d116-hdu0.txt",
    "sharcs": "2019-11_09_AO_s1303-hdu0.txt",
    "nickel_old": "2007-03_17_nickel_g953-hdu0.txt",
}


def header(kind: str) -> fits.Header:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fits.Header.fromstring("".join(load_template(TEMPLATES[kind])))


def frame(path: Path, kind: str = "nickel", *, ra: float = 114.5353, dec: float = 38.8824,
          shape: tuple[int, int] = (96, 110), scale_arcsec: float | None = None,
          rotation_deg: float | None = None, crpix: tuple[float, float] | None = None
          ) -> Path:
    """A frame of ``shape`` (rows, columns) whose reference pixel points at (ra, dec)."""
    cards = header(kind)
    rows, columns = shape
    cards["NAXIS1"], cards["NAXIS2"] = columns, rows
    for alt in ("", "S"):
        if f"CTYPE1{alt}" in cards:
            cards[f"CRVAL1{alt}"], cards[f"CRVAL2{alt}"] = ra, dec
            cards[f"CRPIX1{alt}"], cards[f"CRPIX2{alt}"] = crpix or (columns / 2 + 0.3,
                                                                     rows / 2 - 0.2)
            if scale_arcsec is not None or rotation_deg is not None:
                old = np.array([[cards[f"CD1_1{alt}"], cards[f"CD1_2{alt}"]],
                                [cards[f"CD2_1{alt}"], cards[f"CD2_2{alt}"]]])
                scale = (scale_arcsec / 3600.0 if scale_arcsec is not None
                         else math.sqrt(abs(np.linalg.det(old))))
                angle = math.radians(rotation_deg or 0.0)
                matrix = scale * np.array([[-math.cos(angle), math.sin(angle)],
                                           [math.sin(angle), math.cos(angle)]])
                for i in (1, 2):
                    for j in (1, 2):
                        cards[f"CD{i}_{j}{alt}"] = float(matrix[i - 1, j - 1])
    assert columns <= 512 and rows <= 128, "pixel values must fit in 16 bits"
    yy, xx = np.mgrid[0:rows, 0:columns]
    data = (512 * yy + xx).astype(np.uint16 if cards["BITPIX"] == 16 else np.float32)
    for key in ("BZERO", "BSCALE"):
        cards.remove(key, ignore_missing=True)
    fits.PrimaryHDU(data, cards).writeto(path, output_verify="silentfix+ignore",
                                         overwrite=True)
    return path


def wcs_of(hdr: fits.Header, key: str = " ") -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return WCS(hdr, key=key)


def pixel_of(wcs: WCS, ra: float, dec: float) -> tuple[float, float]:
    """0-based pixel of an ICRS position (astropy converts to the frame's system)."""
    x, y = wcs.world_to_pixel(SkyCoord(ra, dec, unit="deg", frame="icrs"))
    return float(x), float(y)


def sky_of(wcs: WCS, x: float, y: float) -> tuple[float, float]:
    sky = wcs.pixel_to_world(x, y).icrs
    return float(sky.ra.deg), float(sky.dec.deg)

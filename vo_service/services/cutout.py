"""Image cutouts with astropy: a sky region becomes a pixel box, the box a FITS HDU.

What the SODA service promises for each cutout, and how it is kept:

* **the region, whole**: the box is that of the part of the region inside the image,
  found from both boundaries (the region's traced near the image, projected to
  pixels; the image's border, tested against the region on the sky), every pixel
  the region touches included.  Regions are ICRS (SODA); the frame's own system
  (Lick writes FK5 J2000) is converted by astropy, not assumed equal.
* **the primary header, kept**: every card of the original survives (instrument
  keywords, the alternate WCS descriptions, comments); only the structure (NAXISn,
  BITPIX, BZERO with the data) and every WCS reference pixel change.  ``CRPIXja``
  of *every* description ``a`` (the celestial one, the Nickel's pixel-coordinate
  ones, an old linear one) moves by the box's offset, which keeps each of them true
  to the letter, CD or PC or CDELT, SIP or not; ``Cutout2D``'s WCS is the same
  transformation, written in another form.
* **the pixels as stored**: read through ``section`` without memory mapping, so
  only the rows of the box are read and scaled integers (BZERO 32768) stay
  unsigned 16-bit; a file shorter than its header says is refused, not half-cut.
* **the work bounded**: boxes are planned from the header alone; the caller checks
  the pixel count before any pixel is read (:func:`box_of` first, :func:`cut` after).

Archive files are broken in the ways MISSION §1 lists (no END, no SIMPLE...);
astropy opens them leniently here, and a file it still cannot read is a
:class:`~vo_service.errors.UsageFault` naming the dataset, never a crash.  Blocking:
run in a thread of the compute limiter.
"""

from __future__ import annotations

import io
import logging
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from vo_service.errors import UsageFault
from vo_service.services.regions import Floats, Region, trace, unit_vectors

log = logging.getLogger("lick_archive.soda")

#: Any WCS description's keywords, with the description's letter (blank: primary).
_WCS_KEY = re.compile(
    r"(?:CTYPE|CRVAL|CRPIX|CDELT|CUNIT|CROTA)[12]([A-Z]?)|(?:CD|PC)[12]_[12]([A-Z]?)"
    r"|WCSNAME([A-Z]?)")
_CHECKSUM_KEYS = ("CHECKSUM", "DATASUM")
#: Cards astropy writes for the data it holds (with the checksums, recomputed).
_STRUCTURE = ("SIMPLE", "XTENSION", "BITPIX", "PCOUNT", "GCOUNT", "BZERO", "BSCALE", "BLANK",
              *_CHECKSUM_KEYS)


def quiet_astropy() -> None:
    """Silence astropy's warnings about the headers it repairs, for the process.

    Archive headers need repairs all the time (RADECSYS, dates; MISSION §1), and
    ingest already records them as flags; logged per request they would flood the
    log.  Process-wide on purpose: ``warnings.catch_warnings`` is not thread-safe,
    and cutouts run in several threads.
    """
    warnings.filterwarnings("ignore", category=AstropyWarning)


@dataclass(frozen=True)
class Box:
    """Pixels ``x0..x1`` (axis 1) by ``y0..y1`` (axis 2), 0-based and inclusive."""

    x0: int
    x1: int
    y0: int
    y1: int

    @property
    def pixels(self) -> int:
        return (self.x1 - self.x0 + 1) * (self.y1 - self.y0 + 1)

    def fits_text(self) -> str:
        """The box as FITS (1-based) pixel ranges."""
        return f"[{self.x0 + 1}:{self.x1 + 1},{self.y0 + 1}:{self.y1 + 1}]"


class Image:
    """A file's primary image with a usable celestial WCS, open for cutting.

    Use as a context manager: the file stays open until the cutouts are made.
    """

    def __init__(self, path: Path, label: str) -> None:
        self.label = label
        try:
            self._hdus = fits.open(path, memmap=False, lazy_load_hdus=True,
                                   ignore_missing_end=True, ignore_missing_simple=True)
        except Exception as exc:  # astropy raises many types for a damaged file
            raise _damaged(label, exc) from exc
        try:
            self._check_structure(path)
            self.wcs = self._celestial_wcs()
            self._geometry()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Image:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._hdus.close()

    # -- opening ----------------------------------------------------------------------

    def _check_structure(self, path: Path) -> None:
        try:
            hdu = self._hdus[0]
            header = hdu.header
            naxis = int(header.get("NAXIS", 0))
            shape = tuple(int(header.get(f"NAXIS{i}", 0)) for i in range(1, naxis + 1))
            bitpix = abs(int(header.get("BITPIX", 0)))
            start = int(self._hdus.fileinfo(0)["datLoc"])
        except Exception as exc:
            raise _damaged(self.label, exc) from exc
        if naxis != 2 or min(shape) < 1:
            raise UsageFault(f"dataset {self.label!r} is not a two-dimensional image "
                             f"(NAXIS={naxis}); cutouts are made of images only")
        size = path.stat().st_size
        needed = start + bitpix // 8 * shape[0] * shape[1]
        if size < needed:
            raise UsageFault(f"the file of dataset {self.label!r} is truncated ({size} of "
                             f"{needed} bytes); no cutout can be made of it")
        self.hdu = hdu
        self.header = header
        self.shape = (shape[1], shape[0])  # numpy order: (rows, columns)

    def _celestial_wcs(self) -> WCS:
        """The first WCS description (primary, then alternates A..Z) whose two pixel
        axes are celestial and whose scale is a real one.

        Each description is built on its own: ``astropy.wcs.find_all_wcs`` (astropy
        8.0) leaves objects that crash the garbage collector.
        """
        for alt in _alternates(self.header):
            try:
                candidate = WCS(self.header, key=alt or " ", fix=True)
                if not (candidate.has_celestial and candidate.naxis == 2
                        and {candidate.wcs.lng, candidate.wcs.lat} == {0, 1}):
                    continue
                matrix = candidate.pixel_scale_matrix
                if not (np.all(np.isfinite(matrix)) and abs(np.linalg.det(matrix)) > 0):
                    continue
                if _zero_cd(self.header, alt):
                    continue
                return candidate
            except Exception:  # a description astropy cannot read: try the next
                continue
        raise self._no_wcs("it has no celestial WCS (CTYPE RA---/DEC-- with CRVAL, "
                           "CRPIX and a CD or CDELT scale)")

    def _no_wcs(self, why: str) -> UsageFault:
        return UsageFault(f"dataset {self.label!r} cannot be cut by sky position: {why}")

    def _geometry(self) -> None:
        """The border in pixels and on the sky, the centre, the reach and the step
        used to trace regions (:func:`box_of`)."""
        rows, columns = self.shape
        try:
            scales = proj_plane_pixel_scales(self.wcs)
            self.step = math.radians(0.5 * float(np.min(scales)))
            self.border_x, self.border_y = _border(columns, rows)
            self.border_lon, self.border_lat = self.to_icrs(self.border_x, self.border_y)
            centre_lon, centre_lat = self.to_icrs(np.array([(columns - 1) / 2.0]),
                                                  np.array([(rows - 1) / 2.0]))
        except Exception as exc:
            raise self._no_wcs(f"its WCS cannot be evaluated: {_reason(exc)}") from exc
        if not (self.step > 0 and np.all(np.isfinite(self.border_lon))
                and np.all(np.isfinite(self.border_lat))
                and math.isfinite(float(centre_lon[0])) and math.isfinite(float(centre_lat[0]))):
            raise self._no_wcs("its WCS gives no finite positions for the whole frame")
        self.centre = unit_vectors(centre_lon, centre_lat)[0]
        corners = unit_vectors(self.border_lon, self.border_lat)
        radius = float(np.max(np.arccos(np.clip(corners @ self.centre, -1.0, 1.0))))
        self.reach = radius + 4 * self.step

    # -- coordinates ------------------------------------------------------------------

    def to_icrs(self, x: Floats, y: Floats) -> tuple[Floats, Floats]:
        """ICRS (lon, lat) degrees of 0-based pixel positions."""
        sky = self.wcs.pixel_to_world(x, y).icrs
        return (np.asarray(sky.ra.deg, dtype=np.float64),
                np.asarray(sky.dec.deg, dtype=np.float64))

    def to_pixels(self, lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
        """0-based pixel positions of ICRS (lon, lat) degrees."""
        x, y = self.wcs.world_to_pixel(SkyCoord(lon * u.deg, lat * u.deg, frame="icrs"))
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def _alternates(header: fits.Header) -> list[str]:
    """The letters of the WCS descriptions a header has ("" for the primary), in
    order."""
    found: set[str] = set()
    for key in header:
        match = _WCS_KEY.fullmatch(key)
        if match:
            found.add(match.group(match.lastindex or 0))
    return sorted(found)


def _zero_cd(header: fits.Header, alt: str) -> bool:
    """A CD matrix written as all zeros: wcslib would read it as unity (1 degree a
    pixel), a scale nobody meant."""
    values = [header.get(f"CD{i}_{j}{alt}") for i in (1, 2) for j in (1, 2)]
    written = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return bool(written) and all(v == 0 for v in written)


def _border(columns: int, rows: int) -> tuple[Floats, Floats]:
    """The outer edge of the pixel grid (0-based pixel centres, edges at -0.5 and
    n - 0.5), every half pixel."""
    xs = np.linspace(-0.5, columns - 0.5, 2 * columns + 1)
    ys = np.linspace(-0.5, rows - 0.5, 2 * rows + 1)
    x = np.concatenate([xs, xs, np.full(len(ys), -0.5), np.full(len(ys), columns - 0.5)])
    y = np.concatenate([np.full(len(xs), -0.5), np.full(len(xs), rows - 0.5), ys, ys])
    return x, y


def box_of(image: Image, region: Region | None) -> Box | None:
    """The pixels of ``image`` that ``region`` touches; None when it misses the image;
    the whole frame for no region.  Reads the header only.

    The part of a region inside a frame is bounded by the region's boundary inside
    the frame and the frame's border inside the region; the box of those two sets
    of points is the box of the part.
    """
    rows, columns = image.shape
    if region is None:
        return Box(0, columns - 1, 0, rows - 1)
    inside = region.contains(image.border_lon, image.border_lat)
    xs, ys = [image.border_x[inside]], [image.border_y[inside]]
    lon, lat = trace(region, image.centre, image.reach, image.step)
    if len(lon):
        x, y = image.to_pixels(lon, lat)
        on = (np.isfinite(x) & np.isfinite(y) & (x >= -0.5) & (x <= columns - 0.5)
              & (y >= -0.5) & (y <= rows - 0.5))
        xs.append(x[on])
        ys.append(y[on])
    x_all, y_all = np.concatenate(xs), np.concatenate(ys)
    if not len(x_all):
        return None

    def pixel(value: float, size: int) -> int:
        return min(size - 1, max(0, math.floor(value + 0.5)))

    return Box(pixel(float(np.min(x_all)), columns), pixel(float(np.max(x_all)), columns),
               pixel(float(np.min(y_all)), rows), pixel(float(np.max(y_all)), rows))


def cut(image: Image, box: Box, history: list[str], *, primary: bool) -> fits.ImageHDU:
    """The cutout as an HDU (primary, or an image extension of a multi-cutout file)
    carrying the original header, its WCS shifted and ``history`` appended."""
    position = ((box.x0 + box.x1) / 2.0, (box.y0 + box.y1) / 2.0)
    size = (box.y1 - box.y0 + 1, box.x1 - box.x0 + 1)
    try:
        cutout = Cutout2D(image.hdu.section, position, size, wcs=image.wcs, mode="strict",
                          copy=True)
    except Exception as exc:
        raise _damaged(image.label, exc) from exc
    if cutout.slices_original != (slice(box.y0, box.y1 + 1), slice(box.x0, box.x1 + 1)):
        raise RuntimeError(f"Cutout2D cut {cutout.slices_original}, not {box}")
    header = image.header.copy()
    for key in _CHECKSUM_KEYS:
        header.remove(key, ignore_missing=True, remove_all=True)
    shift_wcs(header, box.x0, box.y0)
    for line in history:
        header.add_history(line)
    hdu = fits.PrimaryHDU(cutout.data, header) if primary else fits.ImageHDU(cutout.data,
                                                                            header)
    _restore(hdu.header, header, primary=primary)
    return hdu


def _restore(new: fits.Header, old: fits.Header, *, primary: bool) -> None:
    """Put back the cards astropy drops as structural that an instrument wrote
    anyway (ShARCS's ``GROUPS = 2``, the number of sampling groups; ``EXTEND``), in
    their order, after the structure."""
    rewritten = _STRUCTURE if primary else (*_STRUCTURE, "EXTEND")
    anchor = "NAXIS2"
    for card in old.cards:
        keyword = card.keyword
        if keyword and keyword not in new and keyword not in rewritten \
                and not keyword.startswith("NAXIS"):
            new.set(keyword, card.value, card.comment, after=anchor)
            anchor = keyword


def shift_wcs(header: fits.Header, dx: int, dy: int) -> None:
    """Move the reference pixel of every WCS description (and IRAF's LTV) so that
    pixel (x - dx, y - dy) of the cutout is where pixel (x, y) of the frame was."""
    for alt in _alternates(header):
        for axis, offset in ((1, dx), (2, dy)):
            key = f"CRPIX{axis}{alt}"
            old = header.get(key, 0.0)  # FITS default reference pixel
            if isinstance(old, int | float) and not isinstance(old, bool):
                header[key] = float(old) - offset
    for axis, offset in ((1, dx), (2, dy)):
        old = header.get(f"LTV{axis}")
        if isinstance(old, int | float) and not isinstance(old, bool):
            header[f"LTV{axis}"] = float(old) - offset


def write(hdus: list[fits.PrimaryHDU | fits.ImageHDU], *, checksum: bool) -> bytes:
    """The FITS file of the HDUs; headers as they came, repaired where astropy can."""
    out = io.BytesIO()
    fits.HDUList(hdus).writeto(out, output_verify="silentfix+ignore", checksum=checksum)
    return out.getvalue()


def had_checksum(image: Image) -> bool:
    return any(key in image.header for key in _CHECKSUM_KEYS)


def _reason(exc: BaseException) -> str:
    """The first line of an exception's text, without any file name (a path on the
    server's disk is not the client's business)."""
    text = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return re.sub(r"/\S+", "<file>", text)[:200]


def _damaged(label: str, exc: BaseException) -> UsageFault:
    log.info("cannot cut %s: %s: %s", label, type(exc).__name__, exc)
    return UsageFault(f"the file of dataset {label!r} cannot be read as FITS "
                      f"({_reason(exc)}); no cutout can be made of it")

"""SODA 1.0 sync cutouts: what a request asks for, whether the requester may have it,
and the FITS file that answers it.

The choices SODA leaves to a service, and why they are what they are here:

* **Multiple values.**  ID, CIRCLE, POLYGON and POS (together: the regions) and BAND
  may each be repeated.  As in SODA's async rule (sect. 6), every combination of a
  dataset, a region and a band is one cutout; the sync answer is one FITS file: a
  single cutout is the primary HDU (the dataset's header kept), several are image
  extensions behind a header-only primary HDU whose HISTORY lists them.  One file
  rather than a multipart answer, because every FITS reader (pyvo, astropy, TOPCAT,
  ds9) reads it.  RESPONSEFORMAT, like every parameter not listed above, is
  single-valued: repeated with different values it is SODA's
  MultiValuedParamNotSupported error.
* **No overlap.**  When no combination has a pixel (regions off the frames, or a BAND
  outside their spectral coverage) the answer is SODA's 204 No Content (sect. 5.1);
  combinations without pixels next to others with some are named in the primary
  HISTORY.  Lick images are single-band: a BAND that overlaps ``em_min..em_max``
  cuts nothing spectrally (an unknown coverage counts as overlapping).
* **Only images with a celestial WCS.**  Spectra and frames without one are a
  UsageError: SODA cuts by sky position, and their files are available unchanged
  from DataLink's ``#this`` link.
* **Limits before work.**  At most ``cutout_max_count`` cutouts and
  ``cutout_max_pixels`` pixels a request, checked from the headers before any pixel
  is read.  TIME and POL are refused (no Lick dataset has such axes to cut) rather
  than silently ignored.
* **Access.**  Every ID goes through :class:`DatasetLookup` as the requester: an ID
  that does not exist and one the requester may not see get the same answer, 401
  with a challenge for anonymous requests (logging in might help), 404 otherwise.

Blocking methods say which thread they belong to; nothing here knows HTTP.
"""

from __future__ import annotations

import math
import re
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime

from astropy.io import fits

from auth.principals import Principal
from vo_service.errors import NotFoundFault, UsageFault
from vo_service.params import Params
from vo_service.serialize.vosi import Endpoint, service_capabilities
from vo_service.services.cutout import (
    Box,
    Image,
    box_of,
    cut,
    had_checksum,
    quiet_astropy,
    write,
)
from vo_service.services.datasets import Dataset, DatasetLookup
from vo_service.services.downloads import FITS_MEDIA_TYPE, not_visible
from vo_service.services.regions import Region, band_of, band_text, overlaps, region_of
from vo_service.services.sia_params import Interval
from vo_service.settings import DownloadSettings

SODA_SYNC = "ivo://ivoa.net/std/SODA#sync-1.0"
#: RESPONSEFORMAT values meaning FITS (the only format; SODA's default).
_FITS_NAMES = (FITS_MEDIA_TYPE, "image/fits", "fits")
#: Standard SODA parameters this service does not offer (its descriptor omits them).
_REFUSED = ("TIME", "POL", "MOC")
_SHAPES = ("CIRCLE", "POLYGON", "POS")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class MultiValuedParamNotSupported(UsageFault):
    """SODA sect. 5.2: a repeated parameter this service takes once only."""


@dataclass(frozen=True)
class SodaRequest:
    """The cutouts asked for: every combination of an ID, a region and a band."""

    ids: tuple[str, ...]
    #: ``(None,)``: no region given, the whole frame
    regions: tuple[Region | None, ...]
    #: ``(None,)``: no BAND given
    bands: tuple[Interval | None, ...]

    @property
    def count(self) -> int:
        return len(self.ids) * len(self.regions) * len(self.bands)


@dataclass(frozen=True)
class Cutouts:
    """The answer: the FITS file, or None when no cutout has a pixel (204)."""

    content: bytes | None
    filename: str
    count: int


@dataclass(frozen=True)
class _Planned:
    dataset: Dataset
    region: Region | None
    band: Interval | None
    box: Box


class SodaService:
    """SODA sync over the datasets a requester may see."""

    def __init__(self, datasets: DatasetLookup, settings: DownloadSettings,
                 base_url: str, origin: str) -> None:
        self.datasets = datasets
        self.max_pixels = settings.cutout_max_pixels
        self.max_count = settings.cutout_max_count
        self.origin = origin
        self.capabilities = soda_capabilities(base_url)
        quiet_astropy()  # process-wide: see its docstring

    # -- parameters (event loop: pure) -------------------------------------------------

    def parse(self, params: Params) -> SodaRequest:
        """The request, or a UsageFault saying what to fix (before any lookup, so
        that a malformed request says nothing about the IDs it names)."""
        for name in _REFUSED:
            if any(value.strip() for value in params.get_all(name)):
                raise UsageFault(f"{name} is not supported: Lick datasets have no "
                                 f"{'time' if name == 'TIME' else 'such'} axis to cut; "
                                 "leave it out (this service takes ID, CIRCLE, POLYGON, "
                                 "POS and BAND)")
        formats = {v.strip() for v in params.get_all("RESPONSEFORMAT") if v.strip()}
        if len(formats) > 1:
            raise MultiValuedParamNotSupported(
                "RESPONSEFORMAT may be given once only; this service writes FITS")
        if formats and formats.pop().lower() not in _FITS_NAMES:
            raise UsageFault("RESPONSEFORMAT must be application/fits (the only format of "
                             "these cutouts), or left out")
        ids = tuple(dict.fromkeys(v for v in params.get_all("ID") if v.strip()))
        if not ids:
            raise UsageFault("missing required parameter ID (a dataset's "
                             "obs_publisher_did, as ObsCore and DataLink give it)")
        regions: list[Region] = []
        for name, value in params.items():
            if name in _SHAPES and value.strip():
                regions.append(region_of(name, value))
        bands = [band_of(v) for v in params.get_all("BAND") if v.strip()]
        request = SodaRequest(
            ids, tuple(dict.fromkeys(regions)) or (None,), tuple(dict.fromkeys(bands)) or (None,))
        if request.count > self.max_count:
            raise UsageFault(
                f"{len(ids)} ID(s) x {len(request.regions)} region(s) x "
                f"{len(request.bands)} band(s) make {request.count} cutouts; at most "
                f"{self.max_count} in one request: send several requests")
        return request

    # -- who may have what (a thread of the datasets pool) ------------------------------

    def lookup(self, principal: Principal, request: SodaRequest) -> list[Dataset]:
        """The datasets of ``request`` in its order, all visible to ``principal``.

        One that is not — missing or hidden alike — ends the request: 401 for an
        anonymous requester (proprietary data need a login), 404 for others.
        """
        found = self.datasets.visible(principal, request.ids)
        for did in request.ids:
            if did not in found:
                error = not_visible(principal)  # the downloads' rule and words
                error.message += f" (ID {did[:200]!r})"  # which one, of several
                raise error
        datasets = [found[did] for did in request.ids]
        for dataset in datasets:
            if dataset.dataproduct_type != "image":
                kind = dataset.dataproduct_type or "dataset of unknown type"
                raise UsageFault(
                    f"dataset {dataset.did!r} is a {kind}, not an image: cutouts by sky "
                    "position are made of images with a celestial WCS (its file is "
                    "available unchanged through DataLink)")
        return datasets

    # -- the cutouts (a thread of the compute limiter) ----------------------------------

    def cutouts(self, datasets: list[Dataset], request: SodaRequest) -> Cutouts:
        """Plan every cutout from the headers, check the limits, then cut and write."""
        with ExitStack() as files:
            images: dict[str, Image] = {}
            planned: list[_Planned] = []
            misses: list[str] = []
            for dataset in datasets:
                for band in request.bands:
                    if band is not None and not _band_overlaps(dataset, band):
                        misses.append(f"{dataset.did} BAND {band_text(band)}: outside the "
                                      "frame's spectral coverage")
                        continue
                    if dataset.did not in images:
                        images[dataset.did] = files.enter_context(self._open(dataset))
                    image = images[dataset.did]
                    for region in request.regions:
                        box = box_of(image, region)
                        if box is None:
                            misses.append(f"{dataset.did} {_describe(region)}: not on the "
                                          "frame")
                        else:
                            planned.append(_Planned(dataset, region, band, box))
            name = _filename(datasets, request.count)
            if not planned:
                return Cutouts(None, name, 0)
            pixels = sum(p.box.pixels for p in planned)
            if pixels > self.max_pixels:
                raise UsageFault(
                    f"the cutout{'s' if len(planned) > 1 else ''} would hold {pixels} "
                    f"pixels, more than the {self.max_pixels} allowed in one request; ask "
                    "for a smaller region (the whole file is available through DataLink)")
            return Cutouts(self._write(planned, images, misses), name, len(planned))

    def _open(self, dataset: Dataset) -> Image:
        path = self.datasets.file_of(dataset)
        if path is None:
            raise NotFoundFault(f"the file of dataset {dataset.did!r} is not on the "
                                "archive disk at the moment; try again later or ask the "
                                "archive staff")
        return Image(path, dataset.did)

    def _write(self, planned: list[_Planned], images: dict[str, Image],
               misses: list[str]) -> bytes:
        stamp = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%S}Z"
        single = len(planned) == 1
        hdus: list[fits.PrimaryHDU | fits.ImageHDU] = []
        if not single:
            primary = fits.PrimaryHDU()
            primary.header["ORIGIN"] = _ascii(self.origin)[:68]
            primary.header["DATE"] = (stamp[:-1], "UTC date this file was written")
            primary.header["NCUTOUT"] = (len(planned), "cutouts, one image extension each")
            primary.header.add_history(f"{len(planned)} cutouts made by the {self.origin} "
                                       f"SODA service {stamp}, one per extension:")
            for number, plan in enumerate(planned, start=1):
                primary.header.add_history(_ascii(
                    f"{number}: {plan.dataset.did} {_describe(plan.region)}"))
            for miss in misses:
                primary.header.add_history(_ascii(f"no pixels: {miss}"))
            hdus.append(primary)
        for number, plan in enumerate(planned, start=1):
            image = images[plan.dataset.did]
            rows, columns = image.shape
            history = [
                f"Cutout made by the {self.origin} SODA service {stamp}",
                f"from {plan.dataset.did}",
                f"of {_describe(plan.region)} (ICRS degrees)",
                f"original pixels {plan.box.fits_text()} of {columns} x {rows}; CRPIX of "
                f"every WCS moved by -{plan.box.x0}, -{plan.box.y0}",
                "pixel sections (DATASEC, BIASSEC...) refer to the original frame",
            ]
            if plan.band is not None:
                history.append(f"BAND {band_text(plan.band)} m overlaps the frame's band: no "
                               "spectral cut (single-band image)")
            hdu = cut(image, plan.box, [_ascii(line) for line in history], primary=single)
            if not single:
                hdu.header["EXTNAME"] = ("CUTOUT", "a cutout; EXTVER numbers them")
                hdu.header["EXTVER"] = number
            hdus.append(hdu)
        checksum = any(had_checksum(images[p.dataset.did]) for p in planned)
        return write(hdus, checksum=checksum)


def _band_overlaps(dataset: Dataset, band: Interval) -> bool:
    """Unknown spectral coverage counts as overlapping: nothing says it does not."""
    low = dataset.em_min if dataset.em_min is not None else -math.inf
    high = dataset.em_max if dataset.em_max is not None else math.inf
    return overlaps(band, low, high)


def _describe(region: Region | None) -> str:
    return region.text() if region is not None else "the whole frame (no region given)"


def _ascii(text: str) -> str:
    """FITS cards hold ASCII only; an identifier could hold more."""
    return text.encode("ascii", "backslashreplace").decode("ascii")


def _filename(datasets: list[Dataset], count: int) -> str:
    """``d101_cutout.fits``; ``d101_cutouts.fits`` for several of one frame;
    ``lick_cutouts.fits`` for several frames."""
    frames = {d.did: d for d in datasets}
    if len(frames) > 1:
        return "lick_cutouts.fits"
    stem = next(iter(frames.values())).filename.rsplit(".", 1)[0]
    stem = _SAFE_NAME.sub("_", stem).strip("._") or "lick"
    return f"{stem}_cutout{'s' if count > 1 else ''}.fits"


def soda_capabilities(base_url: str) -> bytes:
    """The VOSI capabilities of ``<base_url>/soda`` (SODA sect. 2.5): the sync
    resource and the two VOSI resources, each with every security method the TAP
    capabilities declare."""
    soda = f"{base_url.rstrip('/')}/soda"
    return service_capabilities(Endpoint(SODA_SYNC, f"{soda}/sync", role="std",
                                         version="1.0"), soda)

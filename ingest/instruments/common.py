"""What every instrument reader shares: header values, dates, positions, lamps.

Readers are small functions over a :class:`ReadContext` (the parsed header, the
night and instrument directory from the path, and a set of flags to add to); they
return an :class:`Extracted`.  Every fallback they take (date from the directory,
unparsable coordinates, missing OBJECT...) is recorded as a flag, never raised.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from ingest.fits_header import FitsHeader

# Ingest flags set by readers (the header reader sets the FITS-level ones).
DATE_FROM_PATH = "date_from_path"
DATE_FROM_READOUT = "date_from_readout"
DATE_FROM_DATE_OBS = "date_from_date_obs"
BAD_DATE = "bad_date"
DATE_MISMATCH = "date_mismatch"
BAD_COORDINATES = "bad_coordinates"
MISSING_COORDINATES = "missing_coordinates"
MISSING_OBJECT = "missing_object"
MISSING_OBSTYPE = "missing_obstype"
MISSING_EXPTIME = "missing_exptime"
BAD_EXPTIME = "bad_exptime"
MAX_EXPTIME = 86400.0
MISSING_LAMPS = "missing_lamps"
UNKNOWN_INSTRUMENT = "unknown_instrument"
UNKNOWN_VERSION = "unknown_version"
INSTRUMENT_FROM_FILENAME = "instrument_from_filename"

FRAME_TYPES = ("science", "bias", "dark", "flat", "arc", "focus", "unknown")

# The observing night runs from local noon to noon, Pacific Standard Time (UTC-8).
NIGHT_START_UTC = time(20, 0)
_DATE_TIME = re.compile(
    r"\s*(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{1,2}):(\d{2}):(\d{2}(?:\.\d*)?))?Z?\s*"
)
_TIME = re.compile(r"\s*(\d{1,2}):(\d{2}):(\d{2}(?:\.\d*)?)\s*")
_SEXAGESIMAL = re.compile(r"\s*([+-]?)\s*(\d{1,3})[: ]+(\d{1,2})(?:[: ]+(\d{1,2}(?:\.\d*)?))?\s*")
# LAMPSTA<n> cards: flat-field lamps 1-5, arc lamps A-K; (keyword, is a flat lamp).
_LAMPS = tuple((f"LAMPSTA{name}", True) for name in "12345") + tuple(
    (f"LAMPSTA{name}", False) for name in "ABCDEFGHIJK"
)
_ABSENT = object()


@dataclass
class ReadContext:
    """Input of a reader: the header and what the archive path says."""

    header: FitsHeader
    night: date
    instrument_dir: str
    filename: str
    flags: set[str] = field(default_factory=set)


@dataclass
class Extracted:
    """What a reader found; the FileMetadata record adds the file facts to it."""

    reader: str
    instrument: str | None = None
    telescope: str | None = None
    frame_type: str = "unknown"
    object: str | None = None
    observer: str | None = None
    program: str | None = None
    date_obs: datetime | None = None
    exptime: float | None = None
    airmass: float | None = None
    ra: float | None = None
    dec: float | None = None
    filter1: str | None = None
    filter2: str | None = None
    science_filter: str | None = None
    slit: str | None = None
    grism: str | None = None
    grating: str | None = None
    grating_tilt: float | None = None
    beam_splitter: str | None = None
    wcs: dict[str, float | str] | None = None


# ---------------------------------------------------------------- header values


def text(header: FitsHeader, keyword: str) -> str | None:
    """A string card, stripped (also of stray quotes); None when absent or blank."""
    value = header.get(keyword)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not value.isprintable():
            value = "".join(c if c.isprintable() else " " for c in value)
        cleaned = value.strip().strip("'").strip()
        return cleaned or None
    return str(value)


def number(header: FitsHeader, keyword: str) -> float | None:
    """A numeric card as float (also from a numeric string); None otherwise."""
    value = header.get(keyword)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


# ---------------------------------------------------------------- dates


def night_window(night: date) -> tuple[datetime, datetime]:
    """The UTC start and end of an observing night (noon to noon PST)."""
    start = datetime.combine(night, NIGHT_START_UTC, UTC)
    return start, start + timedelta(days=1)


def night_noon(night: date) -> datetime:
    """The time used for a frame whose date comes from its directory."""
    return night_window(night)[0]


def parse_date(value: object) -> date | None:
    """The date part of an ISO date or date-time card."""
    if not isinstance(value, str):
        return None
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def parse_datetime(value: object) -> datetime | None:
    """An ISO date-time (FITS DATE-OBS style, UTC) as an aware datetime.

    A bare date is not a start time and gives None.
    """
    if not isinstance(value, str):
        return None
    match = _DATE_TIME.fullmatch(value)
    if match is None or match.group(4) is None:
        return None
    year, month, day, hour, minute, second = match.groups()
    try:
        base = datetime(int(year), int(month), int(day), tzinfo=UTC)
    except ValueError:
        return None
    return _add_clock(base, int(hour), int(minute), float(second))


def parse_clock(value: object) -> tuple[int, int, float] | None:
    """``HH:MM:SS[.s]`` as (hours, minutes, seconds)."""
    if not isinstance(value, str):
        return None
    match = _TIME.fullmatch(value)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), float(match.group(3))


def _add_clock(day: datetime, hour: int, minute: int, second: float) -> datetime | None:
    if hour > 23 or minute > 59 or not 0 <= second < 61:
        return None
    return day + timedelta(hours=hour, minutes=minute, seconds=second)


def combine(day: datetime, clock: tuple[int, int, float]) -> datetime | None:
    return _add_clock(day, *clock)


def plausible(moment: datetime, night: date, slack: timedelta = timedelta(hours=12)) -> bool:
    """True when ``moment`` is within the night, give or take ``slack``."""
    start, end = night_window(night)
    return start - slack <= moment < end + slack


def start_time(
    ctx: ReadContext, keywords: tuple[str, ...], exptime: float | None
) -> datetime:
    """The first parsable of ``keywords``, else DATE minus the exposure, else the night.

    DATE is the time the file was written (the CCD readout) on the Lick acquisition
    systems, so it is used, minus the exposure time, only when no start keyword is
    usable (flag ``date_from_readout``).
    """
    header = ctx.header
    for keyword in keywords:
        if keyword not in header:
            continue
        value = header.get(keyword)
        moment = parse_datetime(value)
        if moment is not None:
            return checked(ctx, moment)
        if parse_date(value) is None:
            ctx.flags.add(BAD_DATE)
    if "DATE" in header:
        value = header.get("DATE")
        written = parse_datetime(value)
        if written is not None:
            ctx.flags.add(DATE_FROM_READOUT)
            return checked(ctx, written - timedelta(seconds=exptime or 0.0))
        if parse_date(value) is None:
            ctx.flags.add(BAD_DATE)
    ctx.flags.add(DATE_FROM_PATH)
    return night_noon(ctx.night)


def checked(ctx: ReadContext, moment: datetime) -> datetime:
    if not plausible(moment, ctx.night):
        ctx.flags.add(DATE_MISMATCH)
    return moment


# ---------------------------------------------------------------- positions


def parse_sexagesimal(value: str, *, hours: bool) -> float | None:
    """``[+-]DD:MM:SS.s`` (or with blanks) in degrees; RA given in hours if ``hours``."""
    match = _SEXAGESIMAL.fullmatch(value)
    if match is None:
        return None
    sign, whole, minutes, seconds = match.groups()
    m = int(minutes)
    s = float(seconds) if seconds else 0.0
    if m >= 60 or s > 60.0:  # 60.0 s appears in real headers: a rounding artefact
        return None
    magnitude = int(whole) + m / 60.0 + s / 3600.0
    if hours:
        if sign == "-" or magnitude > 24.0:
            return None
        return (magnitude * 15.0) % 360.0
    if magnitude > 90.0:
        return None
    return -magnitude if sign == "-" else magnitude


def _angle(value: object, *, hours: bool) -> float | None:
    if isinstance(value, str):
        stripped = value.strip()
        if ":" in stripped or " " in stripped:
            return parse_sexagesimal(stripped, hours=hours)
        try:
            value = float(stripped)
        except ValueError:
            return None
        hours = False  # a bare number is in degrees
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def _precess_to_j2000(ra: float, dec: float, equinox: float) -> tuple[float, float]:
    """FK5 mean place at ``equinox`` (Julian years) to J2000 (IAU 1976 precession)."""
    t = (equinox - 2000.0) / 100.0
    arcsec = math.pi / (180.0 * 3600.0)
    zeta = (2306.2181 * t + 0.30188 * t * t + 0.017998 * t**3) * arcsec
    z = (2306.2181 * t + 1.09468 * t * t + 0.018203 * t**3) * arcsec
    theta = (2004.3109 * t - 0.42665 * t * t - 0.041833 * t**3) * arcsec
    a, d = math.radians(ra), math.radians(dec)
    v = (math.cos(d) * math.cos(a), math.cos(d) * math.sin(a), math.sin(d))
    cz, sz = math.cos(zeta), math.sin(zeta)
    cZ, sZ = math.cos(z), math.sin(z)
    ct, st = math.cos(theta), math.sin(theta)
    # P maps J2000 to the equinox of date; its transpose maps back.
    p = (
        (cz * ct * cZ - sz * sZ, -sz * ct * cZ - cz * sZ, -st * cZ),
        (cz * ct * sZ + sz * cZ, -sz * ct * sZ + cz * cZ, -st * sZ),
        (cz * st, -sz * st, ct),
    )
    w = tuple(sum(p[i][j] * v[i] for i in range(3)) for j in range(3))
    ra0 = math.degrees(math.atan2(w[1], w[0])) % 360.0
    dec0 = math.degrees(math.asin(max(-1.0, min(1.0, w[2]))))
    return ra0, dec0


def _equinox(header: FitsHeader, suffix: str = "") -> float | None:
    value = number(header, f"EQUINOX{suffix}")
    if value is None and not suffix:
        value = number(header, "EPOCH")
    return value if value is not None and 1900.0 < value < 2100.0 else None


def _to_j2000(ra: float, dec: float, equinox: float | None) -> tuple[float, float]:
    if equinox is None or abs(equinox - 2000.0) < 0.01:
        return ra, dec
    return _precess_to_j2000(ra, dec, equinox)


def celestial_wcs(header: FitsHeader, suffix: str = "") -> dict[str, float | str] | None:
    """The celestial WCS ``suffix`` ("" or "S") as unsuffixed keywords, or None.

    Returns CTYPE/CRVAL always, and CRPIX plus a CD matrix (from CDi_j, PCi_j with
    CDELTi, or CDELTi with CROTA2) when the header defines a usable linear part.
    """
    ctype1 = text(header, f"CTYPE1{suffix}")
    if ctype1 is None:
        return None
    ctype2 = text(header, f"CTYPE2{suffix}")
    if ctype2 is None:
        return None
    swapped = ctype1.startswith("DEC-") and ctype2.startswith("RA--")
    if not (swapped or (ctype1.startswith("RA--") and ctype2.startswith("DEC-"))):
        return None
    crval1 = number(header, f"CRVAL1{suffix}")
    crval2 = number(header, f"CRVAL2{suffix}")
    if crval1 is None or crval2 is None:
        return {}
    result: dict[str, float | str] = {
        "CTYPE1": ctype1, "CTYPE2": ctype2, "CRVAL1": crval1, "CRVAL2": crval2,
    }
    crpix1 = number(header, f"CRPIX1{suffix}")
    crpix2 = number(header, f"CRPIX2{suffix}")
    matrix = _linear(header, suffix)
    if crpix1 is not None and crpix2 is not None and matrix is not None:
        result.update(CRPIX1=crpix1, CRPIX2=crpix2, CD1_1=matrix[0], CD1_2=matrix[1],
                      CD2_1=matrix[2], CD2_2=matrix[3])
    return result


def _linear(header: FitsHeader, suffix: str) -> tuple[float, float, float, float] | None:
    cd = [number(header, f"CD{i}_{j}{suffix}") for i, j in ((1, 1), (1, 2), (2, 1), (2, 2))]
    if any(v is not None for v in cd):
        values = tuple(v or 0.0 for v in cd)
    else:
        cdelt1 = number(header, f"CDELT1{suffix}")
        cdelt2 = number(header, f"CDELT2{suffix}")
        if cdelt1 is None or cdelt2 is None:
            return None
        pc = [number(header, f"PC{i}_{j}{suffix}") for i, j in ((1, 1), (1, 2), (2, 1), (2, 2))]
        if any(v is not None for v in pc):
            p11 = 1.0 if pc[0] is None else pc[0]
            p12 = 0.0 if pc[1] is None else pc[1]
            p21 = 0.0 if pc[2] is None else pc[2]
            p22 = 1.0 if pc[3] is None else pc[3]
        else:
            rot = math.radians(number(header, f"CROTA2{suffix}") or 0.0)
            p11, p12 = math.cos(rot), -math.sin(rot) * cdelt2 / cdelt1
            p21, p22 = math.sin(rot) * cdelt1 / cdelt2, math.cos(rot)
        values = (cdelt1 * p11, cdelt1 * p12, cdelt2 * p21, cdelt2 * p22)
    det = values[0] * values[3] - values[1] * values[2]
    if not math.isfinite(det) or det == 0.0:
        return None
    return values  # type: ignore[return-value]


def position(ctx: ReadContext) -> tuple[float | None, float | None, dict[str, float | str] | None]:
    """Pointing (ICRS degrees) and celestial WCS: primary WCS, the S WCS, else RA/DEC.

    Positions given at another equinox (EQUINOX card) are precessed to J2000; without
    an EQUINOX card J2000 is assumed; FK5 J2000 is taken as ICRS (they differ by less
    than 0.1").  Flags ``bad_coordinates`` (present but unusable) or
    ``missing_coordinates`` (absent) when no position is found.
    """
    header = ctx.header
    seen_bad = False
    for suffix in ("", "S"):
        wcs = celestial_wcs(header, suffix)
        if wcs is None:
            continue
        if not wcs:
            seen_bad = True
            continue
        ra, dec = float(wcs["CRVAL1"]), float(wcs["CRVAL2"])
        if str(wcs["CTYPE1"]).startswith("DEC-"):
            ra, dec = dec, ra
        if not (0.0 <= ra <= 360.0 and -90.0 <= dec <= 90.0):
            seen_bad = True
            continue
        ra, dec = _to_j2000(ra, dec, _equinox(header, suffix))
        return ra % 360.0, dec, wcs
    if "RA" in header or "DEC" in header:
        ra_card = _angle(header.get("RA"), hours=True)
        dec_card = _angle(header.get("DEC"), hours=False)
        if ra_card is not None and dec_card is not None and -90.0 <= dec_card <= 90.0:
            ra, dec = _to_j2000(ra_card % 360.0, dec_card, _equinox(header))
            return ra, dec, None
        seen_bad = True
    ctx.flags.add(BAD_COORDINATES if seen_bad else MISSING_COORDINATES)
    return None, None, None


# ---------------------------------------------------------------- frame types


def lamps(header: FitsHeader) -> tuple[bool, bool] | None:
    """(a flat-field lamp is on, an arc lamp is on) from LAMPSTA*, None if absent."""
    found = False
    flat = arc = False
    for keyword, is_flat in _LAMPS:
        # One lookup per keyword, not ``in`` then get: 8.4 -> 5.9 us for 16 lamp cards.
        value = header.get(keyword, _ABSENT)
        if value is _ABSENT:
            continue
        found = True
        on = value is True or (isinstance(value, str) and value.strip().lower() == "on")
        if on and is_flat:
            flat = True
        elif on:
            arc = True
    return (flat, arc) if found else None


def has_word(obj: str | None, *words: str) -> bool:
    if obj is None:
        return False
    folded = obj.casefold()
    return any(word in folded for word in words)


def plausible_exposure(ctx: ReadContext, value: float | None) -> float | None:
    """Exposures beyond a day are corrupt cards: flagged and dropped."""
    if value is None:
        ctx.flags.add(MISSING_EXPTIME)
        return None
    if not 0.0 <= value <= MAX_EXPTIME:
        ctx.flags.add(BAD_EXPTIME)
        return None
    return value


def exposure(ctx: ReadContext, *keywords: str) -> float | None:
    for keyword in keywords:
        value = number(ctx.header, keyword)
        if value is not None:
            return plausible_exposure(ctx, value)
    return plausible_exposure(ctx, None)


def common_fields(ctx: ReadContext, extracted: Extracted) -> Extracted:
    """OBJECT, OBSERVER, PROGRAM, AIRMASS and the position, as all readers read them."""
    header = ctx.header
    extracted.object = text(header, "OBJECT")
    extracted.observer = text(header, "OBSERVER")
    extracted.program = text(header, "PROGRAM")
    airmass = number(header, "AIRMASS")
    extracted.airmass = airmass if airmass is not None and airmass >= 1.0 else None
    extracted.ra, extracted.dec, extracted.wcs = position(ctx)
    return extracted

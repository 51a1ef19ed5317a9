"""ShARCS, the near-infrared camera behind ShaneAO on the Shane 3-m (directory ``AO``).

ShARCS data start in 2014-04; earlier files in ``AO`` are IRCAL and go to the generic
reader.  The camera's DATE-OBS is bogus in some years (dates in 2007), so the start
is DATE-BEG, else DATE-OBS + TIME-OBS only when that falls in the observing night,
else the night itself.  Exposure is TRUITIME (true integration per coadd) times
COADDONE (coadds completed).
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from ingest.instruments.common import (
    BAD_DATE,
    DATE_FROM_DATE_OBS,
    DATE_FROM_PATH,
    MISSING_EXPTIME,
    MISSING_LAMPS,
    MISSING_OBJECT,
    Extracted,
    ReadContext,
    checked,
    combine,
    common_fields,
    has_word,
    lamps,
    night_noon,
    night_window,
    number,
    parse_clock,
    parse_date,
    parse_datetime,
    plausible_exposure,
    text,
)

SHARCS = "ShARCS"
# CALYNAM positions that put an arc source into the beam.
ARC_CALIBRATORS = ("Red Light", "Argon")


def start(ctx: ReadContext) -> datetime:
    header = ctx.header
    if "DATE-BEG" in header:
        moment = parse_datetime(header.get("DATE-BEG"))
        if moment is not None:
            return checked(ctx, moment)
        ctx.flags.add(BAD_DATE)
    day = parse_date(header.get("DATE-OBS"))
    clock = parse_clock(header.get("TIME-OBS"))
    if day is not None and clock is not None:
        moment = combine(datetime.combine(day, time(0), UTC), clock)
        first, last = night_window(ctx.night)
        if moment is not None and first <= moment < last:
            ctx.flags.add(DATE_FROM_DATE_OBS)
            return moment
    if "TIME-OBS" in header and clock is None:
        ctx.flags.add(BAD_DATE)
    ctx.flags.add(DATE_FROM_PATH)
    return night_noon(ctx.night)


def frame_type(ctx: ReadContext, obj: str | None) -> str:
    """The blank filter, the calibration unit, the flat lamps, then OBJECT words.

    FILT2NAM=Blank25 blocks all light: a dark.  "dark" in OBJECT only counts when the
    header has no FILT2NAM at all (with the card present, Blank25 is the authority).
    """
    header = ctx.header
    filter2 = text(header, "FILT2NAM")
    if filter2 == "Blank25":
        return "dark"
    if text(header, "CALYNAM") in ARC_CALIBRATORS:
        return "arc"
    status = lamps(header)
    if status is None:
        ctx.flags.add(MISSING_LAMPS)
    elif status[0]:
        return "flat"
    if has_word(obj, "dark") and "FILT2NAM" not in header:
        return "dark"
    if has_word(obj, "flat"):
        return "flat"
    if has_word(obj, "arc"):
        return "arc"
    if obj is None:
        ctx.flags.add(MISSING_OBJECT)
        return "unknown"
    return "science"


def read(ctx: ReadContext) -> Extracted | None:
    header = ctx.header
    extracted = common_fields(ctx, Extracted(reader="sharcs", instrument=SHARCS,
                                             telescope="Shane"))
    per_coadd = number(header, "TRUITIME")
    coadds = number(header, "COADDONE")
    if per_coadd is not None and coadds is not None:
        extracted.exptime = plausible_exposure(ctx, per_coadd * coadds)
    else:
        ctx.flags.add(MISSING_EXPTIME)
    extracted.date_obs = start(ctx)
    extracted.filter1 = text(header, "FILT1NAM")
    extracted.filter2 = text(header, "FILT2NAM")
    extracted.science_filter = text(header, "SCIFILT")
    extracted.frame_type = frame_type(ctx, extracted.object)
    return extracted

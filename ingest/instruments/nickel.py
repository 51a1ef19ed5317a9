"""The Nickel 1-m (directory ``nickel``): direct-imaging camera and the old spectrograph.

The instrument is named by VERSION (``nickel_direct``, ``nickel_spectrograph``,
sometimes with a stray quote) or INSTRUME; a header naming neither is kept as an
unknown Nickel instrument (flag ``unknown_instrument``) rather than lost.
"""

from __future__ import annotations

from ingest.instruments.common import (
    MISSING_OBJECT,
    MISSING_OBSTYPE,
    UNKNOWN_INSTRUMENT,
    UNKNOWN_VERSION,
    Extracted,
    ReadContext,
    common_fields,
    exposure,
    has_word,
    start_time,
    text,
)

DIRECT = "Nickel Direct"
SPECTROGRAPH = "Nickel Spectrograph"


def _name(value: str | None) -> str | None:
    if value is None:
        return None
    folded = value.casefold()
    if "nickel" not in folded:
        return None
    if "direct" in folded:
        return DIRECT
    if "spectrograph" in folded:
        return SPECTROGRAPH
    return None


def instrument(ctx: ReadContext) -> str | None:
    version = text(ctx.header, "VERSION")
    found = _name(version) or _name(text(ctx.header, "INSTRUME"))
    if found is None:
        ctx.flags.add(UNKNOWN_INSTRUMENT)
    elif version is not None and _name(version) is None:
        ctx.flags.add(UNKNOWN_VERSION)
    return found


def frame_type(ctx: ReadContext, obj: str | None, exptime: float | None) -> str:
    """OBSTYPE=DARK (a bias when the exposure is zero), then the words of OBJECT.

    Nickel observers wrote "bias" on lamp exposures taken with the shutter open, so a
    "bias" with a non-zero exposure is a flat; "dark" in OBJECT without OBSTYPE=DARK
    is ambiguous and left unknown.
    """
    obstype = text(ctx.header, "OBSTYPE")
    if obstype is None:
        ctx.flags.add(MISSING_OBSTYPE)
    else:
        upper = obstype.upper()
        if upper == "DARK":
            return "bias" if exptime == 0 else "dark"
        if upper in ("BIAS", "ZERO"):
            return "bias"
        if upper == "FLAT":
            return "flat"
    if obj is None:
        ctx.flags.add(MISSING_OBJECT)
        return "unknown"
    if has_word(obj, "bias"):
        return "bias" if exptime == 0 else "flat"
    if has_word(obj, "flat"):
        return "flat"
    if has_word(obj, "lamp", "hg", "neon", "arc"):
        return "arc"
    if has_word(obj, "dark"):
        return "unknown"
    if has_word(obj, "focus"):
        return "focus"
    return "science"


def read(ctx: ReadContext) -> Extracted | None:
    header = ctx.header
    extracted = common_fields(ctx, Extracted(reader="nickel", instrument=instrument(ctx),
                                             telescope="Nickel"))
    exptime = exposure(ctx, "EXPTIME", "EXPOSURE")
    extracted.exptime = exptime
    extracted.date_obs = start_time(ctx, ("DATE-OBS", "DATE-BEG"), exptime)
    extracted.filter1 = text(header, "FILTNAM")
    extracted.frame_type = frame_type(ctx, extracted.object, exptime)
    return extracted

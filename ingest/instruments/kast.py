"""Kast double spectrograph on the Shane 3-m (directory ``shane``): blue and red sides.

Two header generations: since 2008 the acquisition software writes ``VERSION=kastb``
or ``kastr``; the 2006-2008 system wrote ``INSTRUME=KAST`` (sometimes blank, with
``PROGRAM=KAST``), ``SPSIDE=blue|red`` and ``EXPOSURE`` instead of ``EXPTIME``.
"""

from __future__ import annotations

from ingest.instruments.common import (
    INSTRUMENT_FROM_FILENAME,
    MISSING_LAMPS,
    MISSING_OBJECT,
    Extracted,
    ReadContext,
    common_fields,
    exposure,
    has_word,
    lamps,
    number,
    start_time,
    text,
)

BLUE = "Kast Blue"
RED = "Kast Red"


def side(ctx: ReadContext) -> str | None:
    """Kast Blue or Kast Red, or None when the header is not a Kast header."""
    header = ctx.header
    version = text(header, "VERSION")
    if version is not None:
        folded = version.casefold()
        if folded == "kastb":
            return BLUE
        if folded == "kastr":
            return RED
    instrume = (text(header, "INSTRUME") or "").upper()
    program = (text(header, "PROGRAM") or "").upper()
    if instrume != "KAST" and not (instrume == "" and program == "KAST"):
        return None
    spside = (text(header, "SPSIDE") or "").casefold()
    if spside == "blue":
        return BLUE
    if spside == "red":
        return RED
    # Old header without a usable SPSIDE: the file name still says which side.
    if ctx.filename[:1] in ("b", "r"):
        ctx.flags.add(INSTRUMENT_FROM_FILENAME)
        return BLUE if ctx.filename[0] == "b" else RED
    return None


def frame_type(ctx: ReadContext, obj: str | None, exptime: float | None) -> str:
    """Explicit OBSTYPE, then lamps, then zero exposure, then the observer's words.

    OBSTYPE=OBJECT says nothing (arcs are written with it too); OBSTYPE=DARK with a
    zero exposure is a bias.  A lamp that is on beats the OBJECT text, which observers
    often leave unchanged between science and calibration frames.
    """
    obstype = (text(ctx.header, "OBSTYPE") or "").upper()
    if obstype == "DARK":
        return "bias" if exptime == 0 else "dark"
    if obstype in ("BIAS", "ZERO"):
        return "bias"
    if obstype == "FLAT":
        return "flat"
    if obstype in ("ARC", "LAMP", "COMP"):
        return "arc"
    status = lamps(ctx.header)
    if status is None:
        ctx.flags.add(MISSING_LAMPS)
    else:
        flat_on, arc_on = status
        if flat_on:
            return "flat"
        if arc_on:
            return "arc"
    if exptime == 0:
        return "bias"
    for kind, words in (("bias", ("bias",)), ("flat", ("flat",)), ("dark", ("dark",)),
                        ("arc", ("arc",)), ("focus", ("focus",))):
        if has_word(obj, *words):
            return kind
    if obj is None:
        ctx.flags.add(MISSING_OBJECT)
        return "unknown"
    return "science"


def read(ctx: ReadContext) -> Extracted | None:
    instrument = side(ctx)
    if instrument is None:
        return None
    header = ctx.header
    extracted = common_fields(ctx, Extracted(reader="kast", instrument=instrument,
                                             telescope="Shane"))
    exptime = exposure(ctx, "EXPTIME", "EXPOSURE")
    extracted.exptime = exptime
    extracted.date_obs = start_time(ctx, ("DATE-OBS", "DATE-BEG"), exptime)
    extracted.slit = text(header, "SLIT_N")
    extracted.beam_splitter = text(header, "BSPLIT_N")
    if instrument == BLUE:
        extracted.grism = text(header, "GRISM_N")
    else:
        extracted.grating = text(header, "GRATNG_N")
        extracted.grating_tilt = number(header, "GRTILT_P")
    extracted.frame_type = frame_type(ctx, extracted.object, exptime)
    return extracted

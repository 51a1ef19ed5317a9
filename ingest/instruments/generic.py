"""Any other FITS file with a usable header: the common keywords, nothing assumed.

Used for configured directories without a specific reader and for files a specific
reader does not recognise (flag ``unknown_instrument``), so nothing readable is lost.
"""

from __future__ import annotations

from ingest.instruments.common import (
    MISSING_OBJECT,
    Extracted,
    ReadContext,
    common_fields,
    exposure,
    has_word,
    start_time,
    text,
)

_KINDS = (
    ("bias", ("bias", "zero")),
    ("dark", ("dark",)),
    ("flat", ("flat",)),
    ("arc", ("arc", "lamp", "comp")),
    ("focus", ("focus",)),
)


def frame_type(ctx: ReadContext, obj: str | None, exptime: float | None) -> str:
    for keyword in ("OBSTYPE", "IMAGETYP", "IMAGETYPE"):
        value = text(ctx.header, keyword)
        if value is None:
            continue
        for kind, words in _KINDS:
            if has_word(value, *words):
                return kind
        if has_word(value, "object", "science", "light"):
            break
    if exptime == 0:
        return "bias"
    for kind, words in _KINDS:
        if has_word(obj, *words):
            return kind
    if obj is None:
        ctx.flags.add(MISSING_OBJECT)
        return "unknown"
    return "science"


def read(ctx: ReadContext, telescope: str | None = None) -> Extracted:
    header = ctx.header
    extracted = common_fields(ctx, Extracted(reader="generic"))
    extracted.instrument = text(header, "INSTRUME")
    extracted.telescope = telescope or text(header, "TELESCOP")
    exptime = exposure(ctx, "EXPTIME", "EXPOSURE")
    extracted.exptime = exptime
    extracted.date_obs = start_time(ctx, ("DATE-OBS", "DATE-BEG"), exptime)
    extracted.filter1 = text(header, "FILTER") or text(header, "FILTNAM")
    extracted.frame_type = frame_type(ctx, extracted.object, exptime)
    return extracted

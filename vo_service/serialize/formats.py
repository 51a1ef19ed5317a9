"""Output formats of query results and how RESPONSEFORMAT selects them.

DALI sect. 3.5 (RESPONSEFORMAT) accepts MIME types and short forms; TAPRegExt
declares each format with its MIME type, aliases and, for the VOTable
serializations that a MIME type cannot tell apart, an ivo-id.  This module is that
one table, used both to parse the parameter and to write the capabilities.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

TAPREGEXT = "ivo://ivoa.net/std/TAPRegExt"
VOTABLE_MIME = "application/x-votable+xml"


@dataclass(frozen=True)
class OutputFormat:
    """One result format.

    ``name`` is the stable key the writers dispatch on (``votable-binary2``, ``csv``...);
    ``mime_type`` is what the Content-Type header should say.  When a client asks by
    MIME type, DALI requires that exact type back, so :func:`resolve_format` returns a
    copy whose ``mime_type`` is the requested one: compare formats by ``name``.
    """

    name: str
    mime_type: str
    ivo_id: str | None
    aliases: tuple[str, ...] = ()
    extension: str = ""
    serialization: str | None = None
    """TABLEDATA, BINARY or BINARY2 for VOTables, None otherwise."""

    @property
    def is_votable(self) -> bool:
        return self.serialization is not None


VOTABLE_BINARY2 = OutputFormat(
    name="votable-binary2",
    mime_type=VOTABLE_MIME,
    ivo_id=f"{TAPREGEXT}#output-votable-binary2",
    aliases=("votable", "votable/b2", "votableb2", "binary2"),
    extension="vot",
    serialization="BINARY2",
)
VOTABLE_BINARY = OutputFormat(
    name="votable-binary",
    mime_type=f"{VOTABLE_MIME};serialization=BINARY",
    ivo_id=f"{TAPREGEXT}#output-votable-binary",
    aliases=("votable/b", "votableb", "binary"),
    extension="vot",
    serialization="BINARY",
)
VOTABLE_TABLEDATA = OutputFormat(
    name="votable-td",
    mime_type=f"{VOTABLE_MIME};serialization=TABLEDATA",
    ivo_id=f"{TAPREGEXT}#output-votable-td",
    aliases=("votable/td", "votabletd", "tabledata"),
    extension="vot",
    serialization="TABLEDATA",
)
CSV = OutputFormat(
    name="csv", mime_type="text/csv;header=present", ivo_id=None, aliases=("csv",),
    extension="csv",
)
TSV = OutputFormat(
    name="tsv", mime_type="text/tab-separated-values", ivo_id=None, aliases=("tsv",),
    extension="tsv",
)
FITS = OutputFormat(
    name="fits", mime_type="application/fits", ivo_id=None, aliases=("fits",),
    extension="fits",
)

SUPPORTED_FORMATS: tuple[OutputFormat, ...] = (
    VOTABLE_BINARY2, VOTABLE_TABLEDATA, VOTABLE_BINARY, CSV, TSV, FITS,
)
DEFAULT_FORMAT = VOTABLE_BINARY2

_BY_SERIALIZATION = {
    "binary2": VOTABLE_BINARY2, "binary": VOTABLE_BINARY, "tabledata": VOTABLE_TABLEDATA,
}
# Bare media types (parameters stripped, lower case) -> format.
_BY_MEDIA_TYPE = {
    VOTABLE_MIME: VOTABLE_BINARY2,
    "text/xml": VOTABLE_BINARY2,
    "application/xml": VOTABLE_BINARY2,
    "text/csv": CSV,
    "text/tab-separated-values": TSV,
    "application/fits": FITS,
    "image/fits": FITS,
}


def _split_media_type(value: str) -> tuple[str, dict[str, str]]:
    base, *params = value.split(";")
    parsed: dict[str, str] = {}
    for param in params:
        key, sep, val = param.partition("=")
        if not sep:
            raise ValueError(f"malformed media type parameter {param.strip()!r}")
        parsed[key.strip().lower()] = val.strip().strip('"').strip()
    return base.strip().lower(), parsed


def resolve_format(responseformat: str | None) -> OutputFormat:
    """The format for a RESPONSEFORMAT (or TAP 1.0 FORMAT) value; None or empty: VOTable.

    Short forms are matched case-insensitively.  A media type keeps its spelling in
    the returned ``mime_type`` (DALI: the response must carry the requested type);
    ``serialization=`` selects the VOTable encoding, and ``header=absent`` on
    text/csv is refused because the header line is always written.
    """
    if responseformat is None or not responseformat.strip():
        return DEFAULT_FORMAT
    requested = responseformat.strip()
    wanted = requested.lower()
    for fmt in SUPPORTED_FORMATS:
        if wanted in fmt.aliases:
            return fmt
    if "/" not in wanted:
        raise ValueError(_unknown(requested))
    base, params = _split_media_type(wanted)
    found = _BY_MEDIA_TYPE.get(base)
    if found is None:
        raise ValueError(_unknown(requested))
    fmt = found
    if fmt.is_votable and "serialization" in params:
        chosen = _BY_SERIALIZATION.get(params["serialization"])
        if chosen is None:
            raise ValueError(
                f"VOTable serialization {params['serialization']!r} is not supported; "
                "use TABLEDATA, BINARY or BINARY2"
            )
        fmt = chosen
    if fmt is CSV and params.get("header", "present") != "present":
        raise ValueError("CSV output always has a header line; use text/csv or "
                         "text/csv;header=present")
    return replace(fmt, mime_type=requested)


def _unknown(requested: str) -> str:
    names = ", ".join(
        [f.mime_type for f in SUPPORTED_FORMATS] + [a for f in SUPPORTED_FORMATS for a in f.aliases]
    )
    return f"unsupported RESPONSEFORMAT {requested!r}; this service supports: {names}"

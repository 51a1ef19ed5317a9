"""The archive search of the web pages: form fields → one ADQL query → a page of rows.

The search page speaks the observatory's terms (object, night, file, position,
instrument, frame type); this module turns them into ADQL over ``lick.files`` and
runs it through the TAP service (:meth:`TapService.start`), so a page shows exactly
the rows a TAP query of the same requester returns: the same translator, the same
transaction bound to the requester, the same row-level security.  The ADQL a page
shows, links to the ADQL page, puts in the pyvo snippet and hands to ``/data/tar``
for "download all" is the same query without its paging condition.

Paging is by keyset: the next page is the rows after the last one shown in the
sort order (sort value, then the dataset identifier as a tie-breaker), so PostgreSQL
starts from that key and never reads the earlier pages again.  The previous page is
the rows before the first one shown, read in the reversed order.  NULL sort values
come last in ascending and first in descending order, as PostgreSQL orders them.

Parsing is pure (no database, no HTTP): :func:`parse_search` returns the request or
the messages to show next to each field.  :meth:`SearchService.run` is blocking: call
it in a thread of the TAP ``query`` pool.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from auth.principals import Principal
from vo_service.adql import AdqlError
from vo_service.adql.lexer import screen
from vo_service.serialize.formats import resolve_format
from vo_service.services.tap import QueryExecution, TapRequest, TapService

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
DEFAULT_RADIUS_ARCMIN = 1.0
MAX_RADIUS_DEG = 10.0
MAX_TEXT = 200
#: rows of a CSV or VOTable export of a search (MAXREC of the /tap/sync link)
MAX_EXPORT_ROWS = 1_000_000
KEY_COLUMN = "obs_publisher_did"


@dataclass(frozen=True)
class Field:
    """A column the results table may show."""

    name: str  # the lick.files column
    label: str
    group: str  # common, kast, sharcs
    kind: str = "text"  # text, float, night, time, ra, dec, size, exptime
    sortable: bool = True
    nullable: bool = True


FIELDS: tuple[Field, ...] = (
    Field("night", "Night", "common", "night", nullable=False),
    Field("instrument", "Instrument", "common"),
    Field("frame_type", "Frame type", "common"),
    Field("object", "Object", "common"),
    Field("date_obs", "Start (UTC)", "common", "time"),
    Field("exptime", "Exposure (s)", "common", "float"),
    Field("ra", "RA", "common", "ra"),
    Field("dec", "Dec", "common", "dec"),
    Field("airmass", "Airmass", "common", "float"),
    Field("observer", "Observer", "common"),
    Field("program", "Program", "common"),
    Field("path", "Path", "common", nullable=False),
    Field("file_size", "Size (bytes)", "common", "size"),
    Field("release_date", "Release date", "common", "night"),
    Field("ingest_flags", "Ingest flags", "common", sortable=False),
    Field("slit", "Slit", "kast"),
    Field("grism", "Grism (blue)", "kast"),
    Field("grating", "Grating (red)", "kast"),
    Field("grating_tilt", "Grating tilt", "kast", "float"),
    Field("beam_splitter", "Beam splitter", "kast"),
    Field("filter1", "Filter 1", "sharcs"),
    Field("filter2", "Filter 2", "sharcs"),
    Field("science_filter", "Science filter", "sharcs"),
)
FIELD_BY_NAME = {f.name: f for f in FIELDS}
_NUMERIC = ("float", "ra", "dec", "size")
FIELD_GROUPS = (("common", "Common"), ("kast", "Kast"), ("sharcs", "ShARCS and Nickel filters"))
DEFAULT_FIELDS = ("night", "instrument", "frame_type", "object", "date_obs", "exptime",
                  "ra", "dec")
#: sort choices: the file name and every sortable field
SORT_FIELDS = ("filename", *(f.name for f in FIELDS if f.sortable))
DEFAULT_SORT = "date_obs"


@dataclass(frozen=True)
class Instrument:
    key: str
    label: str
    condition: str  # ADQL over lick.files


#: The instrument tree: (group label, its instruments).
INSTRUMENT_TREE: tuple[tuple[str, tuple[Instrument, ...]], ...] = (
    ("Kast (Shane 3-m)", (
        Instrument("kast_blue", "Kast blue", "instrument = 'Kast Blue'"),
        Instrument("kast_red", "Kast red", "instrument = 'Kast Red'"),
    )),
    ("ShaneAO (Shane 3-m)", (
        Instrument("sharcs", "ShARCS", "instrument = 'ShARCS'"),
    )),
    ("Nickel 1-m", (
        Instrument("nickel_direct", "Nickel direct imaging", "instrument = 'Nickel Direct'"),
        Instrument("nickel_spectrograph", "Nickel spectrograph",
                   "instrument = 'Nickel Spectrograph'"),
        Instrument("nickel_other", "Nickel, other or unknown",
                   "(instrument_dir = 'nickel' AND (instrument IS NULL OR instrument NOT IN "
                   "('Nickel Direct', 'Nickel Spectrograph')))"),
    )),
)
INSTRUMENTS = {i.key: i for _, group in INSTRUMENT_TREE for i in group}
FRAME_TYPES = ("science", "bias", "dark", "flat", "arc", "focus", "unknown")
OBJECT_MATCHES = (("exact", "equals"), ("starts", "starts with"), ("contains", "contains"))
PATH_MATCHES = (("exact", "equals"), ("starts", "starts with"))
RADIUS_UNITS = {"arcsec": 1 / 3600, "arcmin": 1 / 60, "deg": 1.0}
COORD_FORMATS = ("sexagesimal", "degrees")

#: the URL parameters of the form (everything else is ignored)
FORM_PARAMETERS = ("object", "object_match", "match_case", "night_from", "night_to", "path",
                   "path_match", "ra", "dec", "radius", "radius_unit", "instrument",
                   "frame_type", "field", "sort", "order", "size", "coords", "count",
                   "after", "before")


@dataclass(frozen=True)
class Cone:
    ra: float  # degrees
    dec: float
    radius: float  # degrees


@dataclass(frozen=True)
class PageKey:
    """Where a page starts: after (or before) this row in the sort order."""

    value: str | float | None
    did: str
    before: bool = False


@dataclass(frozen=True)
class SearchRequest:
    object: str = ""
    object_match: str = "contains"
    match_case: bool = False
    night_from: date | None = None
    night_to: date | None = None
    path: str = ""
    path_match: str = "starts"
    cone: Cone | None = None
    instruments: tuple[str, ...] = ()
    frame_types: tuple[str, ...] = ()
    fields: tuple[str, ...] = DEFAULT_FIELDS
    sort: str = DEFAULT_SORT
    descending: bool = True
    size: int = DEFAULT_PAGE_SIZE
    coords: str = "sexagesimal"
    count_only: bool = False
    key: PageKey | None = None

    @property
    def sort_nullable(self) -> bool:
        spec = FIELD_BY_NAME.get(self.sort)
        return spec.nullable if spec is not None else False

    @property
    def columns(self) -> tuple[str, ...]:
        """The selected columns: the identifier, the file name, the fields, the sort key."""
        chosen = [KEY_COLUMN, "filename", *self.fields]
        if self.sort not in chosen:
            chosen.append(self.sort)
        return tuple(dict.fromkeys(chosen))


@dataclass
class FormErrors(Exception):
    """Messages by field name, shown next to each field."""

    messages: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return "; ".join(f"{k}: {v}" for k, v in self.messages.items())


# --- reading the form ------------------------------------------------------------------

_SEXAGESIMAL = re.compile(
    r"^\s*([+-])?\s*(\d{1,3})(?:\s*[:hd°]\s*|\s+)(\d{1,2})"
    r"(?:(?:\s*[:m'′]\s*|\s+)(\d{1,2}(?:\.\d*)?))?\s*[s\"″]?\s*$")
_DECIMAL = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*(d|deg)?\s*$")


def parse_angle(text: str, *, hours: bool) -> float:
    """Degrees from decimal degrees (``187.44``, ``-8.5d``) or sexagesimal
    (``12:29:46.7``, ``12 29 46.7``, ``12h29m46.7s``; hours for RA, degrees for Dec)."""
    text = text.strip()
    if _DECIMAL.match(text) and ":" not in text and " " not in text.strip():
        value = float(text.rstrip("deg").rstrip("d"))
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return value
    match = _SEXAGESIMAL.match(text)
    if not match or match.group(3) is None:
        raise ValueError("not an angle")
    sign, whole, minutes, seconds = match.groups()
    if int(minutes) >= 60 or (seconds is not None and float(seconds) >= 60):
        raise ValueError("minutes and seconds must be below 60")
    value = int(whole) + int(minutes) / 60 + float(seconds or 0) / 3600
    if sign == "-":
        value = -value
    return value * 15 if hours else value


def _unusable(text: str) -> bool:
    """Characters no query may hold (the ADQL lexer's one rule refuses them)."""
    try:
        screen(text)
    except AdqlError:
        return True
    return False


def _first(items: dict[str, list[str]], name: str) -> str:
    values = items.get(name) or [""]
    return values[0].strip()


def _choice(items: dict[str, list[str]], name: str, allowed: Iterable[str], default: str,
            errors: dict[str, str], what: str) -> str:
    value = _first(items, name) or default
    options = tuple(allowed)
    if value not in options:
        errors[name] = f"choose {what}: one of {', '.join(options)}"
        return default
    return value


def _night(text: str, name: str, errors: dict[str, str]) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors[name] = (f"{text[:40]!r} is not a date; write YYYY-MM-DD (the date of the "
                        "evening the night began)")
        return None


def parse_search(pairs: Iterable[tuple[str, str]]) -> SearchRequest:
    """The search the form describes, or :class:`FormErrors` naming each bad field."""
    items: dict[str, list[str]] = {}
    for name, value in pairs:
        if name in FORM_PARAMETERS:
            items.setdefault(name, []).append(value)
    errors: dict[str, str] = {}
    for name, values in items.items():
        if name in ("after", "before"):
            continue
        if any(len(v) > MAX_TEXT for v in values):
            errors[name] = f"at most {MAX_TEXT} characters"
        elif any(_unusable(v) for v in values):
            errors[name] = "remove the control characters from this field"
    if errors:
        raise FormErrors(errors)

    obj = _first(items, "object")
    object_match = _choice(items, "object_match", (k for k, _ in OBJECT_MATCHES), "contains",
                           errors, "how the object name matches")
    path = _first(items, "path")
    path_match = _choice(items, "path_match", (k for k, _ in PATH_MATCHES), "starts",
                         errors, "how the path matches")
    night_from = _night(_first(items, "night_from"), "night_from", errors)
    night_to = _night(_first(items, "night_to"), "night_to", errors)
    if night_from and night_to and night_to < night_from:
        errors["night_to"] = "the last night is before the first; swap them"

    cone = _cone(items, errors)

    instruments = tuple(dict.fromkeys(v for v in items.get("instrument", []) if v))
    unknown = [v for v in instruments if v not in INSTRUMENTS]
    if unknown:
        errors["instrument"] = (f"unknown instrument {unknown[0][:40]!r}; choose from the "
                                "list")
    frame_types = tuple(dict.fromkeys(v for v in items.get("frame_type", []) if v))
    unknown = [v for v in frame_types if v not in FRAME_TYPES]
    if unknown:
        errors["frame_type"] = (f"unknown frame type {unknown[0][:40]!r}; one of "
                                f"{', '.join(FRAME_TYPES)}")
    fields = tuple(dict.fromkeys(v for v in items.get("field", []) if v)) or DEFAULT_FIELDS
    unknown = [v for v in fields if v not in FIELD_BY_NAME]
    if unknown:
        errors["field"] = f"unknown result field {unknown[0][:40]!r}"
    sort = _choice(items, "sort", SORT_FIELDS, DEFAULT_SORT, errors, "a sort field")
    order = _choice(items, "order", ("asc", "desc"), "desc", errors, "the sort direction")
    size_text = _first(items, "size")
    size = DEFAULT_PAGE_SIZE
    if size_text:
        if not size_text.isdigit() or not 1 <= int(size_text) <= MAX_PAGE_SIZE:
            errors["size"] = f"rows per page: a whole number from 1 to {MAX_PAGE_SIZE}"
        else:
            size = int(size_text)
    coords = _choice(items, "coords", COORD_FORMATS, "sexagesimal", errors,
                     "the coordinate format")
    key = None
    after, before = _first(items, "after"), _first(items, "before")
    if after and before:
        errors["page"] = "a page starts after one row or before one, not both"
    elif after or before:
        try:
            key = decode_key(after or before, before=bool(before))
            numeric = FIELD_BY_NAME[sort].kind in _NUMERIC if sort in FIELD_BY_NAME else False
            if key.value is not None and isinstance(key.value, float) != numeric:
                raise ValueError("the key does not fit the sort field")
        except ValueError:
            errors["page"] = "this page link is damaged; start again from the first page"
    if errors:
        raise FormErrors(errors)
    return SearchRequest(
        object=obj, object_match=object_match, match_case=bool(_first(items, "match_case")),
        night_from=night_from, night_to=night_to, path=path, path_match=path_match,
        cone=cone, instruments=instruments, frame_types=frame_types,
        fields=tuple(f for f in fields if f in FIELD_BY_NAME), sort=sort,
        descending=order == "desc", size=size, coords=coords,
        count_only=bool(_first(items, "count")), key=key)


def _cone(items: dict[str, list[str]], errors: dict[str, str]) -> Cone | None:
    ra_text, dec_text = _first(items, "ra"), _first(items, "dec")
    radius_text = _first(items, "radius")
    unit = _choice(items, "radius_unit", RADIUS_UNITS, "arcmin", errors, "the radius unit")
    if not ra_text and not dec_text:
        if radius_text:
            errors["ra"] = "a radius needs a position: give RA and Dec"
        return None
    ra = dec = None
    if not ra_text:
        errors["ra"] = "give the right ascension too"
    else:
        try:
            ra = parse_angle(ra_text, hours=True)
            if not 0 <= ra < 360:
                errors["ra"] = "RA must be from 0 to 24 h (0 to 360 degrees)"
        except ValueError:
            errors["ra"] = (f"{ra_text[:40]!r} is not a right ascension; write hours as "
                            "12:29:46.7 or degrees as 187.44")
    if not dec_text:
        errors["dec"] = "give the declination too"
    else:
        try:
            dec = parse_angle(dec_text, hours=False)
            if not -90 <= dec <= 90:
                errors["dec"] = "Dec must be from -90 to +90 degrees"
        except ValueError:
            errors["dec"] = (f"{dec_text[:40]!r} is not a declination; write +08:00:01 or "
                             "8.0004 (degrees)")
    radius = DEFAULT_RADIUS_ARCMIN / 60
    if radius_text:
        try:
            value = float(radius_text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            errors["radius"] = "the radius is a positive number"
        else:
            radius = value * RADIUS_UNITS[unit]
            if radius > MAX_RADIUS_DEG:
                errors["radius"] = f"the radius is at most {MAX_RADIUS_DEG:g} degrees"
    if ra is None or dec is None or errors.keys() & {"ra", "dec", "radius"}:
        return None
    return Cone(ra, dec, radius)


# --- page keys -------------------------------------------------------------------------

def encode_key(value: Any, did: str) -> str:
    raw = json.dumps([value, did], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_key(token: str, *, before: bool) -> PageKey:
    if len(token) > 4000:
        raise ValueError("too long")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value, did = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise ValueError("damaged page key") from None
    if not isinstance(did, str) or _unusable(did):
        raise ValueError("damaged page key")
    if isinstance(value, bool) or not isinstance(value, (str, float, int, type(None))):
        raise ValueError("damaged page key")
    if isinstance(value, str) and _unusable(value):
        raise ValueError("damaged page key")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("damaged page key")
    return PageKey(float(value) if isinstance(value, int) else value, did, before)


# --- ADQL --------------------------------------------------------------------------------

def adql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _like_escape(text: str) -> str:
    """A LIKE pattern matching ``text`` literally (PostgreSQL's escape is backslash)."""
    return re.sub(r"([\\%_])", r"\\\1", text)


def _number(value: float) -> str:
    return repr(float(value))


def _conditions(req: SearchRequest) -> list[str]:
    where: list[str] = []
    if req.object:
        column = "object"
        pattern = {"exact": _like_escape(req.object),
                   "starts": _like_escape(req.object) + "%",
                   "contains": "%" + _like_escape(req.object) + "%"}[req.object_match]
        if req.object_match == "exact" and req.match_case:
            where.append(f"{column} = {adql_string(req.object)}")
        else:
            where.append(f"{column} {'LIKE' if req.match_case else 'ILIKE'} "
                         f"{adql_string(pattern)}")
    if req.night_from and req.night_to and req.night_from == req.night_to:
        where.append(f"night = '{req.night_from.isoformat()}'")
    elif req.night_from and req.night_to:
        where.append(f"night BETWEEN '{req.night_from.isoformat()}' AND "
                     f"'{req.night_to.isoformat()}'")
    elif req.night_from:
        where.append(f"night >= '{req.night_from.isoformat()}'")
    elif req.night_to:
        where.append(f"night <= '{req.night_to.isoformat()}'")
    if req.path:
        column = "path" if "/" in req.path else "filename"
        if req.path_match == "exact":
            where.append(f"{column} = {adql_string(req.path)}")
        else:
            where.append(f"{column} LIKE {adql_string(_like_escape(req.path) + '%')}")
    if req.cone is not None:
        c = req.cone
        where.append(f"CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {_number(c.ra)}, "
                     f"{_number(c.dec)}, {_number(c.radius)})) = 1")
    if req.instruments:
        parts = [INSTRUMENTS[k].condition for k in req.instruments]
        where.append(parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")")
    if req.frame_types:
        listed = ", ".join(adql_string(t) for t in req.frame_types)
        if "unknown" in req.frame_types:
            where.append(f"(frame_type IN ({listed}) OR frame_type IS NULL)")
        else:
            where.append(f"frame_type IN ({listed})")
    return where


def _literal(value: str | float) -> str:
    return _number(value) if isinstance(value, float) else adql_string(value)


def _keyset(req: SearchRequest, key: PageKey, descending: bool) -> str:
    """The rows after ``key`` in the order (sort column, identifier), both ``descending``
    or both ascending; NULL sort values last ascending, first descending."""
    col, did = req.sort, adql_string(key.did)
    after_did = f"{KEY_COLUMN} {'<' if descending else '>'} {did}"
    if col == KEY_COLUMN:
        return after_did
    if key.value is None:
        if descending:  # NULLs first: the rest of the NULLs, then every value
            return f"({col} IS NOT NULL OR {after_did})"
        return f"({col} IS NULL AND {after_did})"
    value = _literal(key.value)
    op, bound = ("<", "<=") if descending else (">", ">=")
    # the redundant bound lets an index on the column start at the key
    rest = f"{col} {bound} {value} AND ({col} {op} {value} OR {after_did})"
    if req.sort_nullable and not descending:
        return f"(({rest}) OR {col} IS NULL)"
    return f"({rest})"


def _source(req: SearchRequest) -> str:
    if req.cone is not None:  # the pointing index is on ivoa.obscore
        return "lick.files JOIN ivoa.obscore USING (obs_publisher_did)"
    return "lick.files"


def _where(parts: Sequence[str]) -> str:
    return ("\nWHERE " + "\n  AND ".join(parts)) if parts else ""


def search_adql(req: SearchRequest) -> str:
    """The search as ADQL, without paging: what the page shows and links to."""
    if req.count_only:
        return f"SELECT COUNT(*) AS n\nFROM {_source(req)}{_where(_conditions(req))}"
    direction = "DESC" if req.descending else "ASC"
    return (f"SELECT {', '.join(req.columns)}\nFROM {_source(req)}"
            f"{_where(_conditions(req))}\n"
            f"ORDER BY {req.sort} {direction}, {KEY_COLUMN} {direction}")


def page_adql(req: SearchRequest) -> str:
    """One page: the search from its key on, in the reversed order for a previous page,
    one row more than the page (to know whether another page follows)."""
    descending = req.descending != (req.key is not None and req.key.before)
    where = _conditions(req)
    if req.key is not None:
        where.append(_keyset(req, req.key, descending))
    direction = "DESC" if descending else "ASC"
    return (f"SELECT TOP {req.size + 1} {', '.join(req.columns)}\nFROM {_source(req)}"
            f"{_where(where)}\nORDER BY {req.sort} {direction}, {KEY_COLUMN} {direction}")


def dids_adql(req: SearchRequest) -> str:
    """The identifiers of every result (for a tarball of all results)."""
    return (f"SELECT {KEY_COLUMN}\nFROM {_source(req)}{_where(_conditions(req))}\n"
            f"ORDER BY {KEY_COLUMN}")


def pyvo_snippet(tap_url: str, adql: str) -> str:
    quoted = adql.replace('"""', '\\"\\"\\"')
    return (f"import pyvo\n\ntap = pyvo.dal.TAPService({tap_url!r})\n"
            f"# log in first to see your proprietary rows, e.g.\n"
            f"# tap = pyvo.dal.TAPService(url, session=requests_session_with_basic_auth)\n"
            f"result = tap.search(\"\"\"\n{quoted}\n\"\"\")\n"
            f"table = result.to_table()\nprint(table)\n")


# --- running it ------------------------------------------------------------------------

@dataclass(frozen=True)
class Page:
    """One page of results, in display order."""

    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    has_next: bool
    has_previous: bool
    next_key: str | None
    previous_key: str | None


@dataclass(frozen=True)
class QueryRows:
    """A small query result held in memory (a page, a count, a TAP_SCHEMA listing)."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    #: more rows than ``maxrec`` matched
    overflow: bool


def run_query(tap: TapService, principal: Principal, adql: str, maxrec: int) -> QueryRows:
    """Up to ``maxrec`` rows of an ADQL query, run exactly as a TAP sync query of
    ``principal`` (blocking: a thread of the TAP ``query`` pool)."""
    request = TapRequest(query=adql, maxrec=maxrec, format=resolve_format("tsv"))
    execution = tap.start(principal, request)
    try:
        if not isinstance(execution, QueryExecution):
            raise RuntimeError("an in-memory result runs through a cursor")
        names = tuple(c.name for c in execution.columns)
        rows: list[tuple[Any, ...]] = []
        for batch in execution.batches():
            rows.extend(batch)
            if len(rows) > maxrec:
                break
        return QueryRows(names, rows[:maxrec], len(rows) > maxrec)
    finally:
        execution.close()


class SearchService:
    """Runs searches as TAP queries of the requester (blocking: a ``query`` pool thread)."""

    def __init__(self, tap: TapService) -> None:
        self.tap = tap

    def _rows(self, principal: Principal, adql: str, maxrec: int
              ) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        result = run_query(self.tap, principal, adql, maxrec)
        return result.columns, result.rows

    def count(self, principal: Principal, req: SearchRequest) -> int:
        _, rows = self._rows(principal, search_adql(req), 1)
        return int(rows[0][0]) if rows else 0

    def page(self, principal: Principal, req: SearchRequest) -> Page:
        names, raw = self._rows(principal, page_adql(req), req.size + 1)
        more = len(raw) > req.size
        raw = raw[:req.size]
        backwards = req.key is not None and req.key.before
        if backwards:
            raw.reverse()
        rows = [dict(zip(names, row, strict=True)) for row in raw]
        has_next = (not backwards and more) or (backwards and bool(rows))
        has_previous = (backwards and more) or (req.key is not None and not backwards
                                                 and bool(rows))
        first, last = (rows[0], rows[-1]) if rows else (None, None)
        return Page(
            columns=names, rows=rows, has_next=has_next, has_previous=has_previous,
            next_key=encode_key(last[req.sort], last[KEY_COLUMN]) if last and has_next
            else None,
            previous_key=encode_key(first[req.sort], first[KEY_COLUMN])
            if first and has_previous else None)

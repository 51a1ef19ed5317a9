"""SIA 2.0 query parameters: the one table of them, and their parsing.

:data:`PARAMETERS` declares every SIA 2.0 query parameter once — the ObsCore
column(s) it constrains, how (the kind), its unit, its description — and serves
the parser below, the SQL in :mod:`vo_service.services.sia` and the self-describing
service descriptor in :mod:`vo_service.services.sia_documents`, so that the three
cannot disagree.

Syntax follows SIA 2.0 (the {query} resource) and DALI 1.1: names are case-insensitive, every
parameter may repeat (repeats OR, different parameters AND), numeric parameters take
a value or a DALI interval ``low high`` whose bounds may be ``-Inf``/``+Inf``
(inclusive; a single value is the interval [v, v]), strings match exactly (except
ID, see :func:`id_candidates`), unknown parameters are ignored, and a blank value
counts as not given.  Parsing is cheap and needs nothing but the text, so it runs on
the event loop; the polygon tests, which compare every pair of edges, run with the
query in a worker thread (:func:`vo_service.services.sia.compile_query`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal

from vo_service.errors import UsageFault
from vo_service.params import Params
from vo_service.serialize.formats import OutputFormat, resolve_format
from vo_service.settings import TapSettings

Kind = Literal["pos", "overlap", "within", "text", "id", "int", "pol"]


@dataclass(frozen=True)
class SiaParameter:
    """One SIA query parameter and the ObsCore column(s) it constrains.

    Kinds: ``pos`` (a shape intersecting s_region), ``overlap`` (an interval
    intersecting [columns[0], columns[1]]: BAND, TIME), ``within`` (an interval
    holding the column's value: FOV, SPATRES...), ``text`` (exact string match),
    ``id`` (dataset identifiers), ``int`` (CALIB) and ``pol`` (one polarization
    state among pol_states).
    """

    name: str
    kind: Kind
    columns: tuple[str, ...]
    description: str
    unit: str | None = None


PARAMETERS: tuple[SiaParameter, ...] = (
    SiaParameter("POS", "pos", ("s_region",),
                 "Region intersecting the dataset's footprint (ICRS, degrees): "
                 "CIRCLE lon lat radius, RANGE lon1 lon2 lat1 lat2 (bounds may be -Inf/+Inf) "
                 "or POLYGON lon1 lat1 lon2 lat2 lon3 lat3 ...", "deg"),
    SiaParameter("BAND", "overlap", ("em_min", "em_max"),
                 "Wavelength interval (m) intersecting the spectral coverage", "m"),
    SiaParameter("TIME", "overlap", ("t_min", "t_max"),
                 "Time interval (MJD, UTC) intersecting the exposure", "d"),
    SiaParameter("POL", "pol", ("pol_states",),
                 "Polarization state present in the data (ObsCore pol_states labels)"),
    SiaParameter("FOV", "within", ("s_fov",), "Interval holding the field of view diameter",
                 "deg"),
    SiaParameter("SPATRES", "within", ("s_resolution",),
                 "Interval holding the spatial resolution", "arcsec"),
    SiaParameter("EXPTIME", "within", ("t_exptime",), "Interval holding the exposure time",
                 "s"),
    SiaParameter("ID", "id", ("obs_publisher_did",),
                 "Publisher dataset identifier (obs_publisher_did); the part before '?' "
                 "is compared case-insensitively"),
    SiaParameter("COLLECTION", "text", ("obs_collection",), "Data collection name"),
    SiaParameter("FACILITY", "text", ("facility_name",), "Telescope name"),
    SiaParameter("INSTRUMENT", "text", ("instrument_name",), "Instrument name"),
    SiaParameter("DPTYPE", "text", ("dataproduct_type",), "Data product type"),
    SiaParameter("CALIB", "int", ("calib_level",), "Calibration level (0 to 4)"),
    SiaParameter("TARGET", "text", ("target_name",), "Target name as given by the observer"),
    SiaParameter("TIMERES", "within", ("t_resolution",),
                 "Interval holding the temporal resolution", "s"),
    SiaParameter("SPECRP", "within", ("em_res_power",),
                 "Interval holding the spectral resolving power"),
    SiaParameter("FORMAT", "text", ("access_format",),
                 "Format (MIME type) of what access_url returns"),
)
BY_NAME = {p.name: p for p in PARAMETERS}

#: ObsCore 1.1 sect. B.6.5.1: the labels pol_states is made of.
POL_STATES = ("I", "Q", "U", "V", "RR", "LL", "RL", "LR", "XX", "YY", "XY", "YX", "POLI",
              "POLA")
CALIB_LEVELS = (0, 1, 2, 3, 4)
#: Values one parameter may have in one request (repeats); shapes are costlier.
MAX_VALUES = 1000
MAX_SHAPES = 100
MAX_POLYGON_VERTICES = 100

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_INFINITY = re.compile(r"([+-]?)inf(?:inity)?", re.ASCII | re.IGNORECASE)


@dataclass(frozen=True)
class Interval:
    """A closed interval; ``low`` may be -inf and ``high`` +inf (open ends)."""

    low: float
    high: float


@dataclass(frozen=True)
class Circle:
    lon: float
    lat: float
    radius: float


@dataclass(frozen=True)
class Range:
    """A longitude/latitude box (bounds inclusive, open ends already replaced by the
    sphere's limits)."""

    lon_min: float
    lon_max: float
    lat_min: float
    lat_max: float


@dataclass(frozen=True)
class Polygon:
    vertices: tuple[tuple[float, float], ...]


Shape = Circle | Range | Polygon
Value = Shape | Interval | str | int


@dataclass(frozen=True)
class SiaRequest:
    """A validated SIA query: per parameter name, the values given (ORed)."""

    constraints: dict[str, tuple[Value, ...]] = field(default_factory=dict)
    maxrec: int = 0
    format: OutputFormat = field(default_factory=lambda: resolve_format(None))

    def values(self, name: str) -> tuple[Value, ...]:
        return self.constraints.get(name, ())


def parse_sia_request(params: Params, tap: TapSettings) -> SiaRequest:
    """Validate the parameters (no database: safe on the event loop).

    MAXREC defaults to and is capped by the TAP limits (the same query path serves
    both); RESPONSEFORMAT takes the TAP formats.  FORMAT is SIA's access_format
    constraint here, not an output format as in TAP 1.0.
    """
    constraints: dict[str, tuple[Value, ...]] = {}
    for parameter in PARAMETERS:
        texts = [v for v in params.get_all(parameter.name) if v.strip()]
        if not texts:
            continue
        limit = MAX_SHAPES if parameter.kind == "pos" else MAX_VALUES
        if len(texts) > limit:
            raise UsageFault(f"{parameter.name} is given {len(texts)} times; at most {limit} "
                             "values of one parameter are accepted in a request")
        constraints[parameter.name] = tuple(
            dict.fromkeys(_parse_value(parameter, text) for text in texts))
    maxrec = params.get_int("MAXREC")
    maxrec = tap.default_maxrec if maxrec is None else min(maxrec, tap.hard_maxrec)
    try:
        fmt = resolve_format(params.get("RESPONSEFORMAT"))
    except ValueError as exc:
        raise UsageFault(str(exc)) from exc
    return SiaRequest(constraints, maxrec, fmt)


def _parse_value(parameter: SiaParameter, text: str) -> Value:
    kind = parameter.kind
    if kind == "pos":
        return parse_pos(text)
    if kind in ("overlap", "within"):
        return parse_interval(parameter.name, text)
    if kind == "int":
        return _parse_calib(text)
    if kind == "pol":
        state = text.strip()
        if state not in POL_STATES:
            raise UsageFault(f"POL={_shown(text)} is not a polarization state; use one of "
                             f"{' '.join(POL_STATES)} (one state per POL, repeat POL for more)")
        return state
    return text


def _shown(text: str) -> str:
    return repr(text[:60]) if len(text) <= 60 else repr(text[:60]) + "..."


def _number(name: str, word: str, *, infinite: bool = False) -> float:
    """A DALI number: decimal, optionally with an exponent; ±Inf only where
    ``infinite`` (an interval bound).  NaN and numbers beyond double range are refused."""
    if _NUMBER.fullmatch(word):
        value = float(word)
        if math.isfinite(value):
            return value
        raise UsageFault(f"{name}: {word[:40]!r} is beyond the range of a double")
    match = _INFINITY.fullmatch(word)
    if match and infinite:
        return -math.inf if match.group(1) == "-" else math.inf
    allowed = "a number, -Inf or +Inf" if infinite else "a finite number"
    raise UsageFault(f"{name}: {word[:40]!r} is not {allowed}")


def parse_interval(name: str, text: str) -> Interval:
    """``v`` (= [v, v]) or ``low high`` (DALI interval; -Inf/+Inf for open ends)."""
    words = text.split()
    if len(words) == 1:
        value = _number(name, words[0])
        return Interval(value, value)
    if len(words) != 2:
        raise UsageFault(f"{name} takes a value or an interval 'low high' (-Inf or +Inf for "
                         f"an open end), not {len(words)} numbers")
    low = _number(name, words[0], infinite=True)
    high = _number(name, words[1], infinite=True)
    if low == math.inf or high == -math.inf:
        raise UsageFault(f"{name}: the lower bound cannot be +Inf nor the upper -Inf")
    if low > high:
        raise UsageFault(f"{name}: the lower bound {words[0]} is above the upper bound "
                         f"{words[1]}; give 'low high'")
    return Interval(low, high)


def _parse_calib(text: str) -> int:
    word = text.strip()
    if not re.fullmatch(r"[+-]?\d{1,3}", word, re.ASCII) or int(word) not in CALIB_LEVELS:
        raise UsageFault(f"CALIB={_shown(text)} is not a calibration level; use an integer "
                         "from 0 (raw) to 4 (analysis products), one per CALIB")
    return int(word)


def parse_pos(text: str) -> Shape:
    """CIRCLE, RANGE or POLYGON (SIA 2.0, POS), ICRS degrees.

    Longitudes lie in [0, 360], latitudes in [-90, 90].  RANGE takes open bounds
    (-Inf/+Inf: the sphere's limits); a longitude range crossing 0 is two POS values.
    Whether a polygon is one pgSphere can take is checked with the query
    (:func:`vo_service.adql.geometry.check_polygon`).
    """
    words = text.split()
    shape = words[0].upper() if words else ""
    numbers = words[1:]
    if shape == "CIRCLE":
        if len(numbers) != 3:
            raise UsageFault("POS=CIRCLE takes three numbers: longitude latitude radius "
                             "(degrees)")
        lon, lat, radius = (_number("POS", w) for w in numbers)
        _check_lon_lat(lon, lat)
        if not 0 <= radius <= 90:
            raise UsageFault(f"POS=CIRCLE: the radius must lie between 0 and 90 degrees, "
                             f"not {radius:g}")
        return Circle(lon, lat, radius)
    if shape == "RANGE":
        if len(numbers) != 4:
            raise UsageFault("POS=RANGE takes four numbers: lon1 lon2 lat1 lat2 (degrees; "
                             "-Inf or +Inf for an open bound)")
        bounds = []
        for word, low, high in zip(numbers, (0, 0, -90, -90), (360, 360, 90, 90), strict=True):
            value = _number("POS", word, infinite=True)
            if math.isfinite(value) and not low <= value <= high:
                raise UsageFault(f"POS=RANGE: {word} is outside [{low}, {high}] degrees")
            bounds.append(min(max(value, low), high))
        lon1, lon2, lat1, lat2 = bounds
        if lon1 > lon2:
            raise UsageFault("POS=RANGE: lon1 is above lon2; for a range across longitude 0 "
                             "give two POS values (e.g. RANGE 350 360 ... and RANGE 0 10 ...)")
        if lat1 > lat2:
            raise UsageFault("POS=RANGE: lat1 is above lat2; give lon1 lon2 lat1 lat2 with "
                             "lat1 <= lat2")
        return Range(lon1, lon2, lat1, lat2)
    if shape == "POLYGON":
        if len(numbers) < 6 or len(numbers) % 2:
            raise UsageFault("POS=POLYGON takes at least three vertices: lon1 lat1 lon2 lat2 "
                             "lon3 lat3 ... (an even number of numbers)")
        if len(numbers) > 2 * MAX_POLYGON_VERTICES:
            raise UsageFault(f"POS=POLYGON: at most {MAX_POLYGON_VERTICES} vertices")
        values = [_number("POS", w) for w in numbers]
        vertices = tuple(zip(values[::2], values[1::2], strict=True))
        for lon, lat in vertices:
            _check_lon_lat(lon, lat)
        return Polygon(vertices)
    raise UsageFault(f"POS={_shown(text)}: give CIRCLE lon lat radius, RANGE lon1 lon2 lat1 "
                     "lat2 or POLYGON lon1 lat1 lon2 lat2 lon3 lat3 ... (ICRS degrees)")


def _check_lon_lat(lon: float, lat: float) -> None:
    if not 0 <= lon <= 360:
        raise UsageFault(f"POS: longitude {lon:g} is outside [0, 360] degrees")
    if not -90 <= lat <= 90:
        raise UsageFault(f"POS: latitude {lat:g} is outside [-90, 90] degrees")


def id_candidates(identifier: str) -> tuple[str, ...]:
    """The stored forms an ID may match: as given, and with its registry part (up to
    '?') in lower case.

    SIA 2.0 (ID) asks for IVOIDs to be compared case-insensitively; IVOA
    Identifiers 2.0 sect. 2.1 makes the registry part (authority and resource key)
    case-insensitive and leaves the local part after '?' to the publisher.  This
    archive's local part is a file path, which is case-sensitive, and its identifiers
    are written with a lower-case registry part: so the candidates cover every
    spelling of the registry part and match stored identifiers through their unique
    index (a ``lower()`` on the column could not use it under row-level security).
    """
    registry, mark, local = identifier.partition("?")
    return tuple(dict.fromkeys((identifier, registry.lower() + mark + local)))
